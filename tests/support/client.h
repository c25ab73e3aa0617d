/*
** client.h: the C tests' view of the built-in allocator, called through
** its vtable as a COM client would (m is set by each test's main), its
** statistics, and a byte pattern to tell whether a block kept its bytes.
** client_open() starts each test's main.
*/
#ifndef IMALLOC_TESTS_CLIENT_H
#define IMALLOC_TESTS_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "taskalloc.h"

static IMalloc *m;

#define ALLOC(n) m->lpVtbl->Alloc(m, (n))
#define REALLOC(p, n) m->lpVtbl->Realloc(m, (p), (n))
#define FREE(p) m->lpVtbl->Free(m, (p))
#define GETSIZE(p) m->lpVtbl->GetSize(m, (p))
#define DIDALLOC(p) m->lpVtbl->DidAlloc(m, (p))

/* stdout line-buffered (a crash loses no line printed before it), and the
** allocator in m; without one, a failure and the tally's line "0 passed,
** 1 failed" are printed and 0 is returned: main returns 1 then. */
static inline int client_open(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (imalloc_CoGetMalloc(1, &m) != S_OK || !m) {
    printf("FAIL: no allocator\n0 passed, 1 failed\n");
    return 0;
  }
  return 1;
}

static inline struct imalloc_taskstats stats(void) {
  struct imalloc_taskstats st;
  imalloc_taskalloc_stats(&st);
  return st;
}

static inline size_t live_blocks(void) { return stats().live_blocks; }

static inline void fill(unsigned char *p, size_t n, unsigned seed) {
  size_t i;
  for (i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 7);
}

static inline int is_pattern(const unsigned char *p, size_t n, unsigned seed) {
  size_t i;
  for (i = 0; i < n; i++)
    if (p[i] != (unsigned char)(seed + i * 7)) return 0;
  return 1;
}

/* Addresses that are not the start of a live block: inside a small and a
** large block, just past them, in a chunk's header, a freed block, and
** addresses the allocator never maps (one of them in the first MiB, where
** no chunk lies: a chunk there would have a block at it). Each query answers "not ours" and
** Free and Realloc leave them alone, through the vtable and through
** CoTaskMem*; returns 1 if so. */
static inline int refuses_foreign(void) {
  unsigned char *small = (unsigned char *)ALLOC(48);
  unsigned char *large = (unsigned char *)ALLOC(((size_t)3 << 20) + 5);
  unsigned char *freed = (unsigned char *)ALLOC(48);
  unsigned char *chunk = (unsigned char *)((uintptr_t)small &
                                           ~(((uintptr_t)1 << 20) - 1));
  unsigned char local;
  void *addr[13];
  size_t i, n = 0;
  int ok = small && large && freed;
  if (!ok) return 0;
  FREE(freed);
  addr[n++] = small + 16;
  addr[n++] = small + 48;
  addr[n++] = large + 16;
  addr[n++] = large + ((size_t)1 << 20);
  addr[n++] = large + ((size_t)2 << 20) + 64;
  addr[n++] = chunk + 16;
  addr[n++] = freed;
  addr[n++] = &local;
  addr[n++] = (void *)(uintptr_t)1;
  addr[n++] = (void *)((uintptr_t)1 << 18);
  addr[n++] = (void *)((uintptr_t)1 << 47);
  addr[n++] = (void *)((uintptr_t)1 << 60);
  addr[n++] = (void *)~(uintptr_t)0xF;
  for (i = 0; i < n; i++) {
    if (DIDALLOC(addr[i]) != 0 || GETSIZE(addr[i]) != (SIZE_T)-1) ok = 0;
    if (REALLOC(addr[i], 10) != NULL) ok = 0;
    if (imalloc_CoTaskMemRealloc(addr[i], 1 << 21) != NULL) ok = 0;
    FREE(addr[i]);
    imalloc_CoTaskMemFree(addr[i]);
  }
  if (GETSIZE(small) != 48 || GETSIZE(large) != ((size_t)3 << 20) + 5)
    ok = 0;
  FREE(small);
  FREE(large);
  return ok;
}

#endif
