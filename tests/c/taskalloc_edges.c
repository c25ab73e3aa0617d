/*
** taskalloc_edges.c: behaviour of the built-in allocator that the other C
** tests left open (found by tests/mutation/run): large blocks shrunk in
** place across MiB boundaries, the address space given back, threads
** whose first call frees another thread's block, blocks still live when
** their thread exits, calls made after the thread's cache is gone, what
** HeapMinimize and a thread's exit give back to other threads, and
** addresses outside the user address space. Only the public interface
** (taskalloc.h) is used.
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _DEFAULT_SOURCE  /* mincore */
#include "check.h"
#include "client.h"
#include "late_thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)


static size_t page_up(size_t n) {
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  return (n + pg - 1) & ~(pg - 1);
}

/* Whether the page holding `p` is mapped: mincore fails with ENOMEM for
** an address no mapping covers, and never touches the page. */
static int mapped(const void *p) {
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  unsigned char vec;
  void *page = (void *)((uintptr_t)p & ~(uintptr_t)(pg - 1));
  if (mincore(page, pg, &vec) == 0) return 1;
  return errno == ENOMEM ? 0 : -1;
}

/* A large block shrunk in place, by steps that each cross a MiB boundary
** and stay above 1 MiB: its bytes are kept, its size is the new one, and
** the pages past its new end are no longer mapped nor its own. */
static void test_shrink_in_place(void) {
  size_t sizes[] = {5 * MiB + 100, 3 * MiB + 5000, 2 * MiB + 1, MiB + 4096};
  struct imalloc_taskstats before = stats(), st0, st1;
  unsigned char *p = ALLOC(sizes[0]), *q;
  size_t i, off;
  CHECK(p != NULL);
  if (!p) return;
  fill(p, sizes[0], 5);
  CHECK(mapped(p + sizes[0] - 1) == 1);
  for (i = 1; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t old = sizes[i - 1], n = sizes[i];
    st0 = stats();
    q = REALLOC(p, n);
    st1 = stats();
    CHECK(q != NULL && GETSIZE(q) == n && DIDALLOC(q) == 1);
    if (!q) return;
    CHECK(is_pattern(q, n, 5));
    CHECK(st1.live_bytes + (old - n) == st0.live_bytes);
    CHECK(st1.live_blocks == st0.live_blocks);
    /* what was mapped past the new end is given back, to the page */
    CHECK(st0.mapped_bytes - st1.mapped_bytes >= page_up(old) - page_up(n));
    if (q == p) {
      CHECK(mapped(p + n - 1) == 1);
      CHECK(mapped(p + page_up(n)) == 0);
      CHECK(mapped(p + old - 1) == 0);
      for (off = MiB; off < old; off += MiB)
        if (off >= n && (DIDALLOC(p + off) != 0 || GETSIZE(p + off) != (SIZE_T)-1))
          CHECK(!"a region past the new end still answers as a block");
    }
    p = q;
  }
  /* other large blocks may now be mapped where the tail was */
  {
    void *v[8];
    int k, ok = 1;
    for (k = 0; k < 8; k++) {
      v[k] = ALLOC(2 * MiB + (size_t)k);
      if (!v[k] || DIDALLOC(v[k]) != 1 || GETSIZE(v[k]) != 2 * MiB + (size_t)k)
        ok = 0;
    }
    CHECK(ok);
    CHECK(GETSIZE(p) == MiB + 4096 && is_pattern(p, MiB + 4096, 5));
    for (k = 0; k < 8; k++) FREE(v[k]);
  }
  FREE(p);
  st1 = stats();
  CHECK(st1.live_blocks == before.live_blocks);
  CHECK(st1.live_bytes == before.live_bytes);
}

/* ---- threads ------------------------------------------------------------ */

enum { NBLOCKS = 6 };
static const size_t block_sizes[NBLOCKS] = {1, 24, 100, 5000, 65536, 3 * MiB};

struct job {
  void *blocks[NBLOCKS];
  int ok;
};

/* A thread whose very first calls into the allocator are a Free, a
** Realloc and queries of blocks another thread allocated. */
static void *first_calls(void *arg) {
  struct job *j = arg;
  int i, ok = 1;
  if (DIDALLOC(j->blocks[0]) != 1 || GETSIZE(j->blocks[1]) != block_sizes[1])
    ok = 0;
  FREE(j->blocks[2]);
  if (DIDALLOC(j->blocks[2]) != 0) ok = 0;
  j->blocks[2] = NULL;
  j->blocks[3] = REALLOC(j->blocks[3], 6000);
  if (!j->blocks[3] || GETSIZE(j->blocks[3]) != 6000) ok = 0;
  for (i = 0; i < NBLOCKS; i++) {
    FREE(j->blocks[i]);
    if (j->blocks[i] && DIDALLOC(j->blocks[i]) != 0) ok = 0;
  }
  j->ok = ok;
  return NULL;
}

static void test_first_call_frees(void) {
  struct imalloc_taskstats st0 = stats(), st1;
  struct job j;
  pthread_t t;
  int i;
  for (i = 0; i < NBLOCKS; i++) {
    j.blocks[i] = ALLOC(block_sizes[i]);
    CHECK(j.blocks[i] != NULL);
  }
  j.ok = 0;
  CHECK(pthread_create(&t, NULL, first_calls, &j) == 0);
  pthread_join(t, NULL);
  CHECK(j.ok);
  st1 = stats();
  CHECK(st1.live_blocks == st0.live_blocks);
  CHECK(st1.live_bytes == st0.live_bytes);
  for (i = 0; i < NBLOCKS; i++)
    if (j.blocks[i]) CHECK(DIDALLOC(j.blocks[i]) == 0);
}

/* A thread that exits with blocks still live: they stay counted and
** valid, and whoever frees them later uncounts them. */
enum { MANY = 3000, KEPT = 7 };

static void *leave_some(void *arg) {
  void **kept = arg;
  static void *tmp[MANY];
  int i;
  for (i = 0; i < MANY; i++) tmp[i] = ALLOC(32);
  for (i = 0; i < MANY; i++) {
    if (i < KEPT) kept[i] = tmp[i];
    else FREE(tmp[i]);
  }
  return NULL;
}

static void test_exit_with_live_blocks(void) {
  struct imalloc_taskstats st0 = stats(), st1;
  void *kept[KEPT];
  pthread_t t;
  int i, ok = 1;
  CHECK(pthread_create(&t, NULL, leave_some, kept) == 0);
  pthread_join(t, NULL);
  st1 = stats();
  CHECK(st1.live_blocks == st0.live_blocks + KEPT);
  CHECK(st1.live_bytes == st0.live_bytes + KEPT * 32);
  for (i = 0; i < KEPT; i++)
    if (DIDALLOC(kept[i]) != 1 || GETSIZE(kept[i]) != 32) ok = 0;
  CHECK(ok);
  for (i = 0; i < KEPT; i++) FREE(kept[i]);
  st1 = stats();
  CHECK(st1.live_blocks == st0.live_blocks);
  CHECK(st1.live_bytes == st0.live_bytes);
}

/* What a thread frees, it may keep for itself for a while; HeapMinimize,
** and the thread's exit, give all of it back for other threads to reuse:
** another thread then allocating that size gets every one of those
** blocks again before it needs new memory. */
enum { GIVEN = 500, TAKEN = 20000 };
static const size_t reuse_size = 208;  /* a size no other test uses */

struct giver {
  void *blocks[GIVEN];
  int minimize;  /* HeapMinimize, then wait; or just exit */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int stage;     /* 1: blocks freed (and minimized); 2: may exit */
};

static void *give(void *arg) {
  struct giver *g = arg;
  int i;
  for (i = 0; i < GIVEN; i++) g->blocks[i] = ALLOC(reuse_size);
  for (i = 0; i < GIVEN; i++) FREE(g->blocks[i]);
  if (g->minimize) m->lpVtbl->HeapMinimize(m);
  pthread_mutex_lock(&g->lock);
  g->stage = 1;
  pthread_cond_broadcast(&g->cond);
  while (g->minimize && g->stage != 2) pthread_cond_wait(&g->cond, &g->lock);
  pthread_mutex_unlock(&g->lock);
  return NULL;
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
  return x < y ? -1 : x > y;
}

/* Runs a giver; returns how many of its blocks a thread (this one) got
** back among TAKEN allocations of the same size. */
static int reused(int minimize) {
  static struct giver g;
  static void *taken[TAKEN];
  pthread_t t;
  int i, found = 0;
  memset(&g, 0, sizeof g);
  g.minimize = minimize;
  pthread_mutex_init(&g.lock, NULL);
  pthread_cond_init(&g.cond, NULL);
  if (pthread_create(&t, NULL, give, &g) != 0) return -1;
  if (minimize) {  /* the giver is alive, waiting: its cache is its own */
    pthread_mutex_lock(&g.lock);
    while (g.stage != 1) pthread_cond_wait(&g.cond, &g.lock);
    pthread_mutex_unlock(&g.lock);
  } else {
    pthread_join(t, NULL);
  }
  for (i = 0; i < TAKEN; i++) taken[i] = ALLOC(reuse_size);
  qsort(taken, TAKEN, sizeof taken[0], cmp_ptr);
  for (i = 0; i < GIVEN; i++)
    if (bsearch(&g.blocks[i], taken, TAKEN, sizeof taken[0], cmp_ptr)) found++;
  for (i = 0; i < TAKEN; i++) FREE(taken[i]);
  if (minimize) {
    pthread_mutex_lock(&g.lock);
    g.stage = 2;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    pthread_join(t, NULL);
  }
  m->lpVtbl->HeapMinimize(m);
  pthread_cond_destroy(&g.cond);
  pthread_mutex_destroy(&g.lock);
  return found;
}

static void test_given_back(void) {
  int n = reused(1);
  if (n != GIVEN) printf("after HeapMinimize: %d of %d reused\n", n, GIVEN);
  CHECK(n == GIVEN);
  n = reused(0);
  if (n != GIVEN) printf("after the thread's exit: %d of %d reused\n", n, GIVEN);
  CHECK(n == GIVEN);
}

/* Calls made while a thread is ending, after the allocator's own
** destructor has given its cache back: a destructor that sets its value
** again runs in the next round, when the cache is gone for good. Those
** calls still work, without a cache (late_thread.h). */
enum { LATE = 40 };
static void *late_blocks[LATE];
static int late_ok;

static void late_calls(void) {
  int i, ok = 1;
  void *tmp[8];
  for (i = 0; i < LATE; i++) {
    late_blocks[i] = ALLOC((size_t)(i % 4) * 100 + 1);
    if (!late_blocks[i] || DIDALLOC(late_blocks[i]) != 1) ok = 0;
  }
  for (i = 0; i < 8; i++) tmp[i] = ALLOC(48);
  for (i = 0; i < 8; i++) FREE(tmp[i]);
  for (i = 0; i < 8; i++)
    if (DIDALLOC(tmp[i]) != 0) ok = 0;
  late_ok = ok;
}

static void test_calls_while_exiting(void) {
  struct imalloc_taskstats st0 = stats(), st1;
  int i, ok = 1;
  CHECK(late_thread_run(late_calls));
  CHECK(late_ok);
  st1 = stats();
  CHECK(st1.live_blocks == st0.live_blocks + LATE);
  for (i = 0; i < LATE; i++) {
    if (DIDALLOC(late_blocks[i]) != 1) ok = 0;
    FREE(late_blocks[i]);
  }
  CHECK(ok);
  st1 = stats();
  CHECK(st1.live_blocks == st0.live_blocks && st1.live_bytes == st0.live_bytes);
}

/* Addresses that are no live block (client.h), and QueryInterface
** without an IID. */
static void test_foreign_addresses(void) {
  void *pv = &pv;
  CHECK(refuses_foreign());
  CHECK(m->lpVtbl->QueryInterface(m, NULL, &pv) == E_INVALIDARG && pv == NULL);
}

int main(void) {
  if (!client_open()) return 1;
  test_shrink_in_place();
  test_first_call_frees();
  test_exit_with_live_blocks();
  test_given_back();
  test_calls_while_exiting();
  test_foreign_addresses();
  return check_report();
}
