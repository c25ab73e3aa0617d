/*
** internal.h: the types, geometry and hot inline paths shared by the files
** of the built-in task allocator (src/taskalloc/). Not installed.
**
** Where things are:
**   os.c      the only file that calls mmap, munmap, madvise and mremap
**   radix.c   the table from address >> 20 to a chunk or a large block
**   chunk.c   1 MiB chunks cut into blocks of one size class; the pool of
**             empty chunks any class can take; the retention policy
**   tcache.c  per-thread caches of free blocks, thread registry
**   large.c   blocks above 64 KiB: one mapping each, a cache of freed
**             mappings, Realloc in place (mremap)
**   alloc.c   Alloc, Free, Realloc, GetSize, DidAlloc; the IMalloc object
**   cospy.c   IMallocSpy: registration and the spied calls
**   init.c    process start-up and fork handling
**
** Design, in short:
**  - A small block (up to 64 KiB) lives in a 1 MiB chunk aligned to 1 MiB.
**    The chunk starts with a header and an array of 32-bit slots, one per
**    block: LIVE, SPY, the chunk's class and the requested size. That slot
**    is all the bookkeeping of a live block. The slot array has the same
**    place and length in every chunk, whatever its class, and blocks start
**    after it, so a slot is never block memory.
**  - The radix table maps address >> 20 to its chunk and the chunk's class
**    (one word), so any address is checked without reading it: DidAlloc,
**    GetSize, Free and Realloc look only at the table and a slot, and a
**    slot counts only when its class is the one the table gave. An empty
**    chunk changes class (its slots are all 0 then); a racing lookup that
**    read the old class finds a slot of the new one, whose class differs.
**  - Each thread refills its cache from chunks of its own (a shard of the
**    classes' lists, chunk.c), so two threads' blocks and slots do not
**    share cache lines; blocks freed by another thread go back to their
**    chunk through its shard's lock, in batches, and are not handed out by
**    the freeing thread. A slot names the shard that handed its block out
**    and a chunk's entry its shard: the Free fast path tells a block of its
**    own thread from the slot alone (slot_mine).
**  - Chunks stay mapped for good (their pages may be given back with
**    madvise): a lookup may read any chunk's slots at any time.
**  - A block above 64 KiB has its own mapping, 1 MiB aligned, and no
**    descriptor: its size and flags are the table entry of its first 1 MiB
**    region, and each further region holds a continuation entry.
*/
#ifndef IMALLOC_TASKALLOC_INTERNAL_H
#define IMALLOC_TASKALLOC_INTERNAL_H

/* Included first by every file of the allocator: recursive mutexes,
** madvise, MAP_ANONYMOUS. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif

#include "../taskalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NOINLINE __attribute__((noinline))
#define HOT inline __attribute__((always_inline))
#define TA_HIDDEN __attribute__((visibility("hidden")))
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#define NOINLINE
#define HOT inline
#define TA_HIDDEN
#endif

#if defined(__SANITIZE_ADDRESS__)
#define TA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TA_ASAN 1
#endif
#endif

/* Free blocks are made inaccessible, except for the two link words we keep
** in them, so that a use after free is reported. */
#if defined(TA_ASAN)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#elif defined(IMALLOC_VALGRIND)
#include <valgrind/memcheck.h>
#define POISON(p, n) VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#define UNPOISON(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Under valgrind, our blocks are reported like malloc's. */
#ifdef IMALLOC_VALGRIND
#include <valgrind/memcheck.h>
#define VG_ALLOC(p, n) VALGRIND_MALLOCLIKE_BLOCK((p), (n), 0, 0)
#define VG_FREE(p) VALGRIND_FREELIKE_BLOCK((p), 0)
#define VG_RESIZE(p, o, n) VALGRIND_RESIZEINPLACE_BLOCK((p), (o), (n), 0)
#else
#define VG_ALLOC(p, n) ((void)0)
#define VG_FREE(p) ((void)0)
#define VG_RESIZE(p, o, n) ((void)0)
#endif

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define REL memory_order_release

/* Free-list chains and table entries pack fields above bit 48. */
_Static_assert(sizeof(uintptr_t) == 8, "taskalloc needs 64-bit pointers");

/* ---- geometry ------------------------------------------------------------ */

#define CHUNK_SHIFT 20
#define CHUNK_SIZE ((uintptr_t)1 << CHUNK_SHIFT)
#define VA_BITS 48              /* user addresses of x86-64 and arm64 */
#define LEAF_BITS 14
#define TOP_BITS (VA_BITS - CHUNK_SHIFT - LEAF_BITS)
#define LEAF_LEN ((size_t)1 << LEAF_BITS)
#define PTR_MASK (((uintptr_t)1 << VA_BITS) - 1)

#define NCLASS 44               /* 8 of 16..128, then 4 per doubling */
#define SMALL_MAX 65536
/* Larger requests are refused outright: no machine this runs on can back
** them, and a refusal is cheaper and more predictable than an mmap that
** overcommit might grant (the reference wants NULL for 2^46). */
#define MAX_ALLOC ((size_t)1 << 40)

/* Every chunk: a 64-byte header, then the slot array sized for the
** smallest class (16 bytes + a 4-byte slot per block), then the blocks. */
#define CHUNK_HDR 64
#define MAX_SLOTS ((uint32_t)((CHUNK_SIZE - CHUNK_HDR) / (16 + 4)))
#define SLOTS_LEN ((MAX_SLOTS + 255u) & ~255u)  /* groups of 256: block_slot */
#define BLOCKS_OFF \
  ((uint32_t)((CHUNK_HDR + SLOTS_LEN * 4u + 63u) & ~63u))

/* Slot word of a small block: 0 = free. Its bits 24..31 are LIVE and the
** class, bits 20..23 the shard (chunk.c) of the thread that handed the
** block out, bit 19 SPY, the low bits the requested size. A lookup
** (slot_live) compares LIVE and the class; a thread's Free
** (slot_live_mine) compares the shard, the SPY flag, LIVE and the class
** at once: one compare sends both another thread's block and a spied one
** off the fast path. */
#define SLOT_LIVE 0x80000000u
#define SLOT_CLS_SHIFT 24
#define SLOT_CLS 0x3F000000u
#define SLOT_SHARD_SHIFT 20
#define SLOT_SHARD 0x00F00000u
#define SLOT_SPY 0x00080000u
#define SLOT_SIZE 0x0003FFFFu
/* Bit 30 is set in no slot (classes are below 64): a bin's word of a cache
** that is not active, which no slot matches, not even a free one. */
#define SLOT_NEVER 0x40000000u
_Static_assert(NCLASS <= 64, "a class in 6 bits, bit 30 free");

/* Table entries. Bit 0 clear: a chunk, its address | class << 4 (0: not
** ours; class << 4 is also the offset of the class's struct geom). Bit 0 set: a block above 64 KiB. Its first region's entry
** ("head") holds
**   requested size << E_SHIFT | L_* flags | E_LARGE,
** each further region's entry
**   distance to the first region, in regions, << E_SHIFT | E_CONT | E_LARGE.
** A freed block has no entries (0). BUSY marks a Realloc in progress, so a
** racing Free cannot unmap under it. Sizes are at most MAX_ALLOC (2^40, 41
** bits) and distances below 2^20, so the payload ends below bit 49. */
#define E_LARGE ((uintptr_t)1)
#define E_CONT ((uintptr_t)2)
#define L_LIVE ((uintptr_t)4)
#define L_SPY ((uintptr_t)8)
#define L_BUSY ((uintptr_t)16)
#define E_SHIFT 8
#define E_CLS_SHIFT 4
#define E_CLS ((uintptr_t)63 << E_CLS_SHIFT)
/* A chunk's entry also names the shard whose lists hold it (changed when
** another shard takes the chunk over, chunk.c's adopt): a thread's Free
** reads it to tell a block of its own chunks from another thread's.
** Lookups ignore it. */
#define E_SHARD_SHIFT 10
#define E_SHARD ((uintptr_t)15 << E_SHARD_SHIFT)

/* Reciprocal precision: offsets are < 2^20 and sizes <= 2^16, so with 40
** fractional bits (off * recip) >> 40 is the exact quotient. */
#define RECIP_SHIFT 40

/* ---- OS memory (os.c) ------------------------------------------------------ */

extern TA_HIDDEN size_t ta_page;            /* the page size */
extern TA_HIDDEN _Atomic size_t ta_mapped;  /* bytes held from the OS */
extern TA_HIDDEN _Atomic size_t ta_meta;    /* of which bookkeeping */

TA_HIDDEN void *ta_os_map(size_t len);
TA_HIDDEN void *ta_os_map_aligned(size_t len);
TA_HIDDEN void ta_os_unmap(void *p, size_t len);
TA_HIDDEN void ta_os_purge(void *p, size_t len);
TA_HIDDEN int ta_os_grow(void *p, size_t len, size_t newlen);
TA_HIDDEN int ta_os_move(void *p, size_t len, void *to, size_t newlen);

static inline size_t page_up(size_t n) {
  return (n + ta_page - 1) & ~(ta_page - 1);
}

/* ---- the radix table (radix.c) ----------------------------------------------
** Leaves are mapped on first use and never freed. */

typedef _Atomic uintptr_t tentry;
extern TA_HIDDEN _Atomic(tentry *) ta_top[(size_t)1 << TOP_BITS];

static inline uintptr_t table_get(uintptr_t u) {
  tentry *leaf;
  uintptr_t t = u >> (CHUNK_SHIFT + LEAF_BITS);  /* one shift for both */
  if (t >> TOP_BITS) return 0;  /* u >> VA_BITS */
  leaf = atomic_load_explicit(&ta_top[t], ACQ);
  if (!leaf) return 0;
  return atomic_load_explicit(&leaf[(u >> CHUNK_SHIFT) & (LEAF_LEN - 1)],
                              ACQ);
}

/* The entry itself (for a compare-and-swap), or NULL when its leaf does
** not exist yet (then the entry is 0). */
static inline tentry *table_slot(uintptr_t u) {
  tentry *leaf;
  if (u >> VA_BITS) return NULL;
  leaf = atomic_load_explicit(&ta_top[u >> (CHUNK_SHIFT + LEAF_BITS)], ACQ);
  return leaf ? &leaf[(u >> CHUNK_SHIFT) & (LEAF_LEN - 1)] : NULL;
}

TA_HIDDEN int ta_table_set(uintptr_t u, uintptr_t v);
TA_HIDDEN void ta_table_clear(uintptr_t base, size_t len);

/* ---- chunks and size classes (chunk.c) ---------------------------------- */

/* A chunk's mutable header, under its shard's lock (or the pool's lock
** while it is empty). Lookups never read it. */
struct chunk {
  void *free;                  /* freed blocks of this chunk, linked */
  struct chunk *next, *prev;   /* in its class's list or in the pool */
  uint32_t used;               /* blocks out: live or in a thread's cache */
  uint32_t nfree;              /* blocks on `free` */
  uint32_t next_idx;           /* first block never handed out */
  uint32_t cls;
  uint32_t where;              /* CH_* */
  _Atomic uint32_t shard;      /* whose lists: changed under the locks of
                               ** both shards (chunk.c) */
  uint32_t touched;            /* bytes of blocks ever handed out since
                               ** its pages were last given back: they are
                               ** resident (chunk_get) */
  char pad[CHUNK_HDR - 3 * sizeof(void *) - 7 * sizeof(uint32_t)];
};
_Static_assert(sizeof(struct chunk) == CHUNK_HDR, "chunk header size");

/* Read-only after start-up: the layout of a chunk of each class (16
** bytes: the lookups index it with the entry's class bits as they are). */
struct geom {
  uint32_t bsize, span;          /* span = blocks per chunk * bsize */
  uint64_t recip;
};
_Static_assert(sizeof(struct geom) == 1u << E_CLS_SHIFT, "geom size");
extern TA_HIDDEN struct geom ta_geom[NCLASS];
extern TA_HIDDEN uint32_t ta_nslots[NCLASS];  /* blocks per chunk */
extern TA_HIDDEN uint32_t ta_batch[NCLASS];   /* blocks moved per lock */

static inline size_t entry_class(uintptr_t e) {
  return (size_t)((e & E_CLS) >> E_CLS_SHIFT);
}

static inline const struct geom *entry_geom(uintptr_t e) {
  return (const struct geom *)((const char *)ta_geom + (e & E_CLS));
}

static inline _Atomic uint32_t *chunk_slots(uintptr_t c) {
  return (_Atomic uint32_t *)(c + CHUNK_HDR);
}

/* The slot of block idx of chunk c. Neighbouring blocks often belong to
** different threads (a thread's cache takes one block first, then a few),
** and every Alloc and Free writes its block's slot: so the slots of 16
** consecutive blocks lie in 16 different cache lines (idx's low 4 bits
** are XORed into the next 4, which stays within a group of 256 slots and
** keeps a page's worth of blocks on a page of slots), and two threads
** using nearby blocks do not bounce one line between their cores. */
static inline uint32_t slot_ix(uint64_t idx) {
  return (uint32_t)(idx ^ (idx & 15) << 4);
}

static inline _Atomic uint32_t *block_slot(uintptr_t c, uint64_t idx) {
  return &chunk_slots(c)[slot_ix(idx)];
}

/* A free block's second word (its first is NEXT) holds the address of its
** slot: written when the block is carved from its chunk and each time it
** is freed, read by the Alloc fast path, which so needs no division to
** find the slot. A block's slot never changes while the block is out of
** its chunk or on its chunk's free list (its class cannot change then). */
#define SLOT_AT(p) (((_Atomic uint32_t **)(p))[1])

/* size_class of every n up to 1024, by (n + 15) / 16: the classes up to
** 1024 bytes have sizes that are multiples of 16 (chunk.c). */
extern TA_HIDDEN const uint8_t ta_cls16[65];

static inline unsigned size_class(size_t n) {
  unsigned lg;
  if (n <= 1024) return ta_cls16[(n + 15) >> 4];
  lg = 63u - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
  return 8u + ((lg - 7u) << 2) + (unsigned)(((n - 1) >> (lg - 2)) & 3u);
}

/* The slot of the block starting exactly at u, whose table entry e is a
** chunk's (non-zero, bit 0 clear), or NULL. The slot counts only if its
** class bits are the entry's (slot_live). */
static inline _Atomic uint32_t *small_slot(uintptr_t e, uintptr_t u) {
  uintptr_t c = e & ~(CHUNK_SIZE - 1);
  const struct geom *g = entry_geom(e);
  uintptr_t rel = u - c - BLOCKS_OFF;  /* wraps when below */
  uint64_t q;
  if (rel >= g->span) return NULL;
  q = (uint64_t)rel * g->recip;
  /* rel = idx * bsize + r, and recip * bsize = 2^40 + d with 1 <= d <=
  ** bsize, so q's fraction bits (below RECIP_SHIFT) hold idx * d + r *
  ** recip: below 2^20 (rel's bound) when r = 0, at least recip > 2^24
  ** and below 2^40 when r > 0. One test tells a block's start. */
  if (q & (((uint64_t)1 << RECIP_SHIFT) - CHUNK_SIZE)) return NULL;
  return block_slot(c, q >> RECIP_SHIFT);
}

/* Whether slot word w is a live block of the chunk whose entry is e
** (whoever handed it out). */
static inline int slot_live(uint32_t w, uintptr_t e) {
  return (w >> SLOT_CLS_SHIFT) ==
         ((SLOT_LIVE >> SLOT_CLS_SHIFT) | (uint32_t)(e >> E_CLS_SHIFT & 63));
}

/* Whether slot word w is a live block without the SPY flag whose LIVE,
** class and shard bits are those of `word` (a bin's: the block was handed
** out by that bin's thread, or one sharing its shard, and is of the class
** of the chunk entry that chose the bin): one XOR and one compare. */
_Static_assert(SLOT_SPY == 1u << (SLOT_SHARD_SHIFT - 1),
               "SLOT_SPY right below the shard");
_Static_assert(SLOT_SHARD_SHIFT + 4 == SLOT_CLS_SHIFT,
               "the shard right below the class");
static inline int slot_mine(uint32_t w, uint32_t word) {
  return (w ^ word) < SLOT_SPY;
}

static inline uint32_t slot_word(unsigned cls, size_t n, uint32_t spy) {
  return SLOT_LIVE | spy | ((uint32_t)cls << SLOT_CLS_SHIFT) | (uint32_t)n;
}

/* Free blocks are linked through their first word. */
#define NEXT(p) (((void **)(p))[0])

TA_HIDDEN void ta_classes_init(void);
/* Shards of the classes' chunk lists: a thread takes blocks from its own
** shard's chunks (chunk.c). Up to NSHARD threads have one each; more
** share. */
#define NSHARD 16u
extern TA_HIDDEN _Atomic uint32_t ta_shards;  /* held by a live thread */
TA_HIDDEN void *ta_class_take(unsigned sh, unsigned cls, uint32_t want,
                              uint32_t *got);
TA_HIDDEN void ta_class_give(unsigned cls, void *head);
TA_HIDDEN void ta_pool_purge_all(void);
TA_HIDDEN void ta_chunk_lock_all(void);
TA_HIDDEN void ta_chunk_unlock_all(void);
TA_HIDDEN void ta_chunk_reinit_locks(void);

/* The retention bound: bytes of empty chunks kept with their pages, and
** bytes of freed large mappings kept for reuse (IMALLOC_RETAIN). */
extern TA_HIDDEN size_t ta_retain;

/* ---- per-thread caches (tcache.c) ---------------------------------------- */

enum { TC_NONE = 0, TC_ACTIVE = 1, TC_DEAD = 2 };

struct bin {
  void *head;
  uint32_t room;    /* blocks it may still take: tc_limit - blocks held; 0
                    ** sends Free to the slow path (one test, no compare
                    ** with the limit) */
  uint32_t word;    /* the slot word of a live block of the class handed
                    ** out here, size 0 (LIVE, the class, the shard): the
                    ** Alloc fast path ORs the size in, the Free fast path
                    ** compares a slot with it (slot_mine). SLOT_NEVER
                    ** unless the cache is active: no slot then matches,
                    ** and Free takes the slow path. */
};

struct tcache {
  struct bin bins[NCLASS];
  uint16_t fill[NCLASS];           /* blocks the next refill asks for */
  _Atomic int64_t blocks, bytes;   /* written by the owner only */
  int state;
  unsigned epoch;                  /* the last HeapMinimize it flushed for */
  unsigned shard;                  /* whose chunks it refills from */
  int own_shard;                   /* no other live thread has that shard */
  uint32_t skey;                   /* shard << SLOT_SHARD_SHIFT */
  uintptr_t ekey;                  /* shard << E_SHARD_SHIFT */
  struct tcache *next, *prev;      /* registry, under the registry lock */
  /* Freed blocks of other shards' chunks, per class, on their way back to
  ** their chunks in batches (tcache.c): the list's head in the low
  ** VA_BITS, and above them the blocks it may still take before the batch
  ** goes back (0 unless the cache is active: Free then takes the slow
  ** path). One word a class, in an array outside the cache: the cache is
  ** thread-local, and the whole of ta_cache takes static TLS space in a
  ** module loaded with dlopen (ta_self's initial-exec model), where there
  ** is little. The array is the cache's own while it is active (tc_init
  ** takes it from a pool, tc_exit gives it back after the state left
  ** TC_ACTIVE); otherwise it is ta_noremote, all 0, never written. */
  uintptr_t *remote;
};
/* A cache's array of remote words while it is not active: every room 0. */
extern TA_HIDDEN const uintptr_t ta_noremote[NCLASS];
/* Arrays of remote words carved, those of them given back by ended
** threads and not taken again, and the bytes mapped for them (for
** tests). */
TA_HIDDEN void ta_remote_pool_counts(size_t *arrays, size_t *spare,
                                     size_t *bytes);
#define RB_ROOM_ONE ((uintptr_t)1 << VA_BITS)
static inline void *rb_head(uintptr_t r) { return (void *)(r & PTR_MASK); }
/* Pushes free block p on the remote word *r, whose value is v; returns
** the new word (room 0: its batch is due, ta_remote_flush). */
static inline uintptr_t rb_push(uintptr_t *r, uintptr_t v, void *p) {
  NEXT(p) = rb_head(v);
  return *r = ((v - RB_ROOM_ONE) & ~PTR_MASK) | (uintptr_t)p;
}
static inline uint32_t rb_room(uintptr_t r) {
  return (uint32_t)(r >> VA_BITS);
}

extern TA_HIDDEN _Thread_local struct tcache ta_cache;
#if defined(__GNUC__)
/* The cache's address, in the initial-exec TLS model: one %fs-relative
** load instead of a __tls_get_addr call per access. The cache itself is
** reached through it, but a module loaded with dlopen that has one
** initial-exec variable gets its whole TLS block, the cache included, in
** the static TLS space glibc keeps for such modules (about 1.6 KiB for
** all of them; `readelf -l imalloc/core.so`, TLS MemSiz: 0x444 bytes, the
** remote words being outside it: struct tcache). */
extern TA_HIDDEN _Thread_local struct tcache *ta_self
    __attribute__((tls_model("initial-exec")));
#else
extern TA_HIDDEN _Thread_local struct tcache *ta_self;
#endif

/* What ta_self points to until the thread's first slow path: a cache
** that is never written, with empty bins of limit 0, so that the fast
** paths take the slow ones without testing for it. */
extern TA_HIDDEN struct tcache ta_nocache;

TA_HIDDEN void ta_tc_never(struct tcache *tc);  /* words SLOT_NEVER */

static inline struct tcache *tc_self(void) {
  struct tcache *tc = ta_self;
  if (UNLIKELY(tc == &ta_nocache)) {
    ta_tc_never(&ta_cache);
    ta_self = tc = &ta_cache;
  }
  return tc;
}

/* The owner's counts, read by statistics with relaxed loads. Only the
** owner writes them, so an add to memory that is not a locked
** read-modify-write is enough: on x86-64 an aligned 8-byte store is
** single-copy atomic, and one `add` per counter is what the C11 code
** below means, in 2 instructions instead of 6 (GCC does not fuse a
** relaxed load, add and store). ThreadSanitizer does not see inside asm,
** so its builds keep the C11 code. */
#if defined(__SANITIZE_THREAD__)
#define TA_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TA_TSAN 1
#endif
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(TA_TSAN)
#define TC_COUNT_ASM 1
#endif
static inline void tc_count_fast(struct tcache *tc, int64_t nb, int64_t sz) {
#ifdef TC_COUNT_ASM
  __asm__("addq %2, %0\n\taddq %3, %1"
          : "+m"(*(int64_t *)&tc->blocks), "+m"(*(int64_t *)&tc->bytes)
          : "er"(nb), "er"(sz));
#else
  atomic_store_explicit(&tc->blocks,
                        atomic_load_explicit(&tc->blocks, RLX) + nb, RLX);
  atomic_store_explicit(&tc->bytes,
                        atomic_load_explicit(&tc->bytes, RLX) + sz, RLX);
#endif
}

TA_HIDDEN void ta_init(void);   /* once per process; cheap after (init.c) */
TA_HIDDEN void ta_tc_key_create(void);  /* at start-up: the exit flush */
TA_HIDDEN void ta_tc_count(struct tcache *tc, int64_t nb, int64_t sz);
TA_HIDDEN void ta_tc_ready(struct tcache *tc);  /* sets the cache up */
TA_HIDDEN void *ta_small_alloc_slow(size_t n, uint32_t spy);
TA_HIDDEN void ta_small_release_slow(void *p, uintptr_t e, uint32_t old);
TA_HIDDEN void ta_remote_flush(struct tcache *tc, unsigned c);
TA_HIDDEN void ta_minimize(void);
TA_HIDDEN void ta_registry_lock(void);
TA_HIDDEN void ta_registry_unlock(void);
TA_HIDDEN void ta_registry_reinit(void);
TA_HIDDEN void ta_stats_counts(int64_t *blocks, int64_t *bytes);

/* ---- spy bookkeeping shared with the core (cospy.c) --------------------- */

extern TA_HIDDEN _Atomic(IMallocSpy *) ta_spy;
extern TA_HIDDEN _Atomic size_t ta_spied;  /* live blocks with the SPY flag */

/* A block allocated under a spy comes from the class of n + 1 bytes: a spy
** returns the block plus a header of at most n bytes (it asked for n), so
** the caller's pointer then lies inside the block, never at its end, and
** the spy lookups find the block from it. */
#define SPY_PAD(spy) ((spy) ? 1u : 0u)

/* Marks p, a block of class cls just taken from a free list, live with
** n bytes, handed out by the shard whose slot key is skey. */
static inline void small_mark(void *p, unsigned cls, size_t n, uint32_t spy,
                              uint32_t skey) {
  uintptr_t c = (uintptr_t)p & ~(CHUNK_SIZE - 1);
  uint32_t idx = (uint32_t)(((uint64_t)((uintptr_t)p - c - BLOCKS_OFF) *
                             ta_geom[cls].recip) >> RECIP_SHIFT);
  atomic_store_explicit(block_slot(c, idx), slot_word(cls, n, spy) | skey,
                        RLX);
  if (UNLIKELY(spy)) atomic_fetch_add_explicit(&ta_spied, 1, RLX);
  UNPOISON(p, n);
  VG_ALLOC(p, n);
}

TA_HIDDEN void *ta_spy_alloc(SIZE_T cb);
TA_HIDDEN void *ta_spy_realloc(void *pv, SIZE_T cb);
TA_HIDDEN void ta_spy_free(void *pv);
TA_HIDDEN SIZE_T ta_spy_getsize(void *pv);
TA_HIDDEN int ta_spy_didalloc(void *pv);
TA_HIDDEN void ta_spy_minimize(void);
TA_HIDDEN void ta_spy_lock(void);
TA_HIDDEN void ta_spy_unlock(void);
TA_HIDDEN void ta_spy_reinit(void);

/* ---- large blocks (large.c) ---------------------------------------------- */

TA_HIDDEN void *ta_large_alloc(size_t n, uint32_t spy);
TA_HIDDEN void ta_large_free(uintptr_t u);
TA_HIDDEN int ta_large_claim(uintptr_t u, uintptr_t *old);
TA_HIDDEN void ta_large_release(uintptr_t u, uintptr_t old);
TA_HIDDEN void *ta_large_realloc(void *p, size_t n, uint32_t spy);
TA_HIDDEN void ta_large_cache_drain(void);
TA_HIDDEN int ta_large_excess(void);  /* the cache holds more than ta_retain */
TA_HIDDEN void ta_large_idle(void);   /* a small slow path, while it does */
TA_HIDDEN void ta_large_lock(void);
TA_HIDDEN void ta_large_unlock(void);
TA_HIDDEN void ta_large_reinit(void);

/* Whether e, the entry of u's region, says u is the start of a live large
** block (e has E_LARGE). */
static inline int large_at(uintptr_t e, uintptr_t u) {
  return (e & (E_CONT | L_LIVE)) == L_LIVE && !(u & (CHUNK_SIZE - 1));
}

/* ---- the core operations, no spy (alloc.c) ------------------------------- */

TA_HIDDEN void *ta_alloc(size_t n, uint32_t spy);
TA_HIDDEN void *ta_realloc(void *p, size_t n, uint32_t spy);
TA_HIDDEN void ta_free(void *p);
TA_HIDDEN size_t ta_getsize(void *p);
TA_HIDDEN int ta_didalloc(void *p);
TA_HIDDEN BOOL ta_spyed(void *p);
TA_HIDDEN void *ta_move_block(void *p, size_t n, uint32_t spy);

#endif
