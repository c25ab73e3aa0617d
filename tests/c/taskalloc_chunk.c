/*
** taskalloc_chunk.c: blocks of a size class go back to their chunk, and
** the class hands them out again before it takes more memory: also a
** block freed in a chunk that was full.
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#include "check.h"
#include "client.h"
#include "taskalloc/internal.h"  /* CHUNK_SIZE, BLOCKS_OFF */

#include <stdint.h>
#include <stdlib.h>

#define MiB ((size_t)1 << 20)

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

int main(void) {
  if (!client_open()) return 1;
  test_full_chunk_reused();
  return check_report();
}
