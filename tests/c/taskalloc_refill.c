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
**
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _GNU_SOURCE  /* RTLD_NEXT */
#include "check.h"
#include "client.h"

#include <dlfcn.h>
#include <pthread.h>
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
  for (i = 0; i < j->n; i++) FREE(p[i]);
  FREE(first);
  return NULL;
}

static long trips(size_t size, size_t n) {
  struct job j;
  pthread_t t;
  memset(&j, 0, sizeof j);
  j.size = size;
  j.n = n;
  if (pthread_create(&t, NULL, run, &j) != 0 || pthread_join(t, NULL) != 0)
    return -1;
  return j.ok ? j.trips : -1;
}

/* Blocks of size, whose bin's limit is limit (above 64): refills of 1, 2,
** ..., 64 blocks: 127 blocks in 7 trips; one of limit more: 127 + limit
** blocks in 8 trips. The same chunk serves all (at most 24 KiB, far from a
** chunk's end), so the differences are the refills'. */
static void refills_to_limit(size_t size, size_t limit) {
  long t127 = trips(size, 127), t128 = trips(size, 128),
       tfull = trips(size, 127 + limit), tmore = trips(size, 128 + limit);
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
    long t = trips(16, MAXN);
    printf("1000 blocks of 16 bytes: %ld trips\n", t);
    CHECK(t >= 1);  /* the counting works: the first refill takes a lock */
    /* 1, 2, 4 ... 128, then 128 each: 14 refills, and the chunks' */
    CHECK(t < MAXN / 20);
  } else if (strcmp(what, "batch") == 0) {
    /* 128 bytes: a batch of 8192 / 128 = 64 blocks, a limit of 128.
    ** 192 bytes: a batch of 8192 / 192 = 42, a limit of 84. */
    refills_to_limit(128, 128);
    refills_to_limit(192, 84);
  } else {
    printf("FAIL: give doubling or batch\n0 passed, 1 failed\n");
    return 1;
  }
  return check_report();
}
