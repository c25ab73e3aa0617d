/*
** taskalloc_refill.c: how many trips to its class's lock a thread makes
** for small blocks. A thread's cache refills a bin with 1 block the first
** time, then twice as many each time, up to the bin's limit (2 batches; a
** batch is about 8 KiB, between 1 and 64 blocks). This program defines
** pthread_mutex_lock and _trylock itself (calling the C library's) and
** counts, per thread, the mutexes each thread takes; a fresh thread then
** asks for blocks of one class and the count says how the refills went.
** Counts of calls, not timings.
**
**   taskalloc_refill doubling   1000 blocks of 16 bytes: far fewer trips
**                               than blocks (a refill of 1 block each
**                               time, or a batch of 1, takes one per block)
**   taskalloc_refill batch      blocks of 128 bytes: the trips for 127
**                               blocks and for 1 + 2 + ... + 64 + 128 =
**                               255 blocks are those of the doubling up to
**                               a limit of 2 * 64 (a batch of 63 makes it
**                               126, and one trip more); blocks of
**                               192 bytes, a limit of 2 * 42 = 84, not a
**                               power of two: refills of 1, 2, ..., 64,
**                               then 84 (not 84 after 32)
**   taskalloc_refill flush      blocks of 16000 bytes (above 8 KiB: a batch
**                               of 1 block, a limit of 2): of 64 Frees,
**                               every one past the bin's 2 flushes a block,
**                               a trip each
**   taskalloc_refill overflow   blocks of 128 bytes freed into a full
**                               bin: the Free that overflows it gives the
**                               64 on top back in one trip, and the bin
**                               keeps 128 + 1 - 64 for the Allocs after
**   taskalloc_refill free-list  blocks of 128 bytes from a chunk with
**                               more free blocks than any refill asks for
**                               (an ended thread's): 64 blocks in 7 trips,
**                               as many as the refills from new blocks
**   taskalloc_refill taken      two ended threads' chunks of a class, no
**                               free block in them: a thread's first
**                               refill takes one over, its second the
**                               other in one look (no trip to look for
**                               free blocks first), its next ones take a
**                               trip each (no look at the ended threads'
**                               shards)
**   taskalloc_refill adopt-one  the same, each ended thread's chunk with
**                               a free block: the first refill takes one
**                               chunk over and looks at no other shard
**   taskalloc_refill lifo       blocks given back to their chunk by a
**                               HeapMinimize come out again last freed
**                               first (no timing, no lock count)
**   taskalloc_refill give-runs  two blocks of two chunks of one shard
**                               given back in as many trips as two of one
**                               chunk (the lock held across the runs)
**   taskalloc_refill partial    a live thread's list of a class emptied
**                               (its chunk back to the pool, or full):
**                               another thread's first block of that
**                               class takes the trips of a class no
**                               thread ever used, no look at the first
**                               thread's shard
**
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _GNU_SOURCE  /* RTLD_NEXT */
#include "check.h"
#include "client.h"

#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

typedef int (*mutex_fn)(pthread_mutex_t *);

static _Thread_local long taken;  /* mutexes this thread took */

static mutex_fn real(const char *name) {
  mutex_fn f;
  *(void **)&f = dlsym(RTLD_NEXT, name);
  if (!f) abort();
  return f;
}

int pthread_mutex_lock(pthread_mutex_t *mx) {
  static mutex_fn f;
  if (!f) f = real("pthread_mutex_lock");
  taken++;
  return f(mx);
}

int pthread_mutex_trylock(pthread_mutex_t *mx) {
  static mutex_fn f;
  int r;
  if (!f) f = real("pthread_mutex_trylock");
  r = f(mx);
  if (r == 0) taken++;
  return r;
}

enum { MAXN = 1000 };

struct job {
  size_t size, n;  /* n blocks of size bytes */
  long trips;      /* mutexes taken for them */
  long free_trips; /* and for freeing them */
  int ok;          /* every block came */
};

/* In a thread of its own (a fresh cache): one block of another class
** first, so that setting up the cache is not counted, then the job's. */
static void *run(void *arg) {
  struct job *j = arg;
  static void *p[MAXN];
  void *first = ALLOC(j->size == 16 ? 32 : 16);
  size_t i;
  long before;
  j->ok = first != NULL;
  before = taken;
  for (i = 0; i < j->n; i++) {
    p[i] = ALLOC(j->size);
    if (!p[i]) j->ok = 0;
  }
  j->trips = taken - before;
  before = taken;
  for (i = 0; i < j->n; i++) FREE(p[i]);
  j->free_trips = taken - before;
  FREE(first);
  return NULL;
}

/* The trips of n Allocs of size bytes in a fresh thread, or of the n
** Frees after them (frees non-zero); -1 if a block did not come. */
static long trips(size_t size, size_t n, int frees) {
  struct job j;
  pthread_t t;
  memset(&j, 0, sizeof j);
  j.size = size;
  j.n = n;
  if (pthread_create(&t, NULL, run, &j) != 0 || pthread_join(t, NULL) != 0)
    return -1;
  return j.ok ? (frees ? j.free_trips : j.trips) : -1;
}

/* partial: the live thread, which empties its list of class X (its chunk
** empty) and of class FULL (its chunk full: 12 blocks of 64 KiB fit in
** one, the last refill carves the 12th), and waits until main has
** counted. */
enum { X = 5000, Y = 6000, FULL = 65536, NFULL = 12 };
static sem_t emptied, counted;

static void *empties_x(void *arg) {
  void *p[NFULL];
  int i;
  (void)arg;
  FREE(ALLOC(X));
  m->lpVtbl->HeapMinimize(m);  /* its cache flushed: the chunk empty */
  for (i = 0; i < NFULL; i++) p[i] = ALLOC(FULL);
  sem_post(&emptied);
  sem_wait(&counted);
  for (i = 0; i < NFULL; i++) FREE(p[i]);
  return NULL;
}

/* free-list: a thread that allocates 200 blocks of 128 bytes, frees all
** but one and ends: their chunk keeps 199 free blocks, and those its
** cache held, on its free list. */
static void *leaves_free_list(void *arg) {
  static void *p[200];
  int i;
  (void)arg;
  for (i = 0; i < 200; i++) p[i] = ALLOC(128);
  for (i = 1; i < 200; i++) FREE(p[i]);
  return p[0];
}

/* taken: the ended threads (started after the counting one, and the
** second before the first ends, so each with a shard of its own) keep one
** block of class T each; the counting thread's first Alloc of T takes one
** chunk over. The next 7 Allocs take 4 refills (of 2): the first takes
** the other chunk over (both shards' locks, in one look that finds no
** free block and takes the chunk anyway), then its own lock; the others
** one trip each. (Before, a thread borrowed an ended thread's free blocks,
** leaving the chunk where it was: the first refill looked at the shard
** once for free blocks, and once more to take the chunk over: 4 + 3.) */
enum { T = 16000 };
static sem_t first_has, first_go;
static void *theirs[2];

static int leave_free;  /* adopt-one: each also frees a second block (two_ended_threads) */

static void *one_block(void *arg) {
  int i = (int)(intptr_t)arg;
  theirs[i] = ALLOC(T);
  if (leave_free) FREE(ALLOC(T));  /* back to the chunk at the exit */
  if (i == 0) {
    sem_post(&first_has);
    sem_wait(&first_go);
  }
  return NULL;
}

/* This thread's shard first, then the two ended threads of taken and
** adopt-one, each with a shard of its own (the second starts before the
** first ends); each keeps one block of T, and with free_one frees another.
** Whether both ran and kept theirs. */
static int two_ended_threads(int free_one) {
  pthread_t e0, e1;
  int ok;
  FREE(ALLOC(32));  /* this thread's shard, before the others' */
  leave_free = free_one;
  sem_init(&first_has, 0, 0);
  sem_init(&first_go, 0, 0);
  if (pthread_create(&e0, NULL, one_block, (void *)(intptr_t)0) != 0)
    return 0;
  sem_wait(&first_has);
  ok = pthread_create(&e1, NULL, one_block, (void *)(intptr_t)1) == 0 &&
       pthread_join(e1, NULL) == 0;
  sem_post(&first_go);
  pthread_join(e0, NULL);
  return ok && theirs[0] && theirs[1];
}

static void *takes_over(void *arg) {
  long *trips7 = arg, before;
  void *p[8];
  int i;
  if (!two_ended_threads(0)) return NULL;
  p[0] = ALLOC(T);
  before = taken;
  for (i = 1; i < 8; i++) p[i] = ALLOC(T);
  *trips7 = taken - before;
  for (i = 0; i < 8; i++) FREE(p[i]);
  return arg;
}

/* overflow: in a thread of its own, 400 blocks of 128 bytes (a batch of
** 64, a limit of 128), freed one at a time until a Free takes a trip: the
** one that found the bin full, whose block went in and the 64 on top back
** to the chunk, leaving 128 + 1 - 64. The Allocs after it take that many
** from the bin before the next trip. (Had the block gone elsewhere, the
** bin would still hold 128.) */
enum { NOVER = 400 };

static void *overflows(void *arg) {
  static void *p[NOVER], *q[NOVER];
  long *from_bin = arg, before;
  int i, nfree, nq;
  FREE(ALLOC(16));  /* the cache set up */
  for (i = 0; i < NOVER; i++)
    if (!(p[i] = ALLOC(128))) return NULL;
  for (nfree = 0; nfree < NOVER;) {
    before = taken;
    FREE(p[nfree++]);
    if (taken != before) break;
  }
  for (nq = 0; nq < NOVER; nq++) {
    before = taken;
    q[nq] = ALLOC(128);
    if (taken != before) break;
  }
  *from_bin = nfree < NOVER ? nq : -1;
  for (i = 0; i <= nq && i < NOVER; i++) FREE(q[i]);
  for (i = nfree; i < NOVER; i++) FREE(p[i]);
  return arg;
}

/* adopt-one: as taken, but each ended thread's chunk has a free block:
** the counting thread's first Alloc of T takes one chunk over, from the
** first shard it looks at, and looks no further: that shard's lock and its
** own in the take-over, its own again for the block, 3 trips. */
static void *takes_one(void *arg) {
  long *trips1 = arg, before;
  void *p;
  if (!two_ended_threads(1)) return NULL;
  before = taken;
  p = ALLOC(T);
  *trips1 = taken - before;
  FREE(p);
  return arg;
}

/* lifo: three blocks of a class no other case uses (a fourth kept, so
** that the chunk is not emptied and carved anew), freed in turn and
** given back to their chunk by a HeapMinimize in one list: the chunk keeps
** them in that order, so the next Alloc gets the block freed last, the
** one most likely still in the processor's cache. */
enum { LIFO = 3000 };

static void *last_freed_first(void *arg) {
  void *a = ALLOC(LIFO), *b = ALLOC(LIFO), *c = ALLOC(LIFO),
       *kept = ALLOC(LIFO), *p;  /* kept: the chunk is not emptied */
  int *ok = arg;
  *ok = a && b && c && kept;
  FREE(a);
  FREE(b);
  FREE(c);
  m->lpVtbl->HeapMinimize(m);  /* the bin, c then b then a, to the chunk */
  p = ALLOC(LIFO);
  *ok = *ok && p == c;
  FREE(p);
  FREE(kept);
  return arg;
}

/* give-runs: a HeapMinimize that gives back two blocks of one chunk, and
** one that gives back two blocks of two chunks of the same shard (blocks
** of 60000 bytes: 17 to a chunk; a bin of 2), take as many trips: the
** class's lock is held across the runs of one shard, not let go between
** them. */
enum { RUNS = 60000, NRUNS = 40 };

static void *gives_runs(void *arg) {
  long *extra = arg, one, two, before;
  void *p[NRUNS];
  int i;
  for (i = 0; i < NRUNS; i++)
    if (!(p[i] = ALLOC(RUNS))) return NULL;
  m->lpVtbl->HeapMinimize(m);  /* the bin empty */
  FREE(p[0]);
  FREE(p[1]);                  /* one chunk */
  before = taken;
  m->lpVtbl->HeapMinimize(m);
  one = taken - before;
  FREE(p[2]);
  FREE(p[NRUNS - 1]);          /* two chunks */
  before = taken;
  m->lpVtbl->HeapMinimize(m);
  two = taken - before;
  for (i = 3; i < NRUNS - 1; i++) FREE(p[i]);
  *extra = two - one;
  return one >= 1 ? arg : NULL;
}

/* Blocks of size, whose bin's limit is limit (above 64): refills of 1, 2,
** ..., 64 blocks: 127 blocks in 7 trips; one of limit more: 127 + limit
** blocks in 8 trips. The same chunk serves all (at most 24 KiB, far from a
** chunk's end), so the differences are the refills'. */
static void refills_to_limit(size_t size, size_t limit) {
  long t127 = trips(size, 127, 0), t128 = trips(size, 128, 0),
       tfull = trips(size, 127 + limit, 0),
       tmore = trips(size, 128 + limit, 0);
  printf("blocks of %zu bytes: 127: %ld, 128: %ld, %zu: %ld, %zu: %ld "
         "trips\n", size, t127, t128, 127 + limit, tfull, 128 + limit, tmore);
  CHECK(t127 >= 1 && t128 >= 1 && tfull >= 1 && tmore >= 1);
  CHECK(t128 == t127 + 1);    /* the 128th block: the 8th refill */
  CHECK(tfull == t128);       /* which takes limit blocks */
  CHECK(tmore == tfull + 1);  /* the next: the 9th */
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (imalloc_CoGetMalloc(1, &m) != S_OK) {
    printf("FAIL: no allocator\n0 passed, 1 failed\n");
    return 1;
  }
  if (strcmp(what, "doubling") == 0) {
    long t = trips(16, MAXN, 0);
    printf("1000 blocks of 16 bytes: %ld trips\n", t);
    CHECK(t >= 1);  /* the counting works: the first refill takes a lock */
    /* 1, 2, 4 ... 128, then 128 each: 14 refills, and the chunks' */
    CHECK(t < MAXN / 20);
  } else if (strcmp(what, "batch") == 0) {
    /* 128 bytes: a batch of 8192 / 128 = 64 blocks, a limit of 128.
    ** 192 bytes: a batch of 8192 / 192 = 42, a limit of 84. */
    refills_to_limit(128, 128);
    refills_to_limit(192, 84);
  } else if (strcmp(what, "free-list") == 0) {
    pthread_t t;
    void *kept = NULL;
    long t64 = -1;
    if (pthread_create(&t, NULL, leaves_free_list, NULL) == 0 &&
        pthread_join(t, &kept) == 0)
      t64 = trips(128, 64, 0);
    printf("64 blocks of 128 bytes from a free list: %ld trips\n", t64);
    CHECK(kept != NULL);
    CHECK(t64 == 7);  /* refills of 1, 2, 4, ..., 32 blocks: 63; then 64 */
    FREE(kept);
  } else if (strcmp(what, "taken") == 0) {
    pthread_t t;
    long t7 = -1;
    void *done = NULL;
    CHECK(pthread_create(&t, NULL, takes_over, &t7) == 0 &&
          pthread_join(t, &done) == 0);
    printf("7 blocks after a chunk taken over: %ld trips\n", t7);
    CHECK(done != NULL);
    CHECK(t7 == 3 + 3);
    FREE(theirs[0]);
    FREE(theirs[1]);
  } else if (strcmp(what, "give-runs") == 0) {
    pthread_t t;
    long extra = -1;
    void *done = NULL;
    CHECK(pthread_create(&t, NULL, gives_runs, &extra) == 0 &&
          pthread_join(t, &done) == 0);
    printf("blocks of two chunks given back: %ld trips more than of one\n", extra);
    CHECK(done != NULL);
    CHECK(extra == 0);
  } else if (strcmp(what, "lifo") == 0) {
    pthread_t t;
    int ok = 0;
    void *done = NULL;
    CHECK(pthread_create(&t, NULL, last_freed_first, &ok) == 0 &&
          pthread_join(t, &done) == 0);
    CHECK(done != NULL);
    CHECK(ok);
  } else if (strcmp(what, "adopt-one") == 0) {
    pthread_t t;
    long t1 = -1;
    void *done = NULL;
    CHECK(pthread_create(&t, NULL, takes_one, &t1) == 0 &&
          pthread_join(t, &done) == 0);
    printf("a first block with two ended threads' chunks to take: %ld trips\n", t1);
    CHECK(done != NULL);
    CHECK(t1 == 3);
    FREE(theirs[0]);
    FREE(theirs[1]);
  } else if (strcmp(what, "partial") == 0) {
    pthread_t t;
    long tx = -1, ty = -1, tf = -1;
    sem_init(&emptied, 0, 0);
    sem_init(&counted, 0, 0);
    if (pthread_create(&t, NULL, empties_x, NULL) == 0) {
      sem_wait(&emptied);
      tx = trips(X, 1, 0);
      tf = trips(FULL, 1, 0);
      ty = trips(Y, 1, 0);
      sem_post(&counted);
      pthread_join(t, NULL);
    }
    printf("a first block: %ld trips (%ld: its chunk full), of a class "
           "never used: %ld\n", tx, tf, ty);
    CHECK(tx >= 1 && ty >= 1);
    CHECK(tx == ty);
    CHECK(tf == ty);
    /* its class's lock and the pool's: no other shard holds a chunk of
    ** the class, so none is looked at (no lock let go and taken again) */
    CHECK(ty == 2);
  } else if (strcmp(what, "overflow") == 0) {
    pthread_t t;
    long n = -2;
    void *done = NULL;
    CHECK(pthread_create(&t, NULL, overflows, &n) == 0 &&
          pthread_join(t, &done) == 0);
    printf("Allocs from the bin after the Free that overflowed it: %ld\n", n);
    CHECK(done != NULL);
    CHECK(n == 128 + 1 - 64);
  } else if (strcmp(what, "flush") == 0) {
    long t = trips(16000, 64, 1);
    printf("64 Frees of 16000 bytes: %ld trips\n", t);
    CHECK(t >= 62 && t <= 64);
  } else {
    printf("FAIL: give doubling, batch, flush, overflow, free-list, taken, adopt-one, lifo, give-runs or partial\n0 passed, 1 failed\n");
    return 1;
  }
  return check_report();
}
