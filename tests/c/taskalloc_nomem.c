/*
** taskalloc_nomem.c: the built-in allocator when the system refuses
** memory. This program defines mmap and mremap itself (calling the C
** library's through dlsym), so that from the Nth call on, each fails with
** ENOMEM; for every N up to the number of calls a workload makes, the
** workload runs again: each Alloc or Realloc either succeeds or returns
** NULL (a failed Realloc keeps its block and bytes; a failed Alloc sets
** errno to ENOMEM, as malloc, though mmap failed with EAGAIN), every
** block handed out is usable and answers DidAlloc and GetSize, and once the system
** gives memory again, everything is freed and counted back.
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _GNU_SOURCE  /* RTLD_NEXT, mremap */
#include "check.h"
#include "client.h"
#include "interpose.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MiB ((size_t)1 << 20)

/* ---- a system that runs out of memory on demand ------------------------ */

static long calls;        /* mmap and mremap calls since armed */
static long fail_from = -1; /* the first call that fails; -1: none */

static int refuse(void) {
  if (fail_from < 0) return 0;
  return calls++ >= fail_from;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  static void *(*real)(void *, size_t, int, int, int, off_t);
  INTERPOSE_NEXT(real, "mmap");
  if (refuse()) {
    errno = EAGAIN;  /* not ENOMEM: the allocator must say ENOMEM itself */
    return MAP_FAILED;
  }
  return real(addr, len, prot, flags, fd, off);
}

void *mremap(void *old, size_t oldlen, size_t newlen, int flags, ...) {
  static mremap_fn real;
  void *to;
  INTERPOSE_NEXT(real, "mremap");
  MREMAP_TARGET(flags, to);
  if (refuse()) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  return interpose_mremap(real, old, oldlen, newlen, flags, to);
}

/* ---- the workload ------------------------------------------------------- */

enum { NB = 96 };
static unsigned char *blocks[NB];
static size_t sizes[NB];

static int valid(unsigned char *p, size_t n) {
  return DIDALLOC(p) == 1 && GETSIZE(p) == n && p[0] == (unsigned char)n &&
         p[n - 1] == (unsigned char)(n >> 3);
}

static void mark(unsigned char *p, size_t n) {
  p[0] = (unsigned char)n;
  p[n - 1] = (unsigned char)(n >> 3);
}

/* Allocates and grows blocks of every kind: many of the largest small
** class (new chunks), large blocks (their own mappings, table entries),
** Realloc growing them past their mapping. Returns 0 if a result was
** wrong; NULLs are allowed. */
static int workload(void) {
  int i, ok = 1;
  for (i = 0; i < NB; i++) {
    size_t n = i < 64 ? 60000 + (size_t)i
               : i < 80 ? MiB + (size_t)i * 4096
               : (size_t)(i - 79) * 3 * MiB + 1;
    unsigned char *p;
    errno = 0;
    p = ALLOC(n);
    blocks[i] = p;
    sizes[i] = n;
    if (p) {
      mark(p, n);
      if (!valid(p, n)) ok = 0;
    } else if (errno != ENOMEM) {
      ok = 0;
    }
  }
  for (i = 60; i < NB; i += 3) {  /* grow: in place, moved or refused */
    size_t n;
    unsigned char *q;
    if (!blocks[i]) continue;
    n = sizes[i] * 2 + 4096;
    q = REALLOC(blocks[i], n);
    if (q) {
      if (q[0] != (unsigned char)sizes[i]) ok = 0;
      blocks[i] = q;
      sizes[i] = n;
      mark(q, n);
    }
    if (!valid(blocks[i], sizes[i])) ok = 0;
  }
  for (i = 0; i < NB; i++)
    if (blocks[i] && !valid(blocks[i], sizes[i])) ok = 0;
  return ok;
}

static void free_all(void) {
  int i;
  for (i = 0; i < NB; i++) {
    FREE(blocks[i]);
    blocks[i] = NULL;
  }
}

int main(void) {
  struct imalloc_taskstats st0, st1;
  long n, total;
  int results_ok = 1, counts_ok = 1, refused = 0;
  setenv("IMALLOC_RETAIN", "0", 1);  /* every large block maps anew */
  if (!client_open()) return 1;
  /* The first small block, when the system gives no chunk: the workload's
  ** refusals come later, when HeapMinimize has left its chunks to reuse. */
  fail_from = 0;
  errno = 0;
  CHECK(ALLOC(100) == NULL && errno == ENOMEM);
  fail_from = -1;
  imalloc_taskalloc_stats(&st0);

  /* How many calls the workload makes when nothing fails. */
  calls = 0;
  fail_from = 1L << 40;
  CHECK(workload());
  total = calls;
  fail_from = -1;
  free_all();
  m->lpVtbl->HeapMinimize(m);
  CHECK(total > 10);

  for (n = 0; n <= total; n++) {
    calls = 0;
    fail_from = n;
    if (!workload()) {
      if (results_ok) printf("failing from call %ld: a wrong result\n", n);
      results_ok = 0;
    }
    fail_from = -1;
    refused += calls > n;
    free_all();
    m->lpVtbl->HeapMinimize(m);
    imalloc_taskalloc_stats(&st1);
    if (st1.live_blocks != st0.live_blocks || st1.live_bytes != st0.live_bytes) {
      if (counts_ok) printf("failing from call %ld: %zu blocks left\n", n,
                            st1.live_blocks - st0.live_blocks);
      counts_ok = 0;
    }
  }
  printf("%ld system calls per run; %d runs with calls refused\n", total,
         refused);
  CHECK(results_ok);
  CHECK(counts_ok);
  CHECK(refused > 0);
  /* and memory once more as usual */
  CHECK(workload());
  free_all();
  return check_report();
}
