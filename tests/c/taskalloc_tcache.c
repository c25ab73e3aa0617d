/*
** taskalloc_tcache.c: the threads' caches of free blocks, seen from
** outside. A block a thread frees may stay in that thread's cache, where
** no other thread can get it; HeapMinimize (on that thread at once, on any
** other at its next call that misses its cache) and the thread's exit give
** the WHOLE cache back, every size class; calls made after a thread's
** cache is gone bypass it; a thread's cache leaves the registry that
** statistics read whatever order threads end in; the first 16 threads
** hold a shard each, later ones share them in turn, and a thread's exit
** gives back the shard it held, not one it shared.
** Whether another thread gets a block back is the test: threads step in
** turn (a mutex and a condition variable), nothing depends on timing.
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _DEFAULT_SOURCE  /* MAP_ANONYMOUS */

#include "check.h"
#include "client.h"
#include "late_thread.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MINIMIZE() m->lpVtbl->HeapMinimize(m)

/* ---- a thread that runs one job at a time, when told -------------------- */

enum { NB = 600 };

struct worker {
  pthread_t t;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  void (*job)(struct worker *);  /* set by the caller, cleared when done */
  int quit;
  size_t size;                   /* the jobs' arguments and results */
  int n;
  void *blocks[NB];
};

static void *worker_main(void *arg) {
  struct worker *w = arg;
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (!w->job && !w->quit) pthread_cond_wait(&w->cond, &w->lock);
    if (!w->job) break;
    pthread_mutex_unlock(&w->lock);
    w->job(w);
    pthread_mutex_lock(&w->lock);
    w->job = NULL;
    pthread_cond_broadcast(&w->cond);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

static int worker_start(struct worker *w, const pthread_attr_t *attr) {
  memset(w, 0, sizeof *w);
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->cond, NULL);
  return pthread_create(&w->t, attr, worker_main, w) == 0;
}

/* Runs job on w and waits until it is done. */
static void run(struct worker *w, void (*job)(struct worker *)) {
  pthread_mutex_lock(&w->lock);
  w->job = job;
  pthread_cond_broadcast(&w->cond);
  while (w->job) pthread_cond_wait(&w->cond, &w->lock);
  pthread_mutex_unlock(&w->lock);
}

/* Ends w's thread (its cache is flushed on exit) and waits for it. */
static void worker_stop(struct worker *w) {
  pthread_mutex_lock(&w->lock);
  w->quit = 1;
  pthread_cond_broadcast(&w->cond);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->t, NULL);
  pthread_cond_destroy(&w->cond);
  pthread_mutex_destroy(&w->lock);
}

static void job_alloc(struct worker *w) {
  int i;
  for (i = 0; i < w->n; i++) w->blocks[i] = ALLOC(w->size);
}

static void job_free(struct worker *w) {
  int i;
  for (i = 0; i < w->n; i++) FREE(w->blocks[i]);
}

static void job_alloc_free(struct worker *w) {
  job_alloc(w);
  job_free(w);
}

static void job_minimize(struct worker *w) {
  (void)w;
  MINIMIZE();
}

/* ---- what this thread gets back ------------------------------------------ */

enum { TAKEN = 100000 };

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
  return x < y ? -1 : x > y;
}

/* How many of the n addresses in `want` this thread gets among `count`
** Allocs of `size` (every free block of that class its chunks and the
** empty chunks hold, when count is large enough); all of them are freed
** again. */
static int regained(void *const *want, int n, size_t size, int count) {
  static void *taken[TAKEN];
  int i, found = 0;
  if (count > TAKEN) count = TAKEN;
  for (i = 0; i < count; i++) taken[i] = ALLOC(size);
  qsort(taken, (size_t)count, sizeof taken[0], cmp_ptr);
  for (i = 0; i < n; i++)
    if (bsearch(&want[i], taken, (size_t)count, sizeof taken[0], cmp_ptr))
      found++;
  for (i = 0; i < count; i++) FREE(taken[i]);
  return found;
}

/* regained(), run on a thread of its own: the next thread to start after
** one ended, which takes over the ended thread's chunks (its shard). */
static struct {
  void *const *want;
  int n, count, got;
  size_t size;
} rg;

static void job_regained(struct worker *w) {
  (void)w;
  rg.got = regained(rg.want, rg.n, rg.size, rg.count);
}

static int regained_by_next(void *const *want, int n, size_t size,
                            int count) {
  struct worker w;
  rg.want = want;
  rg.n = n;
  rg.size = size;
  rg.count = count;
  rg.got = -1;
  if (!worker_start(&w, NULL)) return -1;
  run(&w, job_regained);
  worker_stop(&w);
  return rg.got;
}

/* Room for TAKEN Allocs of size, within about 8 MiB. */
static int enough(size_t size) {
  size_t n = ((size_t)8 << 20) / size;
  return n < TAKEN ? (int)n : TAKEN;
}

/* ---- tests ------------------------------------------------------------- */

/* The smallest and the largest small class, and one between: what the
** thread freed comes back to others after its HeapMinimize, then after
** its exit (to the next thread, which takes over its chunks: this one has
** chunks of its own, more free blocks than it takes, to allocate from
** first). */
static void test_whole_cache(void) {
  static const size_t sizes[] = {16, 1000, 65536};
  size_t i;
  for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    struct worker w;
    int n = sizes[i] > 8192 ? 10 : 300, got;
    CHECK(worker_start(&w, NULL));
    w.size = sizes[i];
    w.n = n;
    run(&w, job_alloc_free);
    run(&w, job_minimize);
    got = regained(w.blocks, n, sizes[i], enough(sizes[i]));
    if (got != n)
      printf("size %zu, after HeapMinimize: %d of %d\n", sizes[i], got, n);
    CHECK(got == n);
    run(&w, job_alloc_free);
    worker_stop(&w);
    got = regained_by_next(w.blocks, n, sizes[i], enough(sizes[i]));
    if (got != n) printf("size %zu, after exit: %d of %d\n", sizes[i], got, n);
    CHECK(got == n);
    MINIMIZE();
  }
}

/* Another thread's HeapMinimize: the cache keeps its blocks until its
** next Alloc that misses it (a size it never used), then gives them all
** back; after that one flush it caches again. */
static void test_minimize_then_alloc(void) {
  struct worker w;
  void *kept[NB], *other, *live;
  int n = 300;
  CHECK(worker_start(&w, NULL));
  w.size = 96;
  w.n = n;
  run(&w, job_alloc_free);
  memcpy(kept, w.blocks, sizeof kept);
  MINIMIZE();
  CHECK(regained(kept, n, 96, enough(96)) < n);  /* still the worker's */
  w.size = 4000;  /* a class the worker never used: a miss */
  w.n = 1;
  run(&w, job_alloc);
  other = w.blocks[0];
  CHECK(regained(kept, n, 96, enough(96)) == n);
  /* One flush per HeapMinimize: what it frees now stays in its cache,
  ** even across another miss. (Two blocks, one kept live, so that their
  ** chunk stays with its class if the cache is flushed.) */
  w.size = 160;
  w.n = 2;
  run(&w, job_alloc);
  live = w.blocks[0];
  kept[0] = w.blocks[0] = w.blocks[1];
  w.n = 1;
  run(&w, job_free);
  w.size = 5000;  /* another miss */
  run(&w, job_alloc);
  CHECK(regained(kept, 1, 160, enough(160)) == 0);
  w.blocks[1] = other;
  w.blocks[2] = live;
  w.n = 3;
  run(&w, job_free);
  worker_stop(&w);
  MINIMIZE();
}

/* The same, when the call that misses the cache is a Free: a bin already
** full. */
static void test_minimize_then_free(void) {
  struct worker w;
  void *kept[NB];
  int n = 300;
  CHECK(worker_start(&w, NULL));
  w.size = 112;
  w.n = n;
  run(&w, job_alloc_free);
  memcpy(kept, w.blocks, sizeof kept);
  w.size = 48;  /* more live blocks than any bin holds */
  run(&w, job_alloc);
  MINIMIZE();
  CHECK(regained(kept, n, 112, enough(112)) < n);
  run(&w, job_free);  /* its bin fills, then a Free misses it */
  CHECK(regained(kept, n, 112, enough(112)) == n);
  worker_stop(&w);
  MINIMIZE();
}

/* The same when the worker's next slow path is a batch of another
** thread's blocks going back: it flushes the cache after a HeapMinimize
** too. */
static void test_minimize_then_remote_batch(void) {
  struct worker w;
  void *kept[NB];
  int n = 300, i;
  CHECK(worker_start(&w, NULL));
  w.size = 208;
  w.n = n;
  run(&w, job_alloc_free);
  memcpy(kept, w.blocks, sizeof kept);
  w.size = 32;  /* this thread's: two batches of 64 */
  w.n = 128;
  for (i = 0; i < w.n; i++) w.blocks[i] = ALLOC(w.size);
  MINIMIZE();
  CHECK(regained(kept, n, 208, enough(208)) < n);
  run(&w, job_free);
  CHECK(regained(kept, n, 208, enough(208)) == n);
  worker_stop(&w);
  MINIMIZE();
}

/* A thread whose first call is a Free (of another thread's block) sets
** its cache up: the block waits on that thread's list of other shards'
** blocks, not in its bins. It is no other thread's to take until the
** thread exits, nor the freeing thread's to hand out again. */
static void test_first_call_is_free(void) {
  struct worker w;
  void *p = ALLOC(768);
  CHECK(p != NULL);
  CHECK(worker_start(&w, NULL));
  w.blocks[0] = p;
  w.n = 1;
  w.size = 768;
  run(&w, job_free);
  CHECK(DIDALLOC(p) == 0);
  CHECK(regained(&p, 1, 768, enough(768)) == 0);
  run(&w, job_alloc_free);
  CHECK(w.blocks[0] != p);
  CHECK(regained(&p, 1, 768, enough(768)) == 0);
  worker_stop(&w);
  CHECK(regained(&p, 1, 768, enough(768)) == 1);
  MINIMIZE();
}

/* The same for a Realloc that moves another thread's block: the old block
** goes on the list of other shards' blocks, not in the mover's bins. */
static void job_realloc(struct worker *w) {
  w->blocks[0] = REALLOC(w->blocks[0], w->size);
}

static void test_realloc_moves_foreign(void) {
  struct worker w;
  void *p = ALLOC(768);
  CHECK(p != NULL);
  CHECK(worker_start(&w, NULL));
  w.n = 1;
  w.size = 768;
  run(&w, job_alloc_free);  /* its cache set up, with room in that bin */
  w.blocks[0] = p;
  w.size = 2000;            /* another class: the block moves */
  run(&w, job_realloc);
  CHECK(w.blocks[0] != NULL && w.blocks[0] != p);
  CHECK(DIDALLOC(p) == 0);
  w.size = 768;
  run(&w, job_alloc_free);
  CHECK(w.blocks[0] != p);
  worker_stop(&w);
  CHECK(regained(&p, 1, 768, enough(768)) == 1);
  MINIMIZE();
}

/* A block whose slot names the freeing thread's shard goes in that
** thread's bin, even when another shard took its chunk over since: the
** slot alone tells the Free fast path a block of its own. A (a shard of
** its own) takes X of a class no other test uses and ends; B, started
** before that, takes A's chunk over with its first block of the class;
** C, started after, holds A's shard again, frees X and gets it back. */
enum { ADOPTED = 3500 };

static void test_free_into_adopted_chunk(void) {
  struct worker a, b, c;
  void *x;
  CHECK(worker_start(&a, NULL));
  a.n = 1;
  a.size = 16;
  run(&a, job_alloc_free);  /* a shard and a cache */
  a.size = ADOPTED;
  run(&a, job_alloc);
  x = a.blocks[0];
  CHECK(x != NULL);
  CHECK(worker_start(&b, NULL));
  b.n = 1;
  b.size = 16;
  run(&b, job_alloc_free);  /* another shard */
  worker_stop(&a);          /* A's shard free again, its chunk an orphan */
  b.size = ADOPTED;
  run(&b, job_alloc);       /* takes the orphan over */
  CHECK(b.blocks[0] != NULL && b.blocks[0] != x);
  CHECK(worker_start(&c, NULL));
  c.n = 1;
  c.size = 16;
  run(&c, job_alloc_free);  /* the lowest free shard: A's */
  c.blocks[0] = x;
  run(&c, job_free);
  c.size = ADOPTED;
  run(&c, job_alloc);
  CHECK(c.blocks[0] == x);
  run(&c, job_free);
  run(&b, job_free);
  worker_stop(&c);
  worker_stop(&b);
  MINIMIZE();
}

/* Calls made while a thread ends, after the allocator's own key destructor
** gave its cache back (a destructor that sets its value again runs in the
** next round): a block freed then goes straight back to its class, for
** other threads, in every class (late_thread.h). */
static void *late[2], *late_kept[2];
static const size_t late_sizes[2] = {16, 65536};

static void late_calls(void) {
  int i;
  for (i = 0; i < 2; i++) {  /* one kept live: its chunk stays this class's */
    late_kept[i] = ALLOC(late_sizes[i]);
    late[i] = ALLOC(late_sizes[i]);
    memset(late[i], 0xA5, 16);  /* data where a free block keeps its link */
    FREE(late[i]);
  }
}

/* In a destructor round after the allocator's, and in the last round,
** after which no destructor runs: a cache set up again then would keep
** its blocks for good. ThreadSanitizer ends its own record of the thread
** in that last round, where instrumented code then faults: its builds run
** the first case only, and say so. */
#if defined(__SANITIZE_THREAD__)
#define LATE_CASES 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LATE_CASES 1
#endif
#endif
#ifndef LATE_CASES
#define LATE_CASES 2
#endif

static void test_free_after_exit(void) {
  int i, last;
  if (LATE_CASES < 2)
    printf("calls in the last destructor round: left out under "
           "ThreadSanitizer\n");
  for (last = 0; last < LATE_CASES; last++) {
    CHECK(last ? late_thread_run_last(late_calls)
               : late_thread_run(late_calls));
    for (i = 0; i < 2; i++) {
      CHECK(late[i] != NULL);
      CHECK(regained(&late[i], 1, late_sizes[i], enough(late_sizes[i])) == 1);
      FREE(late_kept[i]);
    }
    MINIMIZE();
  }
}

/* Blocks of this thread that another thread freed (fewer than a batch:
** they wait on its list of other shards' blocks) go back to their class
** when that thread ends, in every class: the first, one between, the
** last. */
static void test_remote_blocks_at_exit(void) {
  static const size_t sizes[3] = {16, 192, 65536};
  struct worker w;
  int i, k;
  for (k = 0; k < 3; k++) {
    if (!worker_start(&w, NULL)) {
      CHECK(0);
      return;
    }
    w.size = sizes[k];
    w.n = 4;
    for (i = 0; i < w.n; i++) w.blocks[i] = ALLOC(w.size);
    run(&w, job_free);
    worker_stop(&w);
    CHECK(regained(w.blocks, w.n, w.size, enough(w.size)) == w.n);
    MINIMIZE();
  }
}

/* A block the thread allocated while its cache was set up and freed after
** the cache was given back, in a class of which it allocates nothing
** after: back to its class as well. A given-back cache's bins have no
** room, so that no Free puts a block in them, where it would stay for
** good. */
static void *before_exit;
static void alloc_before_exit(void) { before_exit = ALLOC(192); }
static void free_after_exit(void) { FREE(before_exit); }

static void test_free_after_exit_of_earlier_block(void) {
  late_setup = alloc_before_exit;
  CHECK(late_thread_run(free_after_exit));
  late_setup = NULL;
  CHECK(before_exit != NULL);
  CHECK(regained(&before_exit, 1, 192, enough(192)) == 1);
  MINIMIZE();
}

/* What a thread's cache holds for a class is bounded: about 16 KiB
** (README), 84 blocks of 192 bytes, however many it takes at a time.
** Refills double, 1, 2, 4 ... 64 blocks, then ask for the bound: the
** 128th Alloc is the first after a refill that reached it, when the cache
** is fullest. The worker makes those Allocs in a class no one else uses,
** keeps the blocks and gives its cache back (HeapMinimize): the blocks
** this thread then gets among the worker's are the ones that were cached. */
enum { K = 1 + 2 + 4 + 8 + 16 + 32 + 64 + 1 };

static void test_cache_bound(void) {
  static void *mine[TAKEN];
  struct worker w;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  int i, cached = 0, count = enough(192);
  CHECK(worker_start(&w, NULL));
  w.size = 192;
  w.n = K;
  run(&w, job_alloc);
  for (i = 0; i < K; i++) {
    uintptr_t u = (uintptr_t)w.blocks[i];
    if (u < lo) lo = u;
    if (u > hi) hi = u;
  }
  CHECK(lo != 0);
  run(&w, job_minimize);
  for (i = 0; i < count; i++) mine[i] = ALLOC(192);
  for (i = 0; i < count; i++)
    if ((uintptr_t)mine[i] > lo && (uintptr_t)mine[i] < hi) cached++;
  for (i = 0; i < count; i++) FREE(mine[i]);
  if (cached * 192 > 16384) printf("%d blocks of 192 bytes cached\n", cached);
  CHECK(cached * 192 <= 16384);
  run(&w, job_free);
  worker_stop(&w);
  MINIMIZE();
}

/* Has w allocate two blocks of size: *live gets the first, which keeps
** their chunk with the class; the second is returned, and is w's block 0
** for a job_free of one block. */
static void *two_blocks(struct worker *w, size_t size, void **live) {
  w->size = size;
  w->n = 2;
  run(w, job_alloc);
  *live = w->blocks[0];
  w->blocks[0] = w->blocks[1];
  w->n = 1;
  return w->blocks[0];
}

/* The thread's own HeapMinimize flushes its cache at once, and that
** counts as its flush: a block it frees afterwards stays in its cache
** across a miss. */
static void test_own_minimize(void) {
  struct worker w;
  void *kept, *live;
  CHECK(worker_start(&w, NULL));
  kept = two_blocks(&w, 224, &live);
  run(&w, job_minimize);
  run(&w, job_free);
  w.size = 6000;  /* a miss */
  run(&w, job_alloc);
  CHECK(regained(&kept, 1, 224, enough(224)) == 0);
  w.blocks[1] = live;
  w.n = 2;
  run(&w, job_free);
  worker_stop(&w);
  MINIMIZE();
}

/* Threads that end in the other order than they started, or in the same
** (the first leaves the registry from behind the second, which statistics
** must still read): the statistics, which read every live thread's
** counts, are exact meanwhile and afterwards, and read neither thread's
** memory: their stacks, which hold their thread-local caches, are
** unmapped once they are joined. */
enum { STACK = 1 << 20 };

static void exit_order(int a_first) {
  struct imalloc_taskstats st0 = stats(), st1;
  struct worker a, b;
  pthread_attr_t attr[2];
  void *stack[2];
  int i;
  for (i = 0; i < 2; i++) {
    stack[i] = mmap(NULL, STACK, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(stack[i] != MAP_FAILED);
    pthread_attr_init(&attr[i]);
    CHECK(pthread_attr_setstack(&attr[i], stack[i], STACK) == 0);
  }
  CHECK(worker_start(&a, &attr[0]));
  a.size = 32;
  a.n = 1;
  run(&a, job_alloc);     /* a is registered first */
  CHECK(worker_start(&b, &attr[1]));
  b.size = 32;
  b.n = 1;
  run(&b, job_alloc);     /* then b */
  if (a_first) {
    worker_stop(&a);      /* a ends first, its block still live */
    st1 = stats();
    CHECK(st1.live_blocks == st0.live_blocks + 2);
    worker_stop(&b);
  } else {
    worker_stop(&b);      /* b ends first, its block still live */
    worker_stop(&a);
  }
  for (i = 0; i < 2; i++) {
    munmap(stack[i], STACK);
    pthread_attr_destroy(&attr[i]);
  }
  st1 = stats();
  CHECK(st1.live_blocks == st0.live_blocks + 2);
  CHECK(st1.live_bytes == st0.live_bytes + 64);
  FREE(a.blocks[0]);
  FREE(b.blocks[0]);
  st1 = stats();
  CHECK(st1.live_blocks == st0.live_blocks);
  CHECK(st1.live_bytes == st0.live_bytes);
}

static void test_exit_order(void) {
  exit_order(0);
  exit_order(1);
}

/* ---- shards -------------------------------------------------------------
** A thread's first Alloc of a class that no other thread uses takes a
** block of the first chunk of its shard's list of that class, one of its
** own (chunk.c): the chunk tells the shard. */

#define CHUNK(p) ((uintptr_t)(p) & ~(((uintptr_t)1 << 20) - 1))

enum { NSH = 16, SH_SIZE = 1280 };
static struct worker sw[NSH + 4];

/* Starts sw[i], whose first call is an Alloc of size: the chunk of that
** block. */
static uintptr_t shard_thread(int i, size_t size) {
  if (!worker_start(&sw[i], NULL)) return 0;
  sw[i].size = size;
  sw[i].n = 1;
  run(&sw[i], job_alloc);
  return CHUNK(sw[i].blocks[0]);
}

/* This thread's cache, the process's first, holds shard 0; 15 more take
** shards 1..15 in the order they start, each its own chunk (the last one's
** first call a large Alloc, which sets its cache up too). The 17th thread
** shares shard 0, the 18th shard 1. A sharing thread's exit leaves the
** shard to its holder (the next new thread shares shard 2); the holder's
** exit frees it, and the next new thread takes it, with its chunk. */
static void test_shards(void) {
  uintptr_t own[NSH - 1];
  void *mine = ALLOC(SH_SIZE);
  int i, j, distinct = 1;
  CHECK(mine != NULL);
  own[0] = CHUNK(mine);
  for (i = 1; i < NSH - 1; i++) own[i] = shard_thread(i, SH_SIZE);
  shard_thread(NSH - 1, 100000);
  for (i = 0; i < NSH - 1; i++)
    for (j = 0; j < i; j++)
      if (own[i] == own[j]) distinct = 0;
  CHECK(distinct);
  CHECK(shard_thread(NSH, SH_SIZE) == own[0]);
  CHECK(shard_thread(NSH + 1, SH_SIZE) == own[1]);
  worker_stop(&sw[NSH + 1]);  /* shared shard 1 */
  CHECK(shard_thread(NSH + 2, SH_SIZE) == own[2]);
  worker_stop(&sw[1]);        /* held shard 1 */
  CHECK(shard_thread(NSH + 3, SH_SIZE) == own[1]);
  FREE(mine);
  for (i = 1; i < NSH + 4; i++) {
    FREE(sw[i].blocks[0]);
    if (i != 1 && i != NSH + 1) worker_stop(&sw[i]);
  }
  MINIMIZE();
}

/* ---- without the exit key ---------------------------------------------
** With the argument "nokey", this process uses up its thread-specific
** keys before the allocator's first call: the allocator's key for the exit
** flush cannot be made; it must not use a key it does not have. */

static pthread_key_t keys[PTHREAD_KEYS_MAX];
static int nkeys;

static void use_up_keys(void) {
  while (nkeys < PTHREAD_KEYS_MAX &&
         pthread_key_create(&keys[nkeys], NULL) == 0)
    nkeys++;
}

/* Without the key no thread has a cache: a block a live thread frees is
** at once another's to take; a thread's exit leaves the statistics exact
** (no cache of it stays registered); and no key of this process gets a
** value. */
static void test_no_key(void) {
  struct imalloc_taskstats st0 = stats(), st1;
  struct worker w;
  pthread_key_t more;
  void *live, *freed;
  int i, unset = 1;
  CHECK(nkeys > 0 && pthread_key_create(&more, NULL) != 0);
  CHECK(worker_start(&w, NULL));
  freed = two_blocks(&w, 320, &live);
  run(&w, job_free);
  CHECK(regained(&freed, 1, 320, enough(320)) == 1);
  worker_stop(&w);
  st1 = stats();
  CHECK(st1.live_blocks == st0.live_blocks + 1);
  CHECK(st1.live_bytes == st0.live_bytes + 320);
  FREE(live);
  st1 = stats();
  CHECK(st1.live_blocks == st0.live_blocks);
  for (i = 0; i < nkeys; i++)
    if (pthread_getspecific(keys[i]) != NULL) unset = 0;
  CHECK(unset);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "nokey") == 0) {
    use_up_keys();
    if (!client_open()) return 1;
    test_no_key();
    return check_report();
  }
  if (!client_open()) return 1;
  test_shards();  /* first: this thread's cache is the process's first */
  test_whole_cache();
  test_minimize_then_alloc();
  test_minimize_then_free();
  test_minimize_then_remote_batch();
  test_first_call_is_free();
  test_realloc_moves_foreign();
  test_free_into_adopted_chunk();
  test_free_after_exit();
  test_free_after_exit_of_earlier_block();
  test_remote_blocks_at_exit();
  test_cache_bound();
  test_own_minimize();
  test_exit_order();
  return check_report();
}
