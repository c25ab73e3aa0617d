/*
** taskalloc_shards.c: each thread allocates from chunks of its own
** (src/taskalloc/chunk.c, "shards"), a block freed by another thread goes
** back to its chunk rather than into the freeing thread's cache (and one
** freed by its own thread, spied or not, into that thread's cache), and free
** blocks in another thread's chunks are not stranded when that thread
** stops allocating, but the chunk it allocates from is left to it.
** Everything is
** an address or a chunk's address: threads step in turn (semaphores),
** nothing depends on timing. Prints "N passed, N failed"; exits non-zero on
** a failure.
*/
#define _DEFAULT_SOURCE  /* PTHREAD_DESTRUCTOR_ITERATIONS (late_thread.h) */
#include "check.h"
#include "client.h"
#include "fake_com.h"
#include "late_thread.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>

#define CHUNK(p) ((uintptr_t)(p) & ~(((uintptr_t)1 << 20) - 1))

enum { N = 200 };

static sem_t to_worker, to_main;
static size_t worker_size;
static int worker_n;
static void *worker_blocks[N];

/* Allocates worker_n blocks of worker_size, hands them to main, then stays
** alive and idle until main is done with them. */
static void *worker(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < worker_n; i++) worker_blocks[i] = ALLOC(worker_size);
  sem_post(&to_main);
  sem_wait(&to_worker);
  return NULL;
}

static int start(pthread_t *t, size_t size, int n) {
  worker_size = size;
  worker_n = n;
  if (pthread_create(t, NULL, worker, NULL) != 0) return 0;
  sem_wait(&to_main);
  return 1;
}

static void stop(pthread_t t) {
  sem_post(&to_worker);
  pthread_join(t, NULL);
}

/* Two live threads allocating blocks of one class get them from two
** different chunks, though the first one's chunk has room. */
static void test_own_chunks(void) {
  pthread_t t;
  void *mine = ALLOC(64);
  CHECK(mine != NULL);
  CHECK(start(&t, 64, 1));
  CHECK(worker_blocks[0] != NULL);
  CHECK(CHUNK(worker_blocks[0]) != CHUNK(mine));
  FREE(worker_blocks[0]);  /* from this thread: back to the worker's chunk */
  CHECK(DIDALLOC(worker_blocks[0]) == 0);
  stop(t);
  FREE(mine);
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
  return x < y ? -1 : x > y;
}

/* How many of the n blocks of `of` are among the n2 of `in`. */
static int count_in(void *const *of, int n, void **in, int n2) {
  int i, found = 0;
  qsort(in, (size_t)n2, sizeof in[0], cmp_ptr);
  for (i = 0; i < n; i++)
    if (bsearch(&of[i], in, (size_t)n2, sizeof in[0], cmp_ptr)) found++;
  return found;
}

/* A live thread allocated NR blocks of 80 bytes (a batch of 64, a bin of
** 128: its refills of 1, 2, ..., 64, then 128, leave 127 in its cache);
** this thread frees them all. They go back to the other thread's chunk
** (in two batches of 64), not into this thread's cache: this thread's
** next NR blocks of the class are none of them (it takes a chunk of its
** own: the other's is the one that thread allocates from), and the other
** thread's next 2 NR - 1 (its 127 cached, then a refill from its chunk's
** free blocks, which come before blocks never handed out) are all of
** them. (Before, they went into this thread's cache: it got all NR back,
** and the other thread none.) */
enum { NR = 128, RSIZE = 80 };
static sem_t r_go, r_done;
static void *r_first[NR], *r_again[2 * NR - 1];

static void *reallocates(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < NR; i++) r_first[i] = ALLOC(RSIZE);
  sem_post(&r_done);
  sem_wait(&r_go);
  for (i = 0; i < 2 * NR - 1; i++) r_again[i] = ALLOC(RSIZE);
  sem_post(&r_done);
  sem_wait(&r_go);
  for (i = 0; i < 2 * NR - 1; i++) FREE(r_again[i]);
  return NULL;
}

static void test_freed_back_to_owner(void) {
  static void *mine[NR];
  void *freed[NR];
  pthread_t t;
  int i, got_mine, got_theirs;
  sem_init(&r_go, 0, 0);
  sem_init(&r_done, 0, 0);
  CHECK(pthread_create(&t, NULL, reallocates, NULL) == 0);
  sem_wait(&r_done);
  for (i = 0; i < NR; i++) {
    CHECK(r_first[i] != NULL);
    freed[i] = r_first[i];
    FREE(r_first[i]);
  }
  for (i = 0; i < NR; i++) mine[i] = ALLOC(RSIZE);
  sem_post(&r_go);
  sem_wait(&r_done);
  got_mine = count_in(freed, NR, mine, NR);
  got_theirs = count_in(freed, NR, r_again, 2 * NR - 1);
  printf("# of %d blocks another thread freed: %d allocated again by it, "
         "%d by the freeing thread\n", NR, got_theirs, got_mine);
  CHECK(got_mine == 0);
  CHECK(got_theirs == NR);
  for (i = 0; i < NR; i++) FREE(mine[i]);
  sem_post(&r_go);
  pthread_join(t, NULL);
  sem_destroy(&r_go);
  sem_destroy(&r_done);
}

/* A thread allocated N blocks of a class this thread never used; this one
** frees them all (they go back to the other's chunk); the other stays
** alive but allocates nothing more. This thread's Allocs of that class
** get those blocks again once its own first chunk is used up: the idle
** thread's chunk is adopted, not left with its free blocks while new
** chunks are taken. 1 MiB holds about 270 blocks of 3000 bytes, so 3 * N
** Allocs need more than one chunk. */
static void test_idle_thread_chunk_adopted(void) {
  enum { TAKE = 3 * N };
  static void *taken[TAKE];
  void *theirs[N];
  pthread_t t;
  int i, found = 0;
  CHECK(start(&t, 3000, N));
  for (i = 0; i < N; i++) {
    theirs[i] = worker_blocks[i];
    CHECK(theirs[i] != NULL);
    FREE(theirs[i]);
  }
  for (i = 0; i < TAKE; i++) taken[i] = ALLOC(3000);
  qsort(taken, TAKE, sizeof taken[0], cmp_ptr);
  for (i = 0; i < N; i++)
    if (bsearch(&theirs[i], taken, TAKE, sizeof taken[0], cmp_ptr)) found++;
  printf("# %d of the idle thread's %d freed blocks allocated again here\n",
         found, N);
  CHECK(found == N);
  for (i = 0; i < TAKE; i++) FREE(taken[i]);
  stop(t);
}

/* A live thread's only chunk of a class, with free blocks, is the one it
** allocates from: another thread's first block of the class does not
** take it over while that thread took blocks since it last looked (a
** thread that never looked: always). */
static void test_busy_chunk_left(void) {
  void *mine[5];
  pthread_t t;
  int i;
  for (i = 0; i < 5; i++) mine[i] = ALLOC(32768);
  FREE(mine[3]);
  FREE(mine[4]);
  m->lpVtbl->HeapMinimize(m);  /* this thread's cache back to the chunk */
  CHECK(start(&t, 32768, 1));
  CHECK(worker_blocks[0] != NULL);
  CHECK(CHUNK(worker_blocks[0]) != CHUNK(mine[0]));
  FREE(worker_blocks[0]);
  stop(t);
  for (i = 0; i < 3; i++) FREE(mine[i]);
}

/* A live thread's only chunk of a class with no free block (only blocks
** never handed out) is never taken over, even idle: another thread whose
** own chunks fill up (so that it looks again, that thread idle since)
** takes new ones. */
static void test_idle_without_free_left(void) {
  enum { NW = 40 };  /* blocks of 48 KiB: more than two chunks */
  void *mine = ALLOC(49152);
  pthread_t t;
  int i, in_mine = 0;
  CHECK(mine != NULL);
  CHECK(start(&t, 49152, NW));
  for (i = 0; i < NW; i++) {
    CHECK(worker_blocks[i] != NULL);
    if (CHUNK(worker_blocks[i]) == CHUNK(mine)) in_mine++;
  }
  CHECK(in_mine == 0);
  for (i = 0; i < NW; i++) FREE(worker_blocks[i]);
  stop(t);
  FREE(mine);
}

/* An ended thread's list of two chunks of 64 KiB blocks (12 to a chunk):
** its 14 blocks fill the first and take 2 of the second (the list's first
** then); 4 freed in the first put it back on the list, behind, and with
** `both` one freed in the second too. Another thread's next block of the
** class is one of those free ones, from the first chunk of the list that
** has some. */
static void *ended_blocks[14];
static int ended_both;

static void *two_chunks_end(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < 14; i++) ended_blocks[i] = ALLOC(65536);
  for (i = 0; i < 4; i++) FREE(ended_blocks[i]);
  if (ended_both) FREE(ended_blocks[13]);
  return NULL;
}

static void test_ended_free_blocks(int both) {
  pthread_t t;
  void *p;
  int i;
  ended_both = both;
  CHECK(pthread_create(&t, NULL, two_chunks_end, NULL) == 0 &&
        pthread_join(t, NULL) == 0);
  CHECK(CHUNK(ended_blocks[0]) != CHUNK(ended_blocks[13]));
  p = ALLOC(65536);
  CHECK(p != NULL);
  CHECK(CHUNK(p) == CHUNK(ended_blocks[both ? 13 : 0]));
  FREE(p);
  for (i = 4; i < (both ? 13 : 14); i++) FREE(ended_blocks[i]);
  m->lpVtbl->HeapMinimize(m);
}

/* Two ended threads' chunks of a class: the first's (the lower shard)
** with no free block, its one block live; the second's with free blocks.
** Another thread's next block of the class is one of the second's free
** ones: every shard no thread holds is looked at for free blocks before
** one is taken over. */
static sem_t first_in, first_out;
static void *dry_kept, *lender_kept, *lender_freed;

static void *dry_first(void *arg) {
  (void)arg;
  dry_kept = ALLOC(40000);
  sem_post(&first_in);
  sem_wait(&first_out);
  return NULL;
}

static void *lender(void *arg) {
  (void)arg;
  lender_kept = ALLOC(40000);
  lender_freed = ALLOC(40000);
  FREE(lender_freed);
  return NULL;
}

static void test_free_blocks_before_takeover(void) {
  pthread_t t1, t2;
  void *p;
  sem_init(&first_in, 0, 0);
  sem_init(&first_out, 0, 0);
  CHECK(pthread_create(&t1, NULL, dry_first, NULL) == 0);
  sem_wait(&first_in);
  CHECK(pthread_create(&t2, NULL, lender, NULL) == 0 &&
        pthread_join(t2, NULL) == 0);
  sem_post(&first_out);
  pthread_join(t1, NULL);
  CHECK(dry_kept && lender_kept && CHUNK(dry_kept) != CHUNK(lender_kept));
  p = ALLOC(40000);
  CHECK(p != NULL && CHUNK(p) == CHUNK(lender_kept));
  FREE(p);
  FREE(dry_kept);
  FREE(lender_kept);
  sem_destroy(&first_in);
  sem_destroy(&first_out);
}

/* A live thread's list of two chunks with free blocks: another thread
** takes over the second, not the first, which its thread allocates from.
** 64 KiB blocks, 12 to a chunk: 20 fill one and start the next (the
** list's first); 4 freed in the full one put it back on the list, behind. */
static void test_second_chunk_adopted(void) {
  void *mine[20];
  pthread_t t;
  int i;
  for (i = 0; i < 20; i++) mine[i] = ALLOC(65536);
  CHECK(CHUNK(mine[0]) != CHUNK(mine[19]));
  for (i = 0; i < 4; i++) FREE(mine[i]);
  FREE(mine[19]);
  FREE(mine[18]);
  m->lpVtbl->HeapMinimize(m);  /* this thread's cache back to the chunks */
  CHECK(start(&t, 65536, 1));
  CHECK(worker_blocks[0] != NULL);
  CHECK(CHUNK(worker_blocks[0]) == CHUNK(mine[0]));
  FREE(worker_blocks[0]);
  stop(t);
  for (i = 4; i < 18; i++) FREE(mine[i]);
}

/* A second Free of a block, by a thread whose cache is not set up yet,
** then by one whose cache was given back at its end, does nothing: the
** block stays free (this thread hands it out once), and the live-block
** count does not move. Such a thread's cache matches no slot, not even a
** free one (a word of 0 would have matched, and the Free claimed the
** free block again), in any class: the first, one between, the last. */
static void *df_block;
static void *df_free(void *arg) {
  (void)arg;
  FREE(df_block);
  return NULL;
}
static void df_free_late(void) { FREE(df_block); }

static void test_second_free_without_cache(size_t DF) {
  enum { NDF = 4 };
  void *q[NDF];
  pthread_t t;
  size_t before;
  int i, again = 0;
  df_block = ALLOC(DF);
  CHECK(df_block != NULL);
  FREE(df_block);
  before = live_blocks();
  CHECK(pthread_create(&t, NULL, df_free, NULL) == 0 &&
        pthread_join(t, NULL) == 0);
  CHECK(live_blocks() == before);
  CHECK(late_thread_run(df_free_late));
  CHECK(live_blocks() == before);
  for (i = 0; i < NDF; i++) {
    q[i] = ALLOC(DF);
    if (q[i] == df_block) again++;
  }
  CHECK(again <= 1);
  for (i = 0; i < NDF; i++) FREE(q[i]);
  m->lpVtbl->HeapMinimize(m);
  for (i = 0; i < NDF; i++) {  /* back from the chunk: still once */
    q[i] = ALLOC(DF);
    if (q[i] == df_block) again++;
  }
  CHECK(again <= 2);
  for (i = 0; i < NDF; i++) FREE(q[i]);
}

/* A block freed by the thread that allocated it, spied or not, goes into
** that thread's cache, not on its list of other shards' blocks: the next
** Alloc of its class hands it out again. Tried in a thread of the second
** shard (this one holds the first, whose key is 0 in every encoding). */
static int own_same[2];

static void *own_again(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < 2; i++) {
    void *p = ALLOC(40), *q;
    FREE(p);
    q = ALLOC(40);
    own_same[i] = p != NULL && q == p;
    FREE(q);
    if (i == 0 && imalloc_CoRegisterMallocSpy(fake_pass_spy()) != S_OK) break;
  }
  return NULL;
}

static void test_own_block_again(void) {
  pthread_t t;
  FREE(ALLOC(40));  /* this thread's cache (shard 0) is set up */
  CHECK(pthread_create(&t, NULL, own_again, NULL) == 0 &&
        pthread_join(t, NULL) == 0);
  CHECK(own_same[0]);
  CHECK(own_same[1]);  /* spied */
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK);
}

int main(void) {
  if (!client_open()) return 1;
  sem_init(&to_worker, 0, 0);
  sem_init(&to_main, 0, 0);
  test_own_chunks();
  test_own_block_again();
  test_freed_back_to_owner();
  test_second_free_without_cache(16);
  test_second_free_without_cache(48);
  test_second_free_without_cache(65536);
  test_idle_thread_chunk_adopted();
  test_busy_chunk_left();
  test_idle_without_free_left();
  test_second_chunk_adopted();
  test_ended_free_blocks(0);
  test_ended_free_blocks(1);
  test_free_blocks_before_takeover();
  sem_destroy(&to_worker);
  sem_destroy(&to_main);
  return check_report();
}
