/*
** tcache.c: each thread's cache of free small blocks (a list per class,
** intrusive: the link lives in the free block), refilled from and flushed
** to the classes in batches; the registry of threads' caches, and the
** shard (chunk.c) each live thread refills from.
**
** HeapMinimize cannot reach into another thread's cache (its owner uses it
** without a lock), so it bumps an epoch instead: every thread flushes its
** whole cache on its next slow path (a refill or an overflow) after that.
** What an idle thread keeps is bounded by the bins' limits (about 16 KiB
** per class); a thread that exits flushes everything (a key destructor).
*/
#include "internal.h"

#include <errno.h>
#include <string.h>

_Thread_local struct tcache ta_cache;
/* Its bins' words are SLOT_NEVER (internal.h), so that the Free fast path
** matches no slot, not even a free one (0). */
#define NEVER_BIN { NULL, 0, SLOT_NEVER }
#define NEVER_BINS4 NEVER_BIN, NEVER_BIN, NEVER_BIN, NEVER_BIN
_Static_assert(NCLASS == 44, "one initialiser per class");
struct tcache ta_nocache = { .bins = {
  NEVER_BINS4, NEVER_BINS4, NEVER_BINS4, NEVER_BINS4, NEVER_BINS4,
  NEVER_BINS4, NEVER_BINS4, NEVER_BINS4, NEVER_BINS4, NEVER_BINS4,
  NEVER_BINS4 }, .remote = (uintptr_t *)ta_noremote };
const uintptr_t ta_noremote[NCLASS];
#if defined(__GNUC__)
_Thread_local struct tcache *ta_self
    __attribute__((tls_model("initial-exec"))) = &ta_nocache;
#else
_Thread_local struct tcache *ta_self = &ta_nocache;
#endif

static pthread_mutex_t g_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tcache *g_reg;                  /* live threads' caches */
static _Atomic int64_t g_dead_blocks, g_dead_bytes;  /* exited threads and
                                              ** calls after a thread's exit */
static _Atomic unsigned g_epoch;              /* HeapMinimize calls */
/* The next shard (chunk.c) to share when all are held by live threads
** (ta_shards); both written under the registry lock. */
static unsigned g_shard_next;
_Static_assert(NSHARD <= 32, "ta_shards is 32 bits");
/* The key's destructor is code of this module. The Lua module pins itself
** (backend_posix.c: dlopen with RTLD_NODELETE), so it is never unloaded
** while threads still run, and the key is never deleted. */
static pthread_key_t g_key;
static int g_key_ok;

static void tc_exit(void *arg);

/* ---- the arrays of remote words (struct tcache's remote) -----------------
** Carved from pages mapped for them, never unmapped: as many arrays as
** threads were ever active at once. An ended thread's array goes on a
** list (linked through its first word) that the next thread to set up its
** cache takes from first. All under the registry lock. */
#define RA_BYTES (NCLASS * sizeof(uintptr_t))
static uintptr_t *g_ra_spare;        /* given back, not taken again */
static char *g_ra_next, *g_ra_end;   /* the rest of the last page mapped */
static size_t g_ra_arrays, g_ra_nspare, g_ra_bytes;

/* An array, its contents undefined; NULL if the system refused a page. */
static uintptr_t *ra_take(void) {
  uintptr_t *a = g_ra_spare;
  if (a) {
    g_ra_spare = (uintptr_t *)a[0];
    g_ra_nspare--;
    return a;
  }
  if ((size_t)(g_ra_end - g_ra_next) < RA_BYTES) {
    char *p = ta_os_map(ta_page);
    if (!p) return NULL;
    atomic_fetch_add_explicit(&ta_mapped, ta_page, RLX);
    atomic_fetch_add_explicit(&ta_meta, ta_page, RLX);
    g_ra_bytes += ta_page;
    g_ra_next = p;
    g_ra_end = p + ta_page;
  }
  a = (uintptr_t *)(void *)g_ra_next;
  g_ra_next += RA_BYTES;
  g_ra_arrays++;
  return a;
}

static void ra_give(uintptr_t *a) {
  a[0] = (uintptr_t)g_ra_spare;
  g_ra_spare = a;
  g_ra_nspare++;
}

void ta_remote_pool_counts(size_t *arrays, size_t *spare, size_t *bytes) {
  pthread_mutex_lock(&g_reg_lock);
  *bytes = g_ra_bytes;
  *arrays = g_ra_arrays;
  *spare = g_ra_nspare;
  pthread_mutex_unlock(&g_reg_lock);
}

/* Once, at start-up (init.c): the key whose destructor flushes an exiting
** thread's cache. */
void ta_tc_key_create(void) {
  g_key_ok = pthread_key_create(&g_key, tc_exit) == 0;
}

void ta_tc_count(struct tcache *tc, int64_t nb, int64_t sz) {
  if (tc->state == TC_ACTIVE) {
    tc_count_fast(tc, nb, sz);
  } else {
    atomic_fetch_add_explicit(&g_dead_blocks, nb, RLX);
    atomic_fetch_add_explicit(&g_dead_bytes, sz, RLX);
  }
}

/* Until its cache is set up, and after its thread ended, no slot matches
** a bin's word: every Free takes the slow path. */
void ta_tc_never(struct tcache *tc) {
  unsigned c;
  for (c = 0; c < NCLASS; c++) tc->bins[c].word = SLOT_NEVER;
  tc->remote = (uintptr_t *)ta_noremote;  /* rooms 0: never written */
}

/* The most blocks bin c of tc holds: 2 batches while the cache is active,
** else 0 (its bins are empty then, their room 0). */
static uint32_t tc_limit(const struct tcache *tc, unsigned c) {
  return tc->state == TC_ACTIVE ? 2 * ta_batch[c] : 0;
}

static void tc_init(struct tcache *tc) {
  unsigned c;
  uint32_t held;
  uintptr_t *remote;
  ta_init();
  /* Without the key (the process used up its keys) no thread has a cache:
  ** one would keep its blocks past the thread's exit, and stay in the
  ** registry, which would then read the ended thread's memory. The state
  ** stays TC_NONE, which the slow paths bypass like TC_DEAD. */
  if (!g_key_ok) return;
  pthread_mutex_lock(&g_reg_lock);
  remote = ra_take();
  if (!remote) {
    /* The system refused the page for its remote words: no cache yet (it
    ** stays TC_NONE, bypassed as above); the next slow path tries again. */
    pthread_mutex_unlock(&g_reg_lock);
    return;
  }
  for (c = 0; c < NCLASS; c++) {
    tc->bins[c].room = 2 * ta_batch[c];
    tc->fill[c] = 1;
  }
  tc->epoch = atomic_load_explicit(&g_epoch, RLX);
  held = atomic_load_explicit(&ta_shards, RLX);
  if (held != (uint32_t)((1ull << NSHARD) - 1)) {  /* a free one */
    tc->shard = (unsigned)__builtin_ctz(~held);
    tc->own_shard = 1;
    atomic_fetch_or_explicit(&ta_shards, 1u << tc->shard, RLX);
  } else {  /* all held: share, in turn (own_shard stays 0) */
    tc->shard = g_shard_next++ % NSHARD;
  }
  tc->skey = (uint32_t)tc->shard << SLOT_SHARD_SHIFT;
  tc->ekey = (uintptr_t)tc->shard << E_SHARD_SHIFT;
  for (c = 0; c < NCLASS; c++) {
    tc->bins[c].word = slot_word(c, 0, 0) | tc->skey;
    remote[c] = ta_batch[c] * RB_ROOM_ONE;
  }
  tc->remote = remote;
  /* A cache is set up once, from zeroed thread-local memory: its prev is
  ** NULL already. */
  tc->next = g_reg;
  if (g_reg) g_reg->prev = tc;
  g_reg = tc;
  tc->state = TC_ACTIVE;
  pthread_mutex_unlock(&g_reg_lock);
  pthread_setspecific(g_key, tc);
}

void ta_tc_ready(struct tcache *tc) {
  if (tc->state == TC_NONE) tc_init(tc);  /* large.c: before it counts */
}

/* Gives the first n blocks of bin c back to the class. */
static void bin_flush(struct bin *b, unsigned c, uint32_t n) {
  void *head = b->head, *t = head;
  uint32_t i;
  if (!n) return;
  for (i = 1; i < n; i++) t = NEXT(t);
  b->head = NEXT(t);
  b->room += n;
  NEXT(t) = NULL;
  ta_class_give(c, head);
}

/* Gives tc's freed blocks of class c of other shards' chunks back to their
** chunks. */
static void remote_flush(struct tcache *tc, unsigned c) {
  void *head = rb_head(tc->remote[c]);
  /* a batch to go (the cache is active: tc_flush_all) */
  tc->remote[c] = (uintptr_t)(tc_limit(tc, c) / 2) * RB_ROOM_ONE;
  ta_class_give(c, head);  /* an empty list (NULL) gives nothing */
}

static void tc_flush_all(struct tcache *tc) {
  unsigned c;
  /* Not active: its remote words are ta_noremote's (no list, room 0) */
  if (tc->state == TC_ACTIVE)
    for (c = 0; c < NCLASS; c++) remote_flush(tc, c);
  for (c = 0; c < NCLASS; c++)
    bin_flush(&tc->bins[c], c, tc_limit(tc, c) - tc->bins[c].room);
}

/* A HeapMinimize happened since this cache last flushed: flush it. */
static void tc_check_epoch(struct tcache *tc) {
  unsigned e = atomic_load_explicit(&g_epoch, RLX);
  if (UNLIKELY(tc->epoch != e)) {
    tc->epoch = e;
    tc_flush_all(tc);
  }
}

/* A batch of them is ready (alloc.c's Free, or the slow path's below). */
void ta_remote_flush(struct tcache *tc, unsigned c) {
  remote_flush(tc, c);
  if (UNLIKELY(ta_large_excess())) ta_large_idle();
  tc_check_epoch(tc);
}

/* The key's destructor, once per thread. Its counts move to the dead
** ones; nothing reads the cache's counts, shard or epoch after, only its
** state (the slow paths count a dead thread's calls in the dead counts)
** and its bins, all empty with no room: every later call takes the slow
** paths, which bypass it. */
static void tc_exit(void *arg) {
  struct tcache *tc = arg;
  uintptr_t *remote = tc->remote;
  pthread_mutex_lock(&g_reg_lock);
  tc_flush_all(tc);
  memset(tc->bins, 0, sizeof tc->bins);
  ta_tc_never(tc);  /* its remote words ta_noremote's */
  atomic_fetch_add_explicit(&g_dead_blocks,
                            atomic_load_explicit(&tc->blocks, RLX), RLX);
  atomic_fetch_add_explicit(&g_dead_bytes,
                            atomic_load_explicit(&tc->bytes, RLX), RLX);
  /* Its chunks stay in the shard, for the next thread that takes it. */
  if (tc->own_shard)
    atomic_fetch_and_explicit(&ta_shards, ~(1u << tc->shard), RLX);
  if (tc->prev) tc->prev->next = tc->next; else g_reg = tc->next;
  if (tc->next) tc->next->prev = tc->prev;
  tc->state = TC_DEAD;  /* later calls on this thread bypass the cache */
  /* Only this thread used the array, and only while its cache was active
  ** (the remote path, in free_other and ta_small_release_slow): the next
  ** thread to set up its cache may take it. */
  ra_give(remote);
  pthread_mutex_unlock(&g_reg_lock);
}

/* The bin of n's class is empty (or the cache is not set up). A refill
** asks for 1 block the first time, then twice as many each time up to the
** bin's limit: a class used once costs a block, not a batch of them. */
void *ta_small_alloc_slow(size_t n, uint32_t spy) {
  struct tcache *tc = tc_self();
  unsigned c = size_class(n + SPY_PAD(spy));
  void *p;
  uint32_t got, want = 1;
  if (tc->state == TC_NONE) tc_init(tc);
  if (tc->state == TC_ACTIVE) {  /* fill reaches the limit, then stays */
    want = tc->fill[c];
    tc->fill[c] = (uint16_t)(2 * want < tc_limit(tc, c)
                                 ? 2 * want : tc_limit(tc, c));
  }
  if (UNLIKELY(ta_large_excess())) ta_large_idle();
  p = ta_class_take(tc->shard, c, want, &got);
  /* After the take: a chunk the flush empties goes to the pool for other
  ** threads, rather than straight back to this one's miss. (A dead
  ** cache's bins are empty: its flush gives nothing back.) */
  tc_check_epoch(tc);
  if (!p) {  /* the system refused a chunk or a table leaf */
    errno = ENOMEM;
    return NULL;
  }
  /* The bin was empty (room = limit): the list's rest goes in it, NULL
  ** and no change when the take was of one block (always so for a dead
  ** cache, whose limit is 0). */
  tc->bins[c].head = NEXT(p);
  tc->bins[c].room = tc_limit(tc, c) - (got - 1);
  small_mark(p, c, n, spy, tc->skey);
  ta_tc_count(tc, 1, (int64_t)n);
  return p;
}

/* p, of the chunk whose entry is e, was claimed (its slot swapped from
** old to 0), and its bin is full, or the cache is not set up, or p's chunk
** is another shard's. Such a block is not handed out again here: it goes
** back to its chunk with the next few of its class (ta_batch), so that a
** thread's blocks, and the slots every Alloc and Free writes, stay in its
** own chunks' cache lines. */
void ta_small_release_slow(void *p, uintptr_t e, uint32_t old) {
  struct tcache *tc = tc_self();
  unsigned c = (unsigned)entry_class(e);
  struct bin *b = &tc->bins[c];
  if (UNLIKELY(tc->state == TC_NONE)) tc_init(tc);
  if (tc->state == TC_ACTIVE && (e & E_SHARD) != tc->ekey) {
    if (!rb_room(rb_push(&tc->remote[c], tc->remote[c], p)))
      ta_remote_flush(tc, c);
  } else {
    if (UNLIKELY(ta_large_excess())) ta_large_idle();
    if (tc->state == TC_ACTIVE) {
      NEXT(p) = b->head;
      b->head = p;
      if (!b->room) bin_flush(b, c, ta_batch[c]);  /* full: limit + 1 */
      b->room--;
      tc_check_epoch(tc);
    } else {
      NEXT(p) = NULL;
      ta_class_give(c, p);
    }
  }
  ta_tc_count(tc, -1, -(int64_t)(old & SLOT_SIZE));
}

/* HeapMinimize: this thread's cache now, the others' on their next slow
** path; then the pages of every empty chunk and the cached large mappings
** go back to the system. */
void ta_minimize(void) {
  struct tcache *tc = tc_self();
  atomic_fetch_add_explicit(&g_epoch, 1, RLX);
  /* Whatever its state: a cache not set up or dead has empty bins. */
  tc->epoch = atomic_load_explicit(&g_epoch, RLX);
  tc_flush_all(tc);
  ta_pool_purge_all();
  ta_large_cache_drain();
}

void ta_registry_lock(void) {
  pthread_mutex_lock(&g_reg_lock);
}

void ta_registry_unlock(void) {
  pthread_mutex_unlock(&g_reg_lock);
}

void ta_registry_reinit(void) {
  pthread_mutex_init(&g_reg_lock, NULL);
}

void ta_stats_counts(int64_t *blocks, int64_t *bytes) {
  struct tcache *tc;
  int64_t nb, sz;
  pthread_mutex_lock(&g_reg_lock);
  nb = atomic_load_explicit(&g_dead_blocks, RLX);
  sz = atomic_load_explicit(&g_dead_bytes, RLX);
  for (tc = g_reg; tc; tc = tc->next) {
    nb += atomic_load_explicit(&tc->blocks, RLX);
    sz += atomic_load_explicit(&tc->bytes, RLX);
  }
  pthread_mutex_unlock(&g_reg_lock);
  *blocks = nb;
  *bytes = sz;
}
