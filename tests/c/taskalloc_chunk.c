/*
** taskalloc_chunk.c: blocks of a size class go back to their chunk, and
** the class hands them out again before it takes more memory: also a
** block freed in a chunk that was full. Empty chunks in the pool: a class
** with none of its own there takes the one with the most pages.
**
**   taskalloc_chunk             those
**   taskalloc_chunk scan N      (with IMALLOC_RETAIN above N + 1 MiB) the
**                               pool looks at its N most recent chunks:
**                               a class's own chunk behind N - 1 more
**                               recent ones is taken, behind N it is not
**   taskalloc_chunk partial N   a thread's list of a class holds 11
**                               chunks with no free block; one freed in
**                               the chunk N behind its second is handed
**                               out next when N < 8 (the list's first 8
**                               after its first are looked at), else the
**                               first chunk carves a block
**
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _DEFAULT_SOURCE  /* PTHREAD_DESTRUCTOR_ITERATIONS (late_thread.h) */
#include "check.h"
#include "client.h"
#include "late_thread.h"
#include "taskalloc/internal.h"  /* CHUNK_SIZE, BLOCKS_OFF */

#include <stdint.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

#define MiB ((size_t)1 << 20)
#define CHUNK(p) ((uintptr_t)(p) & ~(MiB - 1))

enum { N = 100, SIZE = 65536 };

/* A class fills its chunks one after the other: of N blocks of 64 KiB
** (6.4 MiB, in one thread, no other user of the class), every chunk but
** the last is full, with as many blocks as fit after the header and the
** slots (BLOCKS_OFF). The first block, freed and given back to its class
** (HeapMinimize flushes this thread's cache), is among the next blocks
** of that size, before any new chunk. */
static void test_full_chunk_reused(void) {
  static void *p[N], *q[N];
  void *first;
  int i, found = 0, ok = 1, in_first = 0;
  for (i = 0; i < N; i++)
    if (!(p[i] = ALLOC(SIZE))) ok = 0;
  CHECK(ok);
  if (!ok) return;
  CHECK(((uintptr_t)p[N - 1] & ~(MiB - 1)) != ((uintptr_t)p[0] & ~(MiB - 1)));
  for (i = 0; i < N; i++)
    if (((uintptr_t)p[i] & ~(MiB - 1)) == ((uintptr_t)p[0] & ~(MiB - 1)))
      in_first++;
  CHECK(in_first == (int)((CHUNK_SIZE - BLOCKS_OFF) / SIZE));
  first = p[0];
  FREE(first);
  m->lpVtbl->HeapMinimize(m);
  for (i = 0; i < N; i++) {
    q[i] = ALLOC(SIZE);
    if (q[i] == first) found = 1;
  }
  CHECK(found);
  for (i = 0; i < N; i++) {
    FREE(q[i]);
    if (i > 0) FREE(p[i]);
  }
  CHECK(live_blocks() == 0);
}

static void run_thread(void *(*fn)(void *)) {
  pthread_t t;
  int ok = pthread_create(&t, NULL, fn, NULL) == 0;
  CHECK(ok);
  if (ok) pthread_join(t, NULL);
}

/* ---- the chunk with the most pages -------------------------------------- */

enum { FEW = 60000, MANY = 4000, NMANY = 100, OTHER = 2000, THIRD = 3000 };
static uintptr_t few_chunk, many_chunk, other_chunk;
static size_t other_size;

/* One block of 60000 bytes and NMANY of 4000, all freed: at the thread's
** exit its cache goes back, the 4000-byte class first, so the pool holds
** the 60000-byte class's chunk (64 KiB handed out) first and the 4000-byte
** one's (about 400 KiB) after it. */
static void *few_and_many(void *arg) {
  static void *p[NMANY];
  void *q = ALLOC(FEW);
  int i;
  (void)arg;
  for (i = 0; i < NMANY; i++) p[i] = ALLOC(MANY);
  few_chunk = CHUNK(q);
  many_chunk = CHUNK(p[0]);
  FREE(q);
  for (i = 0; i < NMANY; i++) FREE(p[i]);
  return NULL;
}

static void *other_class(void *arg) {
  void *p = ALLOC(other_size);
  (void)arg;
  other_chunk = CHUNK(p);
  FREE(p);
  return NULL;
}

/* The first test of the process: the pool was empty. A class with no
** chunk there takes the 4000-byte class's, behind the other; one block
** of it handed out and given back, it still has the most pages: the next
** class takes it too. */
static void test_most_pages(void) {
  run_thread(few_and_many);
  CHECK(few_chunk != many_chunk);
  other_size = OTHER;
  run_thread(other_class);
  CHECK(other_chunk == many_chunk);
  other_size = THIRD;
  run_thread(other_class);
  CHECK(other_chunk == many_chunk);
}

/* ---- how far the pool looks --------------------------------------------- */

enum { MAXCHUNKS = 80, PER = 16 };
static void *own_block, *scan_blocks[MAXCHUNKS * PER];
static int scan_n;
static uintptr_t own_chunk, scan_got;

/* Without a cache (its thread ended), so each Free goes to its chunk at
** once: the class's own chunk empties first, then the scan_n others (64
** KiB blocks, their chunks full), each to the pool's front. Then a block
** of the class: from its own chunk if the pool looked that far, else from
** the one with the most pages among those it looked at, the most recent
** of them when they have as many. */
static void scan_late(void) {
  int i;
  void *p;
  FREE(own_block);
  for (i = 0; i < scan_n; i++) FREE(scan_blocks[i]);
  p = ALLOC(16000);
  scan_got = CHUNK(p);
  FREE(p);
}

static void test_scan(int before) {
  uintptr_t last = 0;
  int chunks = 0;
  own_block = ALLOC(16000);
  own_chunk = CHUNK(own_block);
  scan_n = 0;
  while (scan_n < MAXCHUNKS * PER) {
    void *p = ALLOC(65536);
    if (!p) {
      CHECK(p != NULL);
      return;
    }
    if (CHUNK(p) != last && ++chunks > before) {
      FREE(p);
      break;
    }
    last = CHUNK(p);
    scan_blocks[scan_n++] = p;
  }
  CHECK(chunks == before + 1);
  m->lpVtbl->HeapMinimize(m);  /* this thread's cache flushed (none empty) */
  CHECK(late_thread_run(scan_late));
  printf("# the class's chunk behind %d more recent ones: %s\n", before,
         scan_got == own_chunk ? "taken" : "not taken");
  CHECK((scan_got == own_chunk) == (before < 64));
  /* else, of chunks with as many pages (all full), the most recent */
  if (before >= 64) CHECK(scan_got == CHUNK(scan_blocks[scan_n - 1]));
  /* the pool's before + 1 chunks given back at once, by rounds of 64 */
  m->lpVtbl->HeapMinimize(m);
  CHECK(stats().live_blocks == 0);
}

/* ---- how far a list is looked at for free blocks ----------------------- */

enum { NTHR = 11, NTAKE = 2 * (NTHR - 1) - 1, PSIZE = 16000 };
/* (16000 bytes: a batch of 1 block, a bin of 2) */
static sem_t go[NTHR], ready;
static void *one_block[NTHR];
static void *taker_blocks[NTAKE + 1];
static int ntaken;
static void *freed_block;

/* Threads started one after the other, so with shards in that order: each
** takes one block, in a chunk of its own (the others' are their threads'
** at work), and ends when told: their chunks keep a block each, carved
** from no further, with no free block. */
static void *one_and_wait(void *arg) {
  int i = (int)(intptr_t)arg;
  one_block[i] = ALLOC(PSIZE);
  sem_post(&ready);
  sem_wait(&go[i]);
  return NULL;
}

/* Takes the lowest shard again (the first thread's) with its chunk; each of
** its refills finds the other ended threads' chunks without a free block
** and takes one over (the lowest shard first), to its list's front: 10
** refills (19 blocks: refills of 1, then 2, one kept for the next Alloc),
** and the list is the 10 taken over, newest first, then its own. Then it
** waits while a block is freed in one of them, and takes one more block:
** its cache is empty, so a refill. */
static void *taker(void *arg) {
  (void)arg;
  for (ntaken = 0; ntaken < NTAKE; ntaken++)
    taker_blocks[ntaken] = ALLOC(PSIZE);
  sem_post(&ready);
  sem_wait(&go[0]);
  taker_blocks[ntaken++] = ALLOC(PSIZE);
  return NULL;
}

/* In an ending thread with no cache: straight back to its chunk, which
** stays where it is in the list. */
static void free_one(void) { FREE(freed_block); }

static void test_partial_scan(int behind) {
  pthread_t t[NTHR], tk;
  int i, ok = 1;
  sem_init(&ready, 0, 0);
  for (i = 0; i < NTHR; i++) sem_init(&go[i], 0, 0);
  for (i = 0; i < NTHR && ok; i++) {
    ok = pthread_create(&t[i], NULL, one_and_wait, (void *)(intptr_t)i) == 0;
    if (ok) sem_wait(&ready);
  }
  CHECK(ok);
  if (!ok) return;
  for (i = 0; i < NTHR; i++) {
    CHECK(one_block[i] != NULL);
    sem_post(&go[i]);
    pthread_join(t[i], NULL);
  }
  CHECK(pthread_create(&tk, NULL, taker, NULL) == 0);
  sem_wait(&ready);
  /* list: thread 10's chunk, 9's, ..., 1's, then 0's (the taker's own);
  ** `behind` the second: thread 9 - behind's (which keeps blocks of the
  ** taker: it stays on the list) */
  freed_block = one_block[NTHR - 2 - behind];
  CHECK(late_thread_run(free_one));
  sem_post(&go[0]);
  pthread_join(tk, NULL);
  printf("# a block freed %d chunks behind the second: %s\n", behind,
         taker_blocks[NTAKE] == freed_block ? "taken" : "not taken");
  CHECK((taker_blocks[NTAKE] == freed_block) == (behind < 8));
  if (behind >= 8)  /* carved from the first chunk */
    CHECK(CHUNK(taker_blocks[NTAKE]) == CHUNK(one_block[NTHR - 1]));
  for (i = 0; i < ntaken; i++) FREE(taker_blocks[i]);
  for (i = 0; i < NTHR; i++)
    if (one_block[i] != freed_block) FREE(one_block[i]);
  CHECK(live_blocks() == 0);
}

int main(int argc, char **argv) {
  if (!client_open()) return 1;
  if (argc == 3 && strcmp(argv[1], "partial") == 0) {
    test_partial_scan(atoi(argv[2]));
    return check_report();
  }
  if (argc == 3 && strcmp(argv[1], "scan") == 0) {
    test_scan(atoi(argv[2]));
    return check_report();
  }
  test_most_pages();
  test_full_chunk_reused();
  return check_report();
}
