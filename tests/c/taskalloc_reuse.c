/*
** taskalloc_reuse.c: small blocks reuse memory the allocator already
** touched before they touch more (src/taskalloc/chunk.c, "Memory"). Pages
** are counted by mincore, chunks by address; threads run one after the
** other (joined), nothing depends on timing. Each test uses size classes
** no other test here uses.
**
**   free blocks first   a class with a chunk of blocks never handed out
**                       and another with free blocks hands out the free
**                       ones: no page of the first is touched
**   pool by class       two classes' chunks emptied at a thread's exit:
**                       the next thread's classes take back their own,
**                       whose pages hold what they need, and touch no
**                       page more (the pool's most recent chunk would
**                       give the small class the large one's chunk, and
**                       the large class pages to touch again)
**   ended thread        a thread that ended left a chunk with free
**                       blocks; another thread's Alloc of that class
**                       takes the chunk over and allocates from it; the
**                       next thread to start does not share it (the
**                       chunk is a live thread's now, which allocates
**                       from it): it takes a chunk of its own
**   ended, none free    an ended thread's chunk with no free block, only
**                       blocks never handed out: another thread's Alloc
**                       takes it over and cuts its block from it, rather
**                       than take a chunk from the pool or the system
**
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _DEFAULT_SOURCE  /* mincore */
#include "check.h"
#include "client.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)
#define CHUNK(p) ((uintptr_t)(p) & ~(MiB - 1))

/* Pages of the chunk at c resident, or (size_t)-1. */
static size_t resident(uintptr_t c) {
  static unsigned char vec[256];
  size_t page = (size_t)sysconf(_SC_PAGESIZE), i, r = 0;
  if (MiB / page > sizeof vec || mincore((void *)c, MiB, vec) != 0)
    return (size_t)-1;
  for (i = 0; i < MiB / page; i++) r += vec[i] & 1;
  return r;
}

static void run_thread(void *(*fn)(void *)) {
  pthread_t t;
  int ok = pthread_create(&t, NULL, fn, NULL) == 0;
  CHECK(ok);
  if (ok) pthread_join(t, NULL);
}

/* ---- free blocks first -------------------------------------------------- */

/* 64 KiB blocks: 12 to a chunk. 15 of them fill chunk A and start chunk
** B; all of A's but one are freed, and HeapMinimize sends the cache's
** blocks back to their chunks (A keeps a live block, so it stays). B is
** then the first chunk of the class's list and still has blocks never
** handed out: the next Allocs must take A's free blocks (or B's freed
** ones), not carve B further. Carving a block writes its first bytes, so
** a page of B that becomes resident is one the allocator carved. */
static void test_free_blocks_first(void) {
  enum { N = 15, SIZE = 65536 };
  void *p[N], *q[N];
  uintptr_t a, b;
  size_t before, after;
  int i, nfreed = 0, ok = 1;
  for (i = 0; i < N; i++)
    if (!(p[i] = ALLOC(SIZE))) ok = 0;
  CHECK(ok);
  if (!ok) return;
  a = CHUNK(p[0]);
  b = CHUNK(p[N - 1]);
  CHECK(a != b);
  for (i = 1; i < N; i++)  /* p[0] stays: A is not emptied */
    if (CHUNK(p[i]) == a) {
      FREE(p[i]);
      p[i] = NULL;
      nfreed++;
    }
  CHECK(nfreed >= 8);
  m->lpVtbl->HeapMinimize(m);
  before = resident(b);
  CHECK(before != (size_t)-1);
  for (i = 0; i < nfreed; i++) q[i] = ALLOC(SIZE);
  after = resident(b);
  if (after != before)
    printf("# chunk B: %zu pages resident before, %zu after\n", before, after);
  CHECK(after == before);
  for (i = 0; i < nfreed; i++) {
    CHECK(q[i] != NULL);
    FREE(q[i]);
  }
  for (i = 0; i < N; i++)
    if (p[i]) FREE(p[i]);
}

/* ---- pool by class ------------------------------------------------------ */

enum { BIG = 4000, SMALL = 40, NBIG = 100 };
static uintptr_t pool_big, pool_small;  /* the first thread's chunks */
static uintptr_t got_big, got_small;    /* the second one's */
static size_t pool_pages;               /* resident in both, after */

/* NBIG blocks of 4000 bytes (one chunk, about 100 pages) and one of 40,
** all freed: at the thread's exit its cache goes back, the 40-byte class
** first, so both chunks are empty and the 4000-byte one was emptied last. */
static void *pool_first(void *arg) {
  static void *big[NBIG];
  void *small = ALLOC(SMALL);
  int i;
  (void)arg;
  for (i = 0; i < NBIG; i++) big[i] = ALLOC(BIG);
  pool_big = CHUNK(big[0]);
  pool_small = CHUNK(small);
  FREE(small);
  for (i = 0; i < NBIG; i++) FREE(big[i]);
  return NULL;
}

/* The same classes, the small one first, fewer big blocks than before. */
static void *pool_second(void *arg) {
  static void *big[NBIG];
  void *small = ALLOC(SMALL);
  int i;
  (void)arg;
  for (i = 0; i < NBIG - 10; i++) big[i] = ALLOC(BIG);
  got_small = CHUNK(small);
  got_big = CHUNK(big[0]);
  pool_pages = resident(pool_big) + resident(pool_small);
  FREE(small);
  for (i = 0; i < NBIG - 10; i++) FREE(big[i]);
  return NULL;
}

static void test_pool_by_class(void) {
  size_t before;
  run_thread(pool_first);
  CHECK(pool_big != pool_small);
  before = resident(pool_big) + resident(pool_small);
  CHECK(before > 50);
  run_thread(pool_second);
  if (got_big != pool_big || got_small != pool_small)
    printf("# the classes took other chunks than their own\n");
  CHECK(got_big == pool_big);
  CHECK(got_small == pool_small);
  if (pool_pages != before)
    printf("# %zu pages resident before, %zu after\n", before, pool_pages);
  CHECK(pool_pages == before);
}

/* ---- ended thread ------------------------------------------------------- */

enum { MID = 2500, NMID = 50, NNEXT = 40 };
static uintptr_t ended_chunk;
static void *ended_kept;
static int next_in_chunk;

/* NMID blocks of 2500 bytes, all freed but the first, which stays live:
** its chunk outlives the thread, with NMID - 1 free blocks. */
static void *ended_first(void *arg) {
  static void *mid[NMID];
  int i;
  (void)arg;
  for (i = 0; i < NMID; i++) mid[i] = ALLOC(MID);
  ended_kept = mid[0];
  ended_chunk = CHUNK(mid[0]);
  for (i = 1; i < NMID; i++) FREE(mid[i]);
  return NULL;
}

static void *ended_next(void *arg) {
  static void *mid[NNEXT];
  int i;
  (void)arg;
  next_in_chunk = 0;
  for (i = 0; i < NNEXT; i++) {
    mid[i] = ALLOC(MID);
    if (CHUNK(mid[i]) == ended_chunk) next_in_chunk++;
  }
  for (i = 0; i < NNEXT; i++) FREE(mid[i]);
  return NULL;
}

/* (Before, a thread borrowed the ended thread's free blocks and left the
** chunk where it was, so that the next thread to start, which took the
** ended thread's shard, got all NNEXT from it: two live threads then
** allocated from one chunk.) */
static void test_ended_thread(void) {
  void *mine[4];
  int i;
  run_thread(ended_first);
  for (i = 0; i < 4; i++) {  /* this thread never used the class */
    mine[i] = ALLOC(MID);
    CHECK(mine[i] != NULL);
    CHECK(CHUNK(mine[i]) == ended_chunk);
  }
  run_thread(ended_next);
  if (next_in_chunk != 0)
    printf("# %d of %d blocks from the chunk another thread took over\n",
           next_in_chunk, NNEXT);
  CHECK(next_in_chunk == 0);
  for (i = 0; i < 4; i++) FREE(mine[i]);
  FREE(ended_kept);
}

/* ---- ended thread, no free block ---------------------------------------- */

enum { HUGE16 = 16000 };
static void *dry_block;

/* One block of 16000 bytes (a class of one block per refill at first, so
** the cache keeps none), left live: the thread's chunk of that class has
** no free block when it ends. */
static void *dry_first(void *arg) {
  (void)arg;
  dry_block = ALLOC(HUGE16);
  return NULL;
}

static void test_ended_none_free(void) {
  void *mine;
  size_t mapped;
  run_thread(dry_first);
  CHECK(dry_block != NULL);
  mapped = stats().mapped_bytes;
  mine = ALLOC(HUGE16);  /* this thread never used the class */
  CHECK(mine != NULL);
  CHECK(CHUNK(mine) == CHUNK(dry_block));
  CHECK(stats().mapped_bytes == mapped);
  FREE(mine);
  FREE(dry_block);
}

int main(void) {
  if (!client_open()) return 1;
  test_free_blocks_first();
  test_pool_by_class();
  test_ended_thread();
  test_ended_none_free();
  return check_report();
}
