/*
** taskalloc_retain.c: IMALLOC_RETAIN, as the allocator reads it from the
** environment, bounds the freed large mappings it keeps.
**
**   IMALLOC_RETAIN=<value> taskalloc_retain BYTES
**
** BYTES is what the value means (the default, 32 MiB, for a malformed
** one). A freed large block whose mapping fits in BYTES stays mapped for
** reuse, and so do two that fill BYTES exactly; one larger than BYTES,
** even by one page, is unmapped at once (mapped_bytes).
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#include "check.h"
#include "client.h"

#include <stdlib.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

/* mapped_bytes given back by freeing a new block of n bytes. */
static size_t unmapped_by_free(size_t n) {
  size_t before;
  void *p = ALLOC(n);
  if (!p) return (size_t)-1;
  before = stats().mapped_bytes;
  FREE(p);
  return before - stats().mapped_bytes;
}

int main(int argc, char **argv) {
  size_t retain, big, fits;
  if (argc != 2 || imalloc_CoGetMalloc(1, &m) != S_OK) {
    printf("usage: IMALLOC_RETAIN=<value> taskalloc_retain BYTES\n");
    return 2;
  }
  retain = (size_t)strtoull(argv[1], NULL, 10);
  /* first, the cache empty: two blocks of half the bound that fill it
  ** exactly, freed: both kept (address space only: no page is touched) */
  if (retain >= 256 * 1024) {
    size_t half = retain / 2;
    void *a = ALLOC(half), *b = ALLOC(half);
    size_t before = stats().mapped_bytes;
    CHECK(a && b);
    FREE(a);
    FREE(b);
    CHECK(stats().mapped_bytes == before);
    m->lpVtbl->HeapMinimize(m);
    CHECK(stats().mapped_bytes == before - 2 * half);
  }
  /* one page more than the bound (a large block): unmapped, all of it */
  if (retain >= 64 * 1024) {
    size_t over = retain + (size_t)sysconf(_SC_PAGESIZE);
    CHECK(unmapped_by_free(over) == over);
  }
  /* too large to keep: unmapped, all of it */
  big = ((retain / MiB) + 2) * MiB;  /* whole pages, more than retain */
  CHECK(unmapped_by_free(big) == big);
  /* a large block (above 64 KiB) that fits: kept */
  if (retain >= 128 * 1024) {
    fits = retain < 64 * MiB ? retain : 64 * MiB;
    CHECK(unmapped_by_free(fits) == 0);
  }
  printf("IMALLOC_RETAIN=%s: %s bytes\n",
         getenv("IMALLOC_RETAIN") ? getenv("IMALLOC_RETAIN") : "(unset)",
         argv[1]);
  return check_report();
}
