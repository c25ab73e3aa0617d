/*
** taskalloc.c: the built-in COM task allocator for POSIX (see taskalloc.h).
**
** Design, in short:
**  - Memory comes from the OS in chunks of 1 MiB aligned to 1 MiB. A chunk
**    serves one size class; it starts with a header and an array of 32-bit
**    slots, one per block, holding the requested size and a LIVE bit (and a
**    SPY bit). That slot is all the bookkeeping of a live block.
**  - A two-level radix table maps address >> 20 to the chunk, so any
**    address is checked without reading it: DidAlloc, GetSize, Free and
**    Realloc look only at the table, chunk headers and slots. None of these
**    is ever unmapped, so a racing lookup never faults.
**  - A block above 64 KiB gets its own mapping, 1 MiB aligned, and no
**    descriptor: its size and LIVE/SPY/BUSY flags are the table entry of
**    its first 1 MiB region itself, and each further region it spans holds
**    a continuation entry (its distance to the first). That is 8 bytes per
**    MiB spanned, and a lookup never reads anything that gets unmapped.
**  - The block index is computed with a precomputed reciprocal and checked
**    (index * size == offset), which rejects interior pointers.
**  - Free swaps the slot (a large block: its first table entry) to 0
**    atomically: of two threads freeing the same block, exactly one sees
**    LIVE and frees it.
**  - Each thread keeps a small free list per class (intrusive: the link
**    lives in the free block), refilled and flushed in batches under the
**    class's lock; a pthread key destructor flushes a dying thread's lists.
**  - live_blocks/live_bytes are per-thread counters with a single writer
**    (relaxed load + store: no locked instruction), summed by the stats.
**  - Chunks are never returned to the OS (a lookup may read any chunk's
**    header at any time); a block above 64 KiB is unmapped when freed.
**
** Limits: user addresses below 2^48 (x86-64, arm64 with 48-bit VA; a
** mapping above is refused); requests above 2^40 bytes answer NULL.
*/
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700

#include "taskalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif

#if defined(__GNUC__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NOINLINE __attribute__((noinline))
#define HOT inline __attribute__((always_inline))
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#define NOINLINE
#define HOT inline
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

/* ---- geometry ---------------------------------------------------------- */

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

/* Free-list chains and large-block entries pack fields above bit 48. */
_Static_assert(sizeof(uintptr_t) == 8, "taskalloc needs 64-bit pointers");

/* Slot word of a small block: 0 = free. */
#define SLOT_LIVE 0x80000000u
#define SLOT_SPY 0x40000000u
#define SLOT_SIZE 0x3FFFFFFFu

/* Table entries (see the radix table below). Bit 0 set: an entry of a
** block above 64 KiB. Its first region's entry ("head") holds
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

/* Reciprocal precision: offsets are < 2^20 and sizes <= 2^16, so with 40
** fractional bits (off * recip) >> 40 is the exact quotient. */
#define RECIP_SHIFT 40

/* ---- OS memory ---------------------------------------------------------- */

static size_t g_page = 4096;
static _Atomic size_t g_mapped;    /* bytes held from the OS */
static _Atomic size_t g_meta;      /* of which bookkeeping */

static void *os_map(size_t len) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* len bytes (a multiple of the page size) at a CHUNK_SIZE-aligned address
** below 2^48: map len + CHUNK_SIZE and trim both ends. */
static void *os_map_aligned(size_t len) {
  size_t total = len + CHUNK_SIZE;
  uintptr_t raw, base;
  char *p;
  if (total < len) return NULL;
  p = os_map(total);
  if (!p) return NULL;
  raw = (uintptr_t)p;
  base = (raw + CHUNK_SIZE - 1) & ~(CHUNK_SIZE - 1);
  if (base > raw) munmap(p, base - raw);
  if (raw + total > base + len)
    munmap((void *)(base + len), raw + total - (base + len));
  if (((base + len - 1) >> VA_BITS) != 0) {  /* the table cannot cover it */
    munmap((void *)base, len);
    return NULL;
  }
  return (void *)base;
}

/* ---- the radix table: address >> 20 -> owner ------------------------------
** An entry is 0 (not ours), a chunk address (1 MiB aligned, so bit 0 is
** clear) or, with bit 0 set, a large block's head or continuation entry
** (E_LARGE above). Leaves are mapped on first use and never freed. */

typedef _Atomic uintptr_t tentry;
static _Atomic(tentry *) g_top[(size_t)1 << TOP_BITS];

static inline uintptr_t table_get(uintptr_t u) {
  tentry *leaf;
  if (u >> VA_BITS) return 0;
  leaf = atomic_load_explicit(&g_top[u >> (CHUNK_SHIFT + LEAF_BITS)], ACQ);
  if (!leaf) return 0;
  return atomic_load_explicit(&leaf[(u >> CHUNK_SHIFT) & (LEAF_LEN - 1)],
                              ACQ);
}

/* The entry itself (for a compare-and-swap), or NULL when its leaf does
** not exist yet (then the entry is 0). */
static inline tentry *table_slot(uintptr_t u) {
  tentry *leaf;
  if (u >> VA_BITS) return NULL;
  leaf = atomic_load_explicit(&g_top[u >> (CHUNK_SHIFT + LEAF_BITS)], ACQ);
  return leaf ? &leaf[(u >> CHUNK_SHIFT) & (LEAF_LEN - 1)] : NULL;
}

static int table_set(uintptr_t u, uintptr_t v) {
  _Atomic(tentry *) *top = &g_top[u >> (CHUNK_SHIFT + LEAF_BITS)];
  tentry *leaf = atomic_load_explicit(top, ACQ);
  if (!leaf) {
    tentry *fresh, *expect = NULL;
    if (!v) return 1;
    fresh = os_map(LEAF_LEN * sizeof(tentry));
    if (!fresh) return 0;
    if (atomic_compare_exchange_strong_explicit(top, &expect, fresh,
                                                memory_order_acq_rel, ACQ)) {
      leaf = fresh;
      atomic_fetch_add_explicit(&g_mapped, LEAF_LEN * sizeof(tentry), RLX);
      atomic_fetch_add_explicit(&g_meta, LEAF_LEN * sizeof(tentry), RLX);
    } else {  /* another thread mapped it first */
      munmap(fresh, LEAF_LEN * sizeof(tentry));
      leaf = expect;
    }
  }
  atomic_store_explicit(&leaf[(u >> CHUNK_SHIFT) & (LEAF_LEN - 1)], v, REL);
  return 1;
}

/* Entries for every 1 MiB region that [base, base + len) touches. */
static int table_set_range(uintptr_t base, size_t len, uintptr_t v) {
  uintptr_t r;
  for (r = base; r < base + len; r += CHUNK_SIZE)
    if (!table_set(r, v)) return 0;
  return 1;
}

/* ---- chunks and size classes -------------------------------------------- */

struct chunk {
  uint32_t cls, bsize, nslots, span;  /* span = nslots * bsize */
  uint32_t blocks_off, unused;
  uint64_t recip;
  char pad[32];
  _Atomic uint32_t slots[];           /* blocks follow at blocks_off */
};

/* Mutable state of a class, one cache line apart from the others. */
struct klass {
  _Alignas(64) pthread_mutex_t lock;
  void *chains;          /* stack of free chains, see chain_push */
  struct chunk *cur;     /* chunk being carved */
  uint32_t next_idx;     /* its first never-used block */
};

static struct klass g_cls[NCLASS];
static uint32_t g_bsize[NCLASS];   /* read-only after init */
static uint32_t g_batch[NCLASS];

static inline unsigned size_class(size_t n) {
  unsigned lg;
  if (n <= 128) return (unsigned)(((n ? n : 1) - 1) >> 4);
  lg = 63u - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
  return 8u + ((lg - 7u) << 2) + (unsigned)(((n - 1) >> (lg - 2)) & 3u);
}

static uint32_t class_size(unsigned c) {
  unsigned j, lg;
  if (c < 8) return 16u * (c + 1);
  j = c - 8;
  lg = 7 + j / 4;
  return (1u << lg) + (j % 4 + 1) * (1u << (lg - 2));
}

static inline struct chunk *chunk_of(const void *p) {
  return (struct chunk *)((uintptr_t)p & ~(CHUNK_SIZE - 1));
}

static inline uint32_t chunk_index(const struct chunk *c, uintptr_t u) {
  return (uint32_t)(((uint64_t)(u - (uintptr_t)c - c->blocks_off) *
                     c->recip) >> RECIP_SHIFT);
}

/* The slot of the block starting exactly at u, or NULL. */
static inline _Atomic uint32_t *small_slot(struct chunk *c, uintptr_t u) {
  uintptr_t rel = u - (uintptr_t)c - c->blocks_off;  /* wraps when below */
  uint64_t idx;
  if (rel >= c->span) return NULL;
  idx = ((uint64_t)rel * c->recip) >> RECIP_SHIFT;
  if (idx * c->bsize != rel) return NULL;
  return &c->slots[idx];
}

static struct chunk *chunk_new(unsigned cls) {
  struct chunk *c = os_map_aligned(CHUNK_SIZE);
  uint32_t bsize = g_bsize[cls], n, off;
  if (!c) return NULL;
  n = (uint32_t)((CHUNK_SIZE - sizeof *c) / (bsize + sizeof(uint32_t)));
  for (;;) {
    off = (uint32_t)((sizeof *c + n * sizeof(uint32_t) + 63) & ~(size_t)63);
    if (off + (size_t)n * bsize <= CHUNK_SIZE) break;
    n--;
  }
  c->cls = cls;
  c->bsize = bsize;
  c->nslots = n;
  c->span = n * bsize;
  c->blocks_off = off;
  c->recip = (((uint64_t)1 << RECIP_SHIFT) / bsize) + 1;
  if (!table_set((uintptr_t)c, (uintptr_t)c)) {  /* publishes the header */
    munmap(c, CHUNK_SIZE);
    return NULL;
  }
  atomic_fetch_add_explicit(&g_mapped, CHUNK_SIZE, RLX);
  atomic_fetch_add_explicit(&g_meta, off, RLX);
  return c;
}

/* Free blocks are linked through their first word. A chain handed to the
** class has its length and the next chain packed in its head's second word
** (user addresses fit in 48 bits; a chain is shorter than 2^16). */
#define NEXT(p) (((void **)(p))[0])
#define CHAIN(p) (((uintptr_t *)(p))[1])

/* With k->lock held: up to `want` blocks as a NULL-terminated list. */
static void *class_take(struct klass *k, unsigned cls, uint32_t want,
                        uint32_t *got) {
  void *head = k->chains;
  uint32_t n, i;
  if (head) {
    uintptr_t w;
    UNPOISON(head, 2 * sizeof(void *));
    w = CHAIN(head);
    k->chains = (void *)(w & PTR_MASK);
    n = (uint32_t)(w >> VA_BITS);
    if (n > want) {  /* split: keep the rest as a chain */
      void *t = head, *rest;
      for (i = 1; i < want; i++) t = NEXT(t);
      rest = NEXT(t);
      NEXT(t) = NULL;
      UNPOISON(rest, 2 * sizeof(void *));
      CHAIN(rest) = (uintptr_t)k->chains | ((uintptr_t)(n - want) << VA_BITS);
      k->chains = rest;
      n = want;
    }
  } else {
    struct chunk *c = k->cur;
    char *b;
    uint32_t bs = g_bsize[cls];
    if (!c || k->next_idx >= c->nslots) {
      c = chunk_new(cls);
      if (!c) return NULL;
      k->cur = c;
      k->next_idx = 0;
    }
    n = c->nslots - k->next_idx;
    if (n > g_batch[cls]) n = g_batch[cls];
    if (n > want) n = want;
    head = b = (char *)c + c->blocks_off + (size_t)k->next_idx * bs;
    for (i = 0; i + 1 < n; i++, b += bs) NEXT(b) = b + bs;
    NEXT(b) = NULL;
    k->next_idx += n;
  }
  *got = n;
  return head;
}

/* Hands a NULL-terminated list of n blocks to the class. */
static void class_give(unsigned cls, void *head, uint32_t n) {
  struct klass *k = &g_cls[cls];
  pthread_mutex_lock(&k->lock);
  CHAIN(head) = (uintptr_t)k->chains | ((uintptr_t)n << VA_BITS);
  k->chains = head;
  pthread_mutex_unlock(&k->lock);
}

/* ---- per-thread caches ---------------------------------------------------- */

enum { TC_NONE = 0, TC_ACTIVE = 1, TC_DEAD = 2 };

struct bin {
  void *head;
  uint32_t count;
  uint32_t limit;   /* 0 unless the cache is active: sends Free to the slow
                    ** path, which sets the cache up or bypasses it */
};

struct tcache {
  struct bin bins[NCLASS];
  _Atomic int64_t blocks, bytes;   /* written by the owner only */
  int state;
  struct tcache *next, *prev;      /* registry, under g_reg_lock */
};

static _Thread_local struct tcache t_cache;

/* The cache's address, in the initial-exec TLS model: one %fs-relative
** load instead of a __tls_get_addr call per access (the cache itself
** stays in dynamic TLS: only these 8 bytes take static TLS space). */
#if defined(__GNUC__) && !defined(_WIN32)
static _Thread_local struct tcache *t_self
    __attribute__((tls_model("initial-exec")));
#else
static _Thread_local struct tcache *t_self;
#endif

static inline struct tcache *tc_self(void) {
  struct tcache *tc = t_self;
  if (UNLIKELY(!tc)) t_self = tc = &t_cache;
  return tc;
}

static pthread_mutex_t g_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tcache *g_reg;                  /* live threads' caches */
static _Atomic int64_t g_dead_blocks, g_dead_bytes;  /* exited threads and
                                              ** calls after a thread's exit */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
/* The key's destructor is code of this module. The Lua module is linked
** with -Wl,-z,nodelete, so it is never unloaded while threads still run,
** and the key is never deleted. */
static pthread_key_t g_key;
static int g_key_ok;

static void tc_exit(void *arg);
static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

static void global_init(void) {
  unsigned c;
  long ps = sysconf(_SC_PAGESIZE);
  if (ps > 0) g_page = (size_t)ps;
  for (c = 0; c < NCLASS; c++) {
    uint32_t b;
    pthread_mutex_init(&g_cls[c].lock, NULL);
    g_bsize[c] = class_size(c);
    /* about 8 KiB moved per lock, between 1 and 64 blocks */
    b = 8192 / g_bsize[c];
    g_batch[c] = b < 1 ? 1 : b > 64 ? 64 : b;
  }
  g_key_ok = pthread_key_create(&g_key, tc_exit) == 0;
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static inline void tc_count_fast(struct tcache *tc, int64_t nb, int64_t sz) {
  atomic_store_explicit(&tc->blocks,
                        atomic_load_explicit(&tc->blocks, RLX) + nb, RLX);
  atomic_store_explicit(&tc->bytes,
                        atomic_load_explicit(&tc->bytes, RLX) + sz, RLX);
}

static void tc_count(struct tcache *tc, int64_t nb, int64_t sz) {
  if (tc->state == TC_ACTIVE) {
    tc_count_fast(tc, nb, sz);
  } else {
    atomic_fetch_add_explicit(&g_dead_blocks, nb, RLX);
    atomic_fetch_add_explicit(&g_dead_bytes, sz, RLX);
  }
}

static void tc_init(struct tcache *tc) {
  unsigned c;
  pthread_once(&g_once, global_init);
  for (c = 0; c < NCLASS; c++) tc->bins[c].limit = 2 * g_batch[c];
  pthread_mutex_lock(&g_reg_lock);
  tc->next = g_reg;
  tc->prev = NULL;
  if (g_reg) g_reg->prev = tc;
  g_reg = tc;
  tc->state = TC_ACTIVE;
  pthread_mutex_unlock(&g_reg_lock);
  /* Without the key the cache is simply never flushed at exit. */
  if (g_key_ok) pthread_setspecific(g_key, tc);
}

/* Gives the first n blocks of bin c back to the class. */
static void bin_flush(struct bin *b, unsigned c, uint32_t n) {
  void *head = b->head, *t = head;
  uint32_t i;
  if (!n) return;
  for (i = 1; i < n; i++) t = NEXT(t);
  b->head = NEXT(t);
  b->count -= n;
  NEXT(t) = NULL;
  class_give(c, head, n);
}

static void tc_flush_all(struct tcache *tc) {
  unsigned c;
  for (c = 0; c < NCLASS; c++) bin_flush(&tc->bins[c], c, tc->bins[c].count);
}

static void tc_exit(void *arg) {
  struct tcache *tc = arg;
  unsigned c;
  pthread_mutex_lock(&g_reg_lock);
  tc_flush_all(tc);
  for (c = 0; c < NCLASS; c++) tc->bins[c].limit = 0;
  atomic_fetch_add_explicit(&g_dead_blocks,
                            atomic_load_explicit(&tc->blocks, RLX), RLX);
  atomic_fetch_add_explicit(&g_dead_bytes,
                            atomic_load_explicit(&tc->bytes, RLX), RLX);
  atomic_store_explicit(&tc->blocks, 0, RLX);
  atomic_store_explicit(&tc->bytes, 0, RLX);
  if (tc->prev) tc->prev->next = tc->next; else g_reg = tc->next;
  if (tc->next) tc->next->prev = tc->prev;
  tc->state = TC_DEAD;  /* later calls on this thread bypass the cache */
  pthread_mutex_unlock(&g_reg_lock);
}

/* ---- spy bookkeeping shared with the core ------------------------------- */

static _Atomic(IMallocSpy *) g_spy;
static _Atomic size_t g_spied;       /* live blocks with the SPY flag */

/* ---- small blocks ------------------------------------------------------- */

static inline void small_mark(void *p, size_t n, uint32_t spy) {
  struct chunk *c = chunk_of(p);
  atomic_store_explicit(&c->slots[chunk_index(c, (uintptr_t)p)],
                        SLOT_LIVE | spy | (uint32_t)n, RLX);
  if (UNLIKELY(spy)) atomic_fetch_add_explicit(&g_spied, 1, RLX);
  UNPOISON(p, n);
  VG_ALLOC(p, n);
}

/* A block allocated under a spy comes from the class of n + 1 bytes: a spy
** returns the block plus a header of at most n bytes (it asked for n), so
** the caller's pointer then lies inside the block, never at its end, and
** core_spyed finds the block from it. */
#define SPY_PAD(spy) ((spy) ? 1u : 0u)

static NOINLINE void *small_alloc_slow(size_t n, uint32_t spy) {
  struct tcache *tc = tc_self();
  unsigned c = size_class(n + SPY_PAD(spy));
  struct klass *k;
  void *p;
  uint32_t got;
  if (tc->state == TC_NONE) tc_init(tc);
  k = &g_cls[c];
  pthread_mutex_lock(&k->lock);
  p = class_take(k, c, tc->state == TC_ACTIVE ? tc->bins[c].limit : 1, &got);
  pthread_mutex_unlock(&k->lock);
  if (!p) return NULL;
  if (got > 1) {  /* only an active cache takes more than one */
    tc->bins[c].head = NEXT(p);
    tc->bins[c].count = got - 1;
  }
  small_mark(p, n, spy);
  tc_count(tc, 1, (int64_t)n);
  return p;
}

static HOT void *small_alloc(size_t n, uint32_t spy) {
  struct tcache *tc = tc_self();
  struct bin *b = &tc->bins[size_class(n + SPY_PAD(spy))];
  void *p = b->head;
  if (UNLIKELY(!p)) return small_alloc_slow(n, spy);
  UNPOISON(p, 2 * sizeof(void *));
  b->head = NEXT(p);
  b->count--;
  small_mark(p, n, spy);
  tc_count_fast(tc, 1, (int64_t)n);
  return p;
}

static NOINLINE void small_release_slow(void *p, unsigned c, uint32_t old) {
  struct tcache *tc = tc_self();
  struct bin *b = &tc->bins[c];
  if (tc->state == TC_NONE) tc_init(tc);
  if (tc->state == TC_ACTIVE) {
    NEXT(p) = b->head;
    b->head = p;
    b->count++;
    if (b->count > b->limit) bin_flush(b, c, g_batch[c]);
  } else {
    NEXT(p) = NULL;
    class_give(c, p, 1);
  }
  tc_count(tc, -1, -(int64_t)(old & SLOT_SIZE));
}

/* p was claimed (its slot swapped from old to 0): back to the free lists. */
static HOT void small_release(void *p, unsigned c, uint32_t old) {
  struct tcache *tc = tc_self();
  struct bin *b = &tc->bins[c];
  VG_FREE(p);
  POISON(p, g_bsize[c]);
  UNPOISON(p, 2 * sizeof(void *));
  if (UNLIKELY(old & SLOT_SPY)) atomic_fetch_sub_explicit(&g_spied, 1, RLX);
  if (UNLIKELY(b->count >= b->limit)) {
    small_release_slow(p, c, old);
    return;
  }
  NEXT(p) = b->head;
  b->head = p;
  b->count++;
  tc_count_fast(tc, -1, -(int64_t)(old & SLOT_SIZE));
}

/* ---- large blocks: one mapping each, described by its table entries ------
** No descriptor: the head entry (the block's first 1 MiB region) holds the
** requested size and the flags, so a block costs 8 bytes per MiB spanned.
** The mapping is always the requested size rounded up to the page size (an
** in-place Realloc trims it), so its length is not stored.
**
** Unmapping, and a racing lookup: DidAlloc, GetSize, Free, Realloc and
** core_spyed read only table entries for a large block, never the block or
** anything else that gets unmapped, so no lookup can fault, however it
** interleaves with a Free. The block's own bytes are read (Realloc's copy)
** only by the thread that claimed it (head swapped to 0) or marked it BUSY,
** which no other thread can then claim. A release clears the block's entries
** before it unmaps: while the range is still mapped nobody else can be given
** it, so no entry of a new owner (a chunk or large block of ours, mapped
** later at the same address) can be wiped by ours, and once the range is
** unmapped no stale entry of ours claims memory that is now someone else's
** (a lookup in between sees 0 or a continuation entry: "not a block"). */

static inline size_t page_up(size_t n) {
  return (n + g_page - 1) & ~(g_page - 1);
}

static inline uintptr_t large_head(size_t n, uint32_t spy) {
  return ((uintptr_t)n << E_SHIFT) | L_LIVE | (spy ? L_SPY : 0) | E_LARGE;
}

/* Whether e, the entry of u's region, says u is the start of a live large
** block (e has E_LARGE). */
static inline int large_at(uintptr_t e, uintptr_t u) {
  return (e & (E_CONT | L_LIVE)) == L_LIVE && !(u & (CHUNK_SIZE - 1));
}

/* Entries for the block at base of len bytes: continuations first, the
** head last (its release store publishes them with it). */
static int large_publish(uintptr_t base, size_t len, uintptr_t head) {
  uintptr_t r;
  for (r = base + CHUNK_SIZE; r < base + len; r += CHUNK_SIZE)
    if (!table_set(r, (((r - base) >> CHUNK_SHIFT) << E_SHIFT) | E_CONT |
                          E_LARGE))
      return 0;
  return table_set(base, head);
}

static void *large_alloc(size_t n, uint32_t spy) {
  struct tcache *tc = tc_self();
  size_t len;
  char *p;
  if (n > MAX_ALLOC) return NULL;
  pthread_once(&g_once, global_init);
  len = page_up(n);
  p = os_map_aligned(len);
  if (!p) return NULL;
  if (!large_publish((uintptr_t)p, len, large_head(n, spy))) {
    table_set_range((uintptr_t)p, len, 0);  /* before the munmap, as above */
    munmap(p, len);
    return NULL;
  }
  atomic_fetch_add_explicit(&g_mapped, len, RLX);
  if (spy) atomic_fetch_add_explicit(&g_spied, 1, RLX);
  if (tc->state == TC_NONE) tc_init(tc);
  tc_count(tc, 1, (int64_t)n);
  VG_ALLOC(p, n);
  return p;
}

/* Claims the large block at u by swapping its head entry from live (and
** not BUSY) to 0: 1 and the old head when this call won. Of two threads
** freeing the same block, one swaps, the other sees 0 (or a failed CAS,
** then 0) and does nothing. */
static int large_claim(uintptr_t u, uintptr_t *old) {
  tentry *t;
  uintptr_t e;
  if (u & (CHUNK_SIZE - 1)) return 0;
  t = table_slot(u);
  if (!t) return 0;
  e = atomic_load_explicit(t, ACQ);
  for (;;) {
    if (!(e & E_LARGE) || !large_at(e, u) || (e & L_BUSY)) return 0;
    if (atomic_compare_exchange_weak_explicit(t, &e, 0, ACQ, ACQ)) break;
  }
  *old = e;
  return 1;
}

/* The block at u was claimed (its head was `old`): clear the rest of its
** entries, then unmap it. */
static void large_release(uintptr_t u, uintptr_t old) {
  struct tcache *tc = tc_self();
  size_t n = (size_t)(old >> E_SHIFT), len = page_up(n);
  VG_FREE((void *)u);
  if (len > CHUNK_SIZE) table_set_range(u + CHUNK_SIZE, len - CHUNK_SIZE, 0);
  munmap((void *)u, len);
  atomic_fetch_sub_explicit(&g_mapped, len, RLX);
  if (old & L_SPY) atomic_fetch_sub_explicit(&g_spied, 1, RLX);
  if (tc->state == TC_NONE) tc_init(tc);
  tc_count(tc, -1, -(int64_t)n);
}

static NOINLINE void large_free(uintptr_t u) {
  uintptr_t old;
  if (large_claim(u, &old)) large_release(u, old);
}

/* ---- the core operations (no spy) --------------------------------------- */

static HOT void *core_alloc(size_t n, uint32_t spy) {
  if (LIKELY(n <= SMALL_MAX - SPY_PAD(spy))) return small_alloc(n, spy);
  return large_alloc(n, spy);
}

static HOT void core_free(void *p) {
  uintptr_t u = (uintptr_t)p, e = table_get(u);
  struct chunk *c;
  _Atomic uint32_t *slot;
  uint32_t old;
  if (!e) return;
  if (UNLIKELY(e & E_LARGE)) {
    large_free(u);
    return;
  }
  c = (struct chunk *)e;
  slot = small_slot(c, u);
  if (!slot || !(atomic_load_explicit(slot, RLX) & SLOT_LIVE)) return;
  old = atomic_exchange_explicit(slot, 0, ACQ);
  if (!(old & SLOT_LIVE)) return;   /* another thread freed it first */
  small_release(p, c->cls, old);
}

static size_t core_getsize(void *p) {
  uintptr_t u = (uintptr_t)p, e = table_get(u);
  _Atomic uint32_t *slot;
  uint32_t w;
  if (!e) return (size_t)-1;
  if (UNLIKELY(e & E_LARGE))
    return large_at(e, u) ? (size_t)(e >> E_SHIFT) : (size_t)-1;
  slot = small_slot((struct chunk *)e, u);
  if (!slot) return (size_t)-1;
  w = atomic_load_explicit(slot, RLX);
  return (w & SLOT_LIVE) ? (size_t)(w & SLOT_SIZE) : (size_t)-1;
}

static int core_didalloc(void *p) {
  uintptr_t u = (uintptr_t)p, e = table_get(u);
  _Atomic uint32_t *slot;
  if (!e) return 0;
  if (UNLIKELY(e & E_LARGE)) return large_at(e, u);
  slot = small_slot((struct chunk *)e, u);
  return slot && (atomic_load_explicit(slot, RLX) & SLOT_LIVE) != 0;
}

/* Whether p is the start of, or lies inside, a live block allocated under
** the spy: a spy may hand out a pointer past a header of its own. */
static BOOL core_spyed(void *p) {
  uintptr_t u = (uintptr_t)p, e = table_get(u), rel;
  struct chunk *c;
  uint32_t w;
  if (!e) return 0;
  if (e & E_LARGE) {  /* find the head: it holds the flags and size */
    uintptr_t base = u & ~(CHUNK_SIZE - 1);
    if (e & E_CONT) {
      base -= (e >> E_SHIFT) << CHUNK_SHIFT;
      e = table_get(base);
    }
    return (e & (E_LARGE | E_CONT | L_LIVE | L_SPY)) ==
               (E_LARGE | L_LIVE | L_SPY) &&
           u - base < page_up((size_t)(e >> E_SHIFT));
  }
  c = (struct chunk *)e;
  rel = u - (uintptr_t)c - c->blocks_off;
  if (rel >= c->span) return 0;
  w = atomic_load_explicit(&c->slots[chunk_index(c, u)], RLX);
  return (w & SLOT_LIVE) && (w & SLOT_SPY);
}

/* Moves the live block p (of `old` bytes) to a new block of n bytes:
** allocate first, so that a failure leaves p as it was. */
static void *move_block(void *p, size_t n, uint32_t spy) {
  uintptr_t u = (uintptr_t)p, e = table_get(u);
  void *q = core_alloc(n, spy);
  size_t oldn;
  if (!q) return NULL;
  if (e & E_LARGE) {
    uintptr_t s;
    if (!large_claim(u, &s)) goto lost;
    oldn = (size_t)(s >> E_SHIFT);
    memcpy(q, p, oldn < n ? oldn : n);
    large_release(u, s);
  } else {
    struct chunk *c = (struct chunk *)e;
    _Atomic uint32_t *slot = c ? small_slot(c, u) : NULL;
    uint32_t old;
    if (!slot) goto lost;  /* a racing Free gave the address away */
    old = atomic_exchange_explicit(slot, 0, ACQ);
    if (!(old & SLOT_LIVE)) goto lost;
    oldn = old & SLOT_SIZE;
    memcpy(q, p, oldn < n ? oldn : n);
    small_release(p, c->cls, old);
  }
  return q;
lost:  /* p was freed by another thread meanwhile */
  core_free(q);
  return NULL;
}

/* Realloc of p, whose table entry is a large block's: in place when the
** new size is still large and fits the mapping, which is then trimmed. */
static NOINLINE void *large_realloc(void *p, size_t n, uint32_t spy) {
  uintptr_t u = (uintptr_t)p, s;
  tentry *t = table_slot(u);
  size_t len, newlen, oldn;
  if (!t) return NULL;
  s = atomic_load_explicit(t, ACQ);
  if (!(s & E_LARGE) || !large_at(s, u) || (s & L_BUSY)) return NULL;
  oldn = (size_t)(s >> E_SHIFT);
  len = page_up(oldn);
  newlen = page_up(n);
  if (n <= SMALL_MAX || newlen > len) return move_block(p, n, spy);
  /* BUSY: a racing Free or Realloc of p now does nothing, so the tail is
  ** ours to unmap and the head ours to rewrite. */
  if (!atomic_compare_exchange_strong_explicit(t, &s, s | L_BUSY, ACQ, ACQ))
    return NULL;
  if (newlen < len) {  /* entries of the regions left, then the tail */
    uintptr_t keep = (u + newlen + CHUNK_SIZE - 1) & ~(CHUNK_SIZE - 1);
    if (keep < u + len) table_set_range(keep, u + len - keep, 0);
    munmap((void *)(u + newlen), len - newlen);
    atomic_fetch_sub_explicit(&g_mapped, len - newlen, RLX);
  }
  VG_RESIZE(p, oldn, n);
  if (spy && !(s & L_SPY)) atomic_fetch_add_explicit(&g_spied, 1, RLX);
  atomic_store_explicit(t, large_head(n, (uint32_t)((s & L_SPY) | spy)),
                        REL);
  tc_count(tc_self(), 0, (int64_t)n - (int64_t)oldn);
  return p;
}

static void *core_realloc(void *p, size_t n, uint32_t spy) {
  uintptr_t u = (uintptr_t)p, e;
  struct chunk *c;
  _Atomic uint32_t *slot;
  uint32_t w;
  if (!p) return core_alloc(n, spy);
  if (!n) {
    core_free(p);
    return NULL;
  }
  e = table_get(u);
  if (!e || n > MAX_ALLOC) return NULL;
  if (e & E_LARGE) return large_realloc(p, n, spy);
  c = (struct chunk *)e;
  slot = small_slot(c, u);
  if (!slot) return NULL;
  w = atomic_load_explicit(slot, RLX);
  if (!(w & SLOT_LIVE)) return NULL;
  /* In place when it fits, unless that would strand most of a block
  ** above 128 bytes. */
  if (n + SPY_PAD(spy) <= c->bsize &&
      (c->bsize <= 128 || n > c->bsize / 4)) {
    uint32_t nw = SLOT_LIVE | (w & SLOT_SPY) | spy | (uint32_t)n;
    if (!atomic_compare_exchange_strong_explicit(slot, &w, nw, RLX, RLX))
      return NULL;
    if (spy && !(w & SLOT_SPY)) atomic_fetch_add_explicit(&g_spied, 1, RLX);
    UNPOISON(p, n);
    if (n < (w & SLOT_SIZE)) POISON((char *)p + n, (w & SLOT_SIZE) - n);
    VG_RESIZE(p, w & SLOT_SIZE, n);
    tc_count(tc_self(), 0, (int64_t)n - (int64_t)(w & SLOT_SIZE));
    return p;
  }
  return move_block(p, n, spy);
}

static void core_minimize(void) {
  struct tcache *tc = tc_self();
  if (tc->state == TC_ACTIVE) tc_flush_all(tc);
}

/* ---- IMallocSpy ------------------------------------------------------------
** As in ole32: spied calls are serialised under one lock, recursive so that
** a spy may itself call the allocator. Without a spy each call costs one
** relaxed load of g_spy. A block allocated under the spy carries SLOT_SPY
** (L_SPY); g_spied counts them so that a pending revoke completes when the
** last one is freed. */

static pthread_mutex_t g_spy_lock;
static pthread_once_t g_spy_once = PTHREAD_ONCE_INIT;
static int g_spy_pending;  /* under g_spy_lock */

static void spy_lock_init(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&g_spy_lock, &a);
  pthread_mutexattr_destroy(&a);
}

/* Locks and returns the spy, or unlocks and returns NULL if it is gone. */
static IMallocSpy *spy_enter(void) {
  IMallocSpy *spy;
  pthread_once(&g_spy_once, spy_lock_init);
  pthread_mutex_lock(&g_spy_lock);
  spy = atomic_load_explicit(&g_spy, RLX);
  if (!spy) pthread_mutex_unlock(&g_spy_lock);
  return spy;
}

/* Completes a pending revoke once no spied block is left; then unlocks. */
static void spy_leave(void) {
  if (g_spy_pending && atomic_load_explicit(&g_spied, RLX) == 0) {
    IMallocSpy *spy = atomic_load_explicit(&g_spy, RLX);
    g_spy_pending = 0;
    atomic_store_explicit(&g_spy, NULL, REL);  /* before Release: the spy
                                               ** may free memory in it */
    spy->lpVtbl->Release(spy);
  }
  pthread_mutex_unlock(&g_spy_lock);
}

static NOINLINE void *spy_alloc(SIZE_T cb) {
  IMallocSpy *spy = spy_enter();
  SIZE_T n;
  void *p;
  if (!spy) return core_alloc(cb, 0);
  n = spy->lpVtbl->PreAlloc(spy, cb);
  if (cb && !n) {  /* PreAlloc may force a failure, except for 0 bytes */
    spy_leave();
    return NULL;
  }
  p = core_alloc(n, SLOT_SPY);
  p = spy->lpVtbl->PostAlloc(spy, p);
  spy_leave();
  return p;
}

static NOINLINE void *spy_realloc(void *pv, SIZE_T cb) {
  IMallocSpy *spy = spy_enter();
  BOOL spyed;
  void *real = NULL, *p;
  SIZE_T n;
  if (!spy) return core_realloc(pv, cb, 0);
  spyed = pv ? core_spyed(pv) : 0;
  n = spy->lpVtbl->PreRealloc(spy, pv, cb, &real, spyed);
  if (cb && !n) {  /* forced failure: the block stays as it was */
    spy_leave();
    return NULL;
  }
  p = core_realloc(real, n, SLOT_SPY);
  /* Like ole32 (Wine), the result counts as spied. */
  p = spy->lpVtbl->PostRealloc(spy, p, 1);
  spy_leave();
  return p;
}

static NOINLINE void spy_free(void *pv) {
  IMallocSpy *spy = spy_enter();
  BOOL spyed;
  if (!spy) {
    core_free(pv);
    return;
  }
  spyed = core_spyed(pv);
  core_free(spy->lpVtbl->PreFree(spy, pv, spyed));
  spy->lpVtbl->PostFree(spy, spyed);
  spy_leave();
}

static NOINLINE SIZE_T spy_getsize(void *pv) {
  IMallocSpy *spy = spy_enter();
  BOOL spyed;
  SIZE_T n;
  if (!spy) return core_getsize(pv);
  spyed = core_spyed(pv);
  n = core_getsize(spy->lpVtbl->PreGetSize(spy, pv, spyed));
  n = spy->lpVtbl->PostGetSize(spy, n, spyed);
  spy_leave();
  return n;
}

static NOINLINE int spy_didalloc(void *pv) {
  IMallocSpy *spy = spy_enter();
  BOOL spyed;
  int r;
  if (!spy) return core_didalloc(pv);
  spyed = core_spyed(pv);
  r = core_didalloc(spy->lpVtbl->PreDidAlloc(spy, pv, spyed));
  /* Microsoft documents pRequest as the caller's pointer (Wine passes the
  ** one PreDidAlloc returned). */
  r = spy->lpVtbl->PostDidAlloc(spy, pv, spyed, r);
  spy_leave();
  return r;
}

static NOINLINE void spy_minimize(void) {
  IMallocSpy *spy = spy_enter();
  if (!spy) {
    core_minimize();
    return;
  }
  spy->lpVtbl->PreHeapMinimize(spy);
  core_minimize();
  spy->lpVtbl->PostHeapMinimize(spy);
  spy_leave();
}

#define SPYING() \
  UNLIKELY(atomic_load_explicit(&g_spy, RLX) != NULL)

/* ---- the IMalloc singleton ------------------------------------------------ */

static int iid_eq(REFIID a, const IID *b) {
  return memcmp(a, b, sizeof(IID)) == 0;
}

static HRESULT STDMETHODCALLTYPE m_QueryInterface(IMalloc *This, REFIID riid,
                                                  void **ppv);

static ULONG STDMETHODCALLTYPE m_AddRef(IMalloc *This) {
  (void)This;
  return 2;  /* a static singleton; Wine answers the same */
}

static ULONG STDMETHODCALLTYPE m_Release(IMalloc *This) {
  (void)This;
  return 1;
}

static void *STDMETHODCALLTYPE m_Alloc(IMalloc *This, SIZE_T cb) {
  (void)This;
  if (SPYING()) return spy_alloc(cb);
  return core_alloc(cb, 0);
}

static void *STDMETHODCALLTYPE m_Realloc(IMalloc *This, void *pv, SIZE_T cb) {
  (void)This;
  if (SPYING()) return spy_realloc(pv, cb);
  return core_realloc(pv, cb, 0);
}

static void STDMETHODCALLTYPE m_Free(IMalloc *This, void *pv) {
  (void)This;
  if (!pv) return;
  if (SPYING()) {
    spy_free(pv);
    return;
  }
  core_free(pv);
}

static SIZE_T STDMETHODCALLTYPE m_GetSize(IMalloc *This, void *pv) {
  (void)This;
  if (!pv) return (SIZE_T)-1;
  if (SPYING()) return spy_getsize(pv);
  return core_getsize(pv);
}

static int STDMETHODCALLTYPE m_DidAlloc(IMalloc *This, void *pv) {
  (void)This;
  if (!pv) return -1;
  if (SPYING()) return spy_didalloc(pv);
  return core_didalloc(pv);
}

/* Gives the calling thread's cached free blocks back to the shared lists,
** where any thread can reuse them. Nothing is returned to the OS: chunks
** stay mapped because lock-free lookups may read their headers at any time
** (large blocks are unmapped as soon as they are freed). */
static void STDMETHODCALLTYPE m_HeapMinimize(IMalloc *This) {
  (void)This;
  if (SPYING()) {
    spy_minimize();
    return;
  }
  core_minimize();
}

static const IMallocVtbl g_vtbl = {
  m_QueryInterface, m_AddRef, m_Release, m_Alloc, m_Realloc,
  m_Free, m_GetSize, m_DidAlloc, m_HeapMinimize
};

static IMalloc g_malloc = { &g_vtbl };

static HRESULT STDMETHODCALLTYPE m_QueryInterface(IMalloc *This, REFIID riid,
                                                  void **ppv) {
  static const IID iid_unknown = IMALLOC_IID_IUNKNOWN;
  static const IID iid_malloc = IMALLOC_IID_IMALLOC;
  (void)This;
  if (!ppv) return E_POINTER;
  if (riid && (iid_eq(riid, &iid_unknown) || iid_eq(riid, &iid_malloc))) {
    *ppv = &g_malloc;
    return S_OK;
  }
  *ppv = NULL;  /* COM's rule (Wine leaves it untouched) */
  return riid ? E_NOINTERFACE : E_INVALIDARG;
}

/* ---- fork ---------------------------------------------------------------
** A fork from a multithreaded process must not leave a lock held by a thread
** that does not exist in the child: all are taken around fork (in the order
** the code nests them). The child re-initialises them, as glibc's malloc
** does, because a recursive mutex may only be unlocked by its owner's TID,
** which the child does not have. */

static void fork_prepare(void) {
  unsigned c;
  pthread_once(&g_spy_once, spy_lock_init);
  pthread_mutex_lock(&g_spy_lock);
  pthread_mutex_lock(&g_reg_lock);
  for (c = 0; c < NCLASS; c++) pthread_mutex_lock(&g_cls[c].lock);
}

static void fork_parent(void) {
  unsigned c;
  for (c = NCLASS; c-- > 0;) pthread_mutex_unlock(&g_cls[c].lock);
  pthread_mutex_unlock(&g_reg_lock);
  pthread_mutex_unlock(&g_spy_lock);
}

static void fork_child(void) {
  unsigned c;
  for (c = 0; c < NCLASS; c++) pthread_mutex_init(&g_cls[c].lock, NULL);
  pthread_mutex_init(&g_reg_lock, NULL);
  spy_lock_init();
}

/* ---- exported functions ------------------------------------------------- */

HRESULT imalloc_CoGetMalloc(DWORD context, IMalloc **out) {
  if (!out) return E_POINTER;
  if (context != MEMCTX_TASK) {
    *out = NULL;
    return E_INVALIDARG;
  }
  *out = &g_malloc;
  return S_OK;
}

void *imalloc_CoTaskMemAlloc(SIZE_T cb) {
  return m_Alloc(&g_malloc, cb);
}

void *imalloc_CoTaskMemRealloc(void *p, SIZE_T cb) {
  return m_Realloc(&g_malloc, p, cb);
}

void imalloc_CoTaskMemFree(void *p) {
  m_Free(&g_malloc, p);
}

HRESULT imalloc_CoRegisterMallocSpy(IMallocSpy *spy) {
  static const IID iid_spy = IMALLOC_IID_IMALLOCSPY;
  HRESULT hr = E_INVALIDARG;
  void *got = NULL;
  if (!spy) return E_INVALIDARG;
  pthread_once(&g_spy_once, spy_lock_init);
  pthread_mutex_lock(&g_spy_lock);
  if (atomic_load_explicit(&g_spy, RLX)) {
    hr = CO_E_OBJISREG;  /* also while a revoke is pending */
  } else if (spy->lpVtbl->QueryInterface(spy, &iid_spy, &got) >= 0 && got) {
    atomic_store_explicit(&g_spy, (IMallocSpy *)got, REL);
    hr = S_OK;
  }
  pthread_mutex_unlock(&g_spy_lock);
  return hr;
}

HRESULT imalloc_CoRevokeMallocSpy(void) {
  HRESULT hr = S_OK;
  IMallocSpy *spy;
  pthread_once(&g_spy_once, spy_lock_init);
  pthread_mutex_lock(&g_spy_lock);
  spy = atomic_load_explicit(&g_spy, RLX);
  if (!spy) {
    hr = CO_E_OBJNOTREG;
  } else if (atomic_load_explicit(&g_spied, RLX) != 0) {
    g_spy_pending = 1;
    hr = E_ACCESSDENIED;
  } else {
    g_spy_pending = 0;
    atomic_store_explicit(&g_spy, NULL, REL);
    spy->lpVtbl->Release(spy);
  }
  pthread_mutex_unlock(&g_spy_lock);
  return hr;
}

void imalloc_taskalloc_stats(struct imalloc_taskstats *out) {
  int64_t blocks, bytes;
  struct tcache *tc;
  if (!out) return;
  pthread_mutex_lock(&g_reg_lock);
  blocks = atomic_load_explicit(&g_dead_blocks, RLX);
  bytes = atomic_load_explicit(&g_dead_bytes, RLX);
  for (tc = g_reg; tc; tc = tc->next) {
    blocks += atomic_load_explicit(&tc->blocks, RLX);
    bytes += atomic_load_explicit(&tc->bytes, RLX);
  }
  pthread_mutex_unlock(&g_reg_lock);
  out->live_blocks = blocks > 0 ? (size_t)blocks : 0;
  out->live_bytes = bytes > 0 ? (size_t)bytes : 0;
  out->mapped_bytes = atomic_load_explicit(&g_mapped, RLX);
  out->metadata_bytes = atomic_load_explicit(&g_meta, RLX);
  out->bookkeeping_bytes_per_block = sizeof(uint32_t);
  out->spied_blocks = atomic_load_explicit(&g_spied, RLX);
}
