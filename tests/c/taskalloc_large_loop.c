/*
** taskalloc_large_loop.c: a program that cycles large blocks above the
** retention bound (IMALLOC_RETAIN=1M here, set before the allocator's
** first use; every block is 2 to 7 MiB) keeps them hot: after a warm-up,
** every block the loop allocates is made of pages already resident (no
** page of it is faulted in: mincore, before the loop touches it). The
** system calls that remain (mmap and mremap, counted by this program's own
** definitions, which call the C library's through dlsym) only make room
** for the kept pages, which are moved, not faulted in again.
** Once the program stops cycling, the memory goes back: after its small
** blocks' slow paths ran a while with no large operation, after large
** operations that only allocate, and on HeapMinimize. What the cache keeps
** follows a window of the last 16 large operations, case by case; the
** checks for a program that stopped are seen one by one, as the cache's
** lock taken (pthread_mutex_lock defined here too); a spied block's Free
** that its bin takes is no slow path, and makes no check. Everything is a
** count: pages, bytes, calls; never a time.
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _GNU_SOURCE  /* RTLD_NEXT, mremap, mincore */
#include "check.h"
#include "client.h"
#include "fake_com.h"
#include "interpose.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

/* ---- the system's memory calls, counted ---------------------------------- */

static atomic_long n_mmap;     /* mmap calls */
static atomic_long n_grow;     /* mremap calls that add pages (not moves) */
static atomic_long unmapped;   /* bytes given back by munmap */

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  static void *(*real)(void *, size_t, int, int, int, off_t);
  INTERPOSE_NEXT(real, "mmap");
  atomic_fetch_add(&n_mmap, 1);
  return real(addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len) {
  static int (*real)(void *, size_t);
  INTERPOSE_NEXT(real, "munmap");
  atomic_fetch_add(&unmapped, (long)len);
  return real(addr, len);
}

void *mremap(void *old, size_t oldlen, size_t newlen, int flags, ...) {
  static mremap_fn real;
  void *to;
  INTERPOSE_NEXT(real, "mremap");
  MREMAP_TARGET(flags, to);
  if (!(flags & MREMAP_FIXED) && newlen > oldlen) atomic_fetch_add(&n_grow, 1);
  return interpose_mremap(real, old, oldlen, newlen, flags, to);
}

/* The locks of one mutex, `watched`, counted (the cache's: see
** cache_lock()); and the last mutex each thread locked. */
static pthread_mutex_t *_Atomic watched;
static atomic_long watched_locks;
static _Thread_local pthread_mutex_t *last_locked;

int pthread_mutex_lock(pthread_mutex_t *mx) {
  static int (*real)(pthread_mutex_t *);
  INTERPOSE_NEXT(real, "pthread_mutex_lock");
  last_locked = mx;
  if (mx == atomic_load(&watched)) atomic_fetch_add(&watched_locks, 1);
  return real(mx);
}

/* ---- helpers ------------------------------------------------------------- */

static size_t page;

static size_t mapped(void) { return stats().mapped_bytes; }

/* Pages of [p, p + n) not resident. */
static size_t absent(const void *p, size_t n) {
  static unsigned char v[8 * MiB / 4096];
  size_t i, k = 0, np = (n + page - 1) / page;
  if (np > sizeof v || mincore((void *)p, n, v) != 0) return np;
  for (i = 0; i < np; i++) k += !(v[i] & 1);
  return k;
}

/* ---- the loop ------------------------------------------------------------ */

/* K live blocks, replaced oldest first (a new one allocated, then the
** oldest freed, as a program that replaces a buffer does), sizes taken in
** turn from a cycle of 2 to 7 MiB (not multiples of the page). */
enum { K = 4, NSIZES = 7 };
static const size_t sizes_mib[NSIZES] = { 3, 6, 2, 5, 7, 4, 6 };
static unsigned char *live[K];
static unsigned turn;

struct tally {
  long allocs, absent_pages, mmaps, grows;
};

static void cycle(int n, struct tally *t) {
  int i;
  long m0 = atomic_load(&n_mmap), g0 = atomic_load(&n_grow);
  for (i = 0; i < n; i++, turn++) {
    size_t sz = sizes_mib[turn % NSIZES] * MiB + 12345;
    unsigned char *p = ALLOC(sz);
    CHECK(p != NULL);
    if (!p) return;
    if (t) {
      t->allocs++;
      t->absent_pages += (long)absent(p, sz);
    }
    memset(p, (int)turn, sz);  /* the program uses all of it */
    FREE(live[turn % K]);
    live[turn % K] = p;
  }
  if (t) {
    t->mmaps += atomic_load(&n_mmap) - m0;
    t->grows += atomic_load(&n_grow) - g0;
  }
}

static void drop_all(void) {
  int i;
  for (i = 0; i < K; i++) {
    FREE(live[i]);
    live[i] = NULL;
  }
}

/* (a) After a warm-up, the loop's blocks are recycled page for page. */
static void test_hot(void) {
  struct tally t = { 0, 0, 0, 0 };
  cycle(3 * NSIZES, NULL);  /* warm-up */
  cycle(10 * NSIZES, &t);
  printf("# steady loop: %ld allocations, %ld pages faulted in, %ld mmap "
         "calls, %ld growing mremap calls\n",
         t.allocs, t.absent_pages, t.mmaps, t.grows);
  CHECK(t.allocs == 10 * NSIZES);
  CHECK(t.absent_pages == 0);
  /* The system calls that remain only make room: an aligned range (mmap)
  ** or a longer one in place (mremap), which kept pages are then moved
  ** into; at most one of each per allocation. */
  CHECK(t.mmaps <= t.allocs && t.grows <= t.allocs);
}

/* (b) Freed and no longer cycled, the kept mappings go back. */
static size_t cached_after_loop(size_t base) {
  size_t kept;
  cycle(2 * NSIZES, NULL);
  drop_all();
  kept = mapped() - base;
  printf("# kept after the loop: %zu MiB\n", kept / MiB);
  CHECK(kept > 8 * MiB);  /* more than the fixed bound (1 MiB) */
  return kept;
}

static void test_idle(size_t base) {
  size_t kept = cached_after_loop(base), before = mapped();
  long u0 = atomic_load(&unmapped);
  void *v[256];
  int r, i;
  /* small blocks only: many refills and flushes, no large operation */
  for (r = 0; r < 100; r++) {
    for (i = 0; i < 256; i++) v[i] = ALLOC(100);
    for (i = 0; i < 256; i++) FREE(v[i]);
  }
  printf("# after small blocks only: %zu MiB mapped, was %zu\n",
         (mapped() - base) / MiB, (before - base) / MiB);
  CHECK(mapped() + kept - 2 * MiB <= before);
  CHECK(atomic_load(&unmapped) - u0 >= (long)(kept - 2 * MiB));
}

static void test_alloc_only(size_t base) {
  size_t kept = cached_after_loop(base), before = mapped();
  void *v[20];
  int i;
  /* large operations that only allocate: nothing freed is reused */
  for (i = 0; i < 20; i++) v[i] = ALLOC(70 * 1024 + (size_t)i * 4096);
  printf("# after large allocations only: %zu MiB kept of %zu\n",
         (mapped() - base) / MiB - 1, kept / MiB);
  CHECK(mapped() <= before - kept + 1 * MiB + 20 * 200 * 1024);
  for (i = 0; i < 20; i++) FREE(v[i]);
}

static void test_minimize(size_t base) {
  cached_after_loop(base);
  m->lpVtbl->HeapMinimize(m);
  CHECK(mapped() == base);
}

/* (d) The fall-back after small blocks only: each IDLE_SLOW-th slow path
** of small blocks (a refill or a flush of a thread's cache) while the cache
** holds more than IMALLOC_RETAIN checks whether a large operation came
** since the check before; the first that finds none falls back. The checks
** are seen as the cache's lock taken: the lock that the Free of a large
** block takes last, and that small blocks take only for those checks. */
static pthread_mutex_t *cache_lock(void) {
  void *p = ALLOC(2 * MiB);
  last_locked = NULL;
  FREE(p);
  return last_locked;
}

/* Small blocks allocated, then freed, one call at a time (at most one slow
** path each) until the cache's lock was taken once more: 1 if it was. The
** blocks live between calls (small_live of them), so that no call after
** the check makes another slow path. ALLOCS: up to NSMALL blocks only,
** slow paths that are all refills (113 at least: a refill takes 72 blocks
** of 200 bytes at most); FREES: only the Frees of the live ones, flushes
** (as many, when all NSMALL live). */
enum { NSMALL = 8192 };
enum { CYCLE, ALLOCS, FREES };
static void *small[NSMALL];
static int small_live, small_freeing;

static int until_check(int only) {
  long start = atomic_load(&watched_locks);
  long step;
  if (only != CYCLE) small_freeing = only == FREES;
  for (step = 0; step < 100 * NSMALL; step++) {
    if (only != CYCLE && small_live == (only == ALLOCS ? NSMALL : 0))
      return 0;
    if (!small_freeing) {
      small[small_live++] = ALLOC(200);
      if (small_live == NSMALL) small_freeing = 1;
    } else {
      FREE(small[--small_live]);
      if (small_live == 0) small_freeing = 0;
    }
    if (atomic_load(&watched_locks) != start) return 1;
  }
  return 0;
}

static void small_free_all(void) {
  while (small_live) FREE(small[--small_live]);
  small_freeing = 0;
}

/* What the checks give back is seen as bytes unmapped: the small blocks'
** own chunks may come and go meanwhile, a MiB or two, far less than what
** the cache keeps. */
/* A thread's first small block: its first slow path. */
static void *first_small(void *arg) {
  FREE(ALLOC(200));
  (void)arg;
  return NULL;
}

/* A Free of a spied block of this thread's own, with room in its bin, is
** no slow path either: a bin takes it as it takes any other (only the
** claim of its slot differs). IDLE_SLOW of them in a row, right after a
** check, make no check. */
static void spied_frees_check_nothing(size_t base) {
  enum { N = 64 };  /* IDLE_SLOW (large.c) */
  void *spied[N];
  long n;
  int i;
  CHECK(imalloc_CoRegisterMallocSpy(fake_pass_spy()) == S_OK);
  for (i = 0; i < N; i++) spied[i] = ALLOC(24);  /* their bin has room for N */
  cached_after_loop(base);
  CHECK(until_check(CYCLE));  /* large operations came: the cache stays */
  n = atomic_load(&watched_locks);
  for (i = 0; i < N; i++) FREE(spied[i]);
  CHECK(atomic_load(&watched_locks) == n);
  small_free_all();  /* spied too */
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK);
}

/* Another thread's Frees of this thread's blocks take a slow path only
** when a batch of them goes back to their chunk: each such batch counts
** as one, while the cache holds more than IMALLOC_RETAIN, and not
** otherwise. IDLE_SLOW batches of 64 blocks of 16 bytes (the rest wait for
** the thread's end), freed by a new thread: how many checks they made. */
enum { NREMOTE = 64 * 64 + 32 };
static void *remote_blocks[NREMOTE];

static void *free_remote(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < NREMOTE; i++) FREE(remote_blocks[i]);
  return NULL;
}

static long remote_batch_checks(int excess, size_t base) {
  pthread_t t;
  long n;
  int i;
  for (i = 0; i < NREMOTE; i++) remote_blocks[i] = ALLOC(16);
  if (excess) cached_after_loop(base);
  n = atomic_load(&watched_locks);
  CHECK(pthread_create(&t, NULL, free_remote, NULL) == 0 &&
        pthread_join(t, NULL) == 0);
  return atomic_load(&watched_locks) - n;
}

static void test_idle_checks(size_t base) {
  size_t kept, before;
  long u0, n;
  void *p;
  pthread_t t;
  atomic_store(&watched, cache_lock());
  CHECK(atomic_load(&watched) != NULL);
  kept = cached_after_loop(base);
  /* not at every slow path: a new thread's first makes no check */
  n = atomic_load(&watched_locks);
  CHECK(pthread_create(&t, NULL, first_small, NULL) == 0 &&
        pthread_join(t, NULL) == 0);
  CHECK(atomic_load(&watched_locks) == n);
  u0 = atomic_load(&unmapped);
  CHECK(until_check(CYCLE));  /* large operations came since the last */
  CHECK(atomic_load(&unmapped) - u0 < (long)(kept / 2));
  /* nor at the slow path right after a check (a class not used yet) */
  n = atomic_load(&watched_locks);
  p = ALLOC(5000);
  CHECK(atomic_load(&watched_locks) == n);
  FREE(p);
  u0 = atomic_load(&unmapped);
  CHECK(until_check(CYCLE));  /* none since: back to IMALLOC_RETAIN */
  CHECK(atomic_load(&unmapped) - u0 >= (long)(kept - 2 * MiB));
  /* and the window starts anew: an Alloc then takes nothing from the
  ** loop's Frees, so the Free of 4 MiB after it is not kept */
  p = ALLOC(4 * MiB);
  CHECK(p != NULL);
  before = mapped();
  FREE(p);
  CHECK(mapped() == before - 4 * MiB);
  small_free_all();
  /* HeapMinimize leaves no excess: small blocks make no check after it */
  cached_after_loop(base);
  m->lpVtbl->HeapMinimize(m);
  CHECK(!until_check(CYCLE));
  small_free_all();
  /* the cache holding IMALLOC_RETAIN exactly is no excess: small blocks
  ** make no check then */
  m->lpVtbl->HeapMinimize(m);
  FREE(ALLOC(MiB));  /* kept: 1 MiB */
  CHECK(!until_check(CYCLE));
  small_free_all();
  /* nor once an Alloc has left it so: 1 MiB of a kept 2 MiB */
  m->lpVtbl->HeapMinimize(m);
  FREE(ALLOC(2 * MiB));  /* matches nothing: not kept */
  p = ALLOC(2 * MiB);    /* matches that Free: 2 MiB of reuse */
  FREE(p);               /* kept: more than IMALLOC_RETAIN, checks again */
  CHECK(until_check(CYCLE));
  p = ALLOC(MiB);        /* its first MiB; the other one stays kept */
  CHECK(p != NULL);
  CHECK(!until_check(CYCLE));
  small_free_all();
  FREE(p);
  /* refills alone count, and flushes alone */
  cached_after_loop(base);
  CHECK(until_check(ALLOCS));
  while (small_live < NSMALL) small[small_live++] = ALLOC(200);
  CHECK(until_check(FREES));
  small_free_all();
  spied_frees_check_nothing(base);
  m->lpVtbl->HeapMinimize(m);
  CHECK(remote_batch_checks(0, base) == 0);
  CHECK(remote_batch_checks(1, base) >= 1);
  atomic_store(&watched, NULL);
}

/* (c) The window: of the last 16 large operations, the bytes the Allocs
** could have taken from the Frees before them, each Free's bytes taken
** once, bound what the cache keeps (above IMALLOC_RETAIN). Each case
** starts from HeapMinimize (the cache and the window emptied) and ends
** with a Free whose block is kept if the bound then reaches its size, and
** unmapped at once if not. Blocks of 100 KiB allocated while no Free is
** left to take from fill the window with operations that match nothing. */
static int kept_on_free(void *p, size_t n) {
  size_t before = mapped();
  FREE(p);
  if (mapped() == before) return 1;
  if (mapped() != before - n)
    printf("# unexpected: %zu bytes mapped, were %zu\n", mapped(), before);
  return 0;
}

/* Alloc 8 MiB (matches nothing), Free it (no Alloc after it yet: not
** kept), Alloc 8 MiB (matches the Free), then `fill` Allocs of 100 KiB;
** whether the Free of the second 8 MiB keeps it. */
static int window_case(int fill) {
  void *x, *y, *f[16];
  int i, kept;
  m->lpVtbl->HeapMinimize(m);
  x = ALLOC(8 * MiB);
  CHECK(x != NULL);
  CHECK(!kept_on_free(x, 8 * MiB));
  y = ALLOC(8 * MiB);
  CHECK(y != NULL);
  for (i = 0; i < fill; i++) f[i] = ALLOC(100 * 1024);
  kept = kept_on_free(y, 8 * MiB);
  for (i = 0; i < fill; i++) FREE(f[i]);
  m->lpVtbl->HeapMinimize(m);
  return kept;
}

static void test_window(void) {
  void *a, *b, *c, *d;
  size_t before;
  /* 17 operations: the first Alloc has left the window, the Free and the
  ** Alloc that took from it are its two oldest: 8 MiB matched, kept */
  CHECK(window_case(13) == 1);
  /* 18: the Free has left it too: its Alloc matches nothing, not kept */
  CHECK(window_case(14) == 0);
  /* Frees alone match nothing */
  m->lpVtbl->HeapMinimize(m);
  a = ALLOC(8 * MiB);
  b = ALLOC(8 * MiB);
  CHECK(a && b);
  CHECK(!kept_on_free(a, 8 * MiB));
  CHECK(!kept_on_free(b, 8 * MiB));
  /* a Free's bytes are taken once: of 4 MiB freed, two Allocs of 4 MiB
  ** take 4 MiB, so the bound is 4 MiB: the second of two Frees of 4 MiB
  ** pushes the first out */
  m->lpVtbl->HeapMinimize(m);
  a = ALLOC(4 * MiB);
  b = ALLOC(4 * MiB);
  CHECK(a && b);
  CHECK(!kept_on_free(a, 4 * MiB));
  c = ALLOC(4 * MiB);  /* takes the 4 MiB freed */
  d = ALLOC(4 * MiB);  /* nothing left to take */
  CHECK(c && d);
  CHECK(kept_on_free(b, 4 * MiB));
  before = mapped();
  FREE(c);  /* kept, b unmapped */
  CHECK(mapped() == before - 4 * MiB);
  FREE(d);
  /* an Alloc takes at most what it asks: 2 MiB of the 8 MiB freed */
  m->lpVtbl->HeapMinimize(m);
  a = ALLOC(8 * MiB);
  b = ALLOC(4 * MiB);
  CHECK(a && b);
  CHECK(!kept_on_free(a, 8 * MiB));
  c = ALLOC(2 * MiB);  /* takes 2 MiB of the 8 freed */
  CHECK(c != NULL);
  CHECK(!kept_on_free(b, 4 * MiB));  /* the bound is 2 MiB */
  CHECK(kept_on_free(c, 2 * MiB));
  m->lpVtbl->HeapMinimize(m);
}

int main(void) {
  long ps = sysconf(_SC_PAGESIZE);
  size_t base;
  page = ps > 0 ? (size_t)ps : 4096;
  setvbuf(stdout, NULL, _IOLBF, 0);
  setenv("IMALLOC_RETAIN", "1M", 1);  /* read at the allocator's first use */
  if (imalloc_CoGetMalloc(1, &m) != S_OK) {
    printf("FAIL: no allocator\n0 passed, 1 failed\n");
    return 1;
  }
  errno = 0;  /* a size above the limit: NULL and errno, as malloc */
  CHECK(ALLOC((size_t)1 << 41) == NULL && errno == ENOMEM);
  FREE(ALLOC(100));  /* the small blocks' chunk, before the baseline */
  m->lpVtbl->HeapMinimize(m);
  base = mapped();
  test_hot();
  drop_all();
  m->lpVtbl->HeapMinimize(m);
  CHECK(mapped() == base);
  test_idle(base);
  m->lpVtbl->HeapMinimize(m);
  test_alloc_only(base);
  m->lpVtbl->HeapMinimize(m);
  test_minimize(base);
  test_idle_checks(base);
  m->lpVtbl->HeapMinimize(m);
  test_window();
  return check_report();
}
