/*
** client.h: the C tests' view of the built-in allocator, called through
** its vtable as a COM client would (m is set by each test's main), its
** statistics, and a byte pattern to tell whether a block kept its bytes.
*/
#ifndef IMALLOC_TESTS_CLIENT_H
#define IMALLOC_TESTS_CLIENT_H

#include <stddef.h>

#include "taskalloc.h"

static IMalloc *m;

#define ALLOC(n) m->lpVtbl->Alloc(m, (n))
#define REALLOC(p, n) m->lpVtbl->Realloc(m, (p), (n))
#define FREE(p) m->lpVtbl->Free(m, (p))
#define GETSIZE(p) m->lpVtbl->GetSize(m, (p))
#define DIDALLOC(p) m->lpVtbl->DidAlloc(m, (p))

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

#endif
