/*
** taskalloc_platform.c: what the built-in allocator takes from the system
** it runs on, with the system's answers chosen by the test. This program
** defines sysconf (the page size is its argument: 16384 or 65536, those
** of arm64 kernels) and mmap, munmap and mremap (calling the C library's
** through dlsym), and checks
**
**   - that the allocator uses the page size the system gives: every
**     length it maps or unmaps is a whole number of those pages, and a
**     large block's mapping is rounded up to them, not to 4 KiB;
**   - that each anonymous mapping it asks for passes the descriptor -1,
**     which mmap(2) asks of portable programs (some systems refuse
**     another with EINVAL; Linux ignores it).
**
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _GNU_SOURCE  /* RTLD_NEXT, mremap */
#include "check.h"
#include "client.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static long page;                   /* the page size the test answers */
static _Atomic int maps;            /* anonymous mmaps */
static _Atomic int bad_fd;          /* ... with a descriptor other than -1 */
static _Atomic int odd_lengths;     /* lengths not a multiple of page */
static _Atomic size_t max_map_len;  /* the longest mmap since reset */

static int (*real_munmap)(void *, size_t);

static void *sym(const char *name) {
  void *f = dlsym(RTLD_NEXT, name);
  if (!f) abort();
  return f;
}

long sysconf(int name) {
  static long (*f)(int);
  if (name == _SC_PAGESIZE && page) return page;
  if (!f) *(void **)&f = sym("sysconf");
  return f(name);
}

static void note_length(size_t len) {
  if (page && len % (size_t)page != 0) {
    atomic_fetch_add(&odd_lengths, 1);
    printf("not whole pages: %zu bytes\n", len);
  }
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  static void *(*f)(void *, size_t, int, int, int, off_t);
  if (!f) *(void **)&f = sym("mmap");
  if (flags & MAP_ANONYMOUS) {
    atomic_fetch_add(&maps, 1);
    if (fd != -1) atomic_fetch_add(&bad_fd, 1);
  }
  note_length(len);
  {
    size_t was = atomic_load(&max_map_len);
    while (len > was &&
           !atomic_compare_exchange_weak(&max_map_len, &was, len)) {
    }
  }
  if (!addr && (flags & MAP_ANONYMOUS) && !(flags & MAP_FIXED)) {
    /* as a kernel with these pages: an address that is a multiple of
    ** them (mapped a page longer, the slack unmapped) */
    char *r = f(NULL, len + (size_t)page, prot, flags, fd, off), *a;
    if (r == MAP_FAILED) return r;
    if (!real_munmap) *(void **)&real_munmap = sym("munmap");
    a = (char *)(((uintptr_t)r + (size_t)page - 1) & ~((uintptr_t)page - 1));
    if (a > r) real_munmap(r, (size_t)(a - r));
    if (a + len < r + len + (size_t)page)
      real_munmap(a + len, (size_t)(r + (size_t)page - a));
    return a;
  }
  return f(addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len) {
  static int (*f)(void *, size_t);
  if (!f) *(void **)&f = sym("munmap");
  note_length(len);
  return f(addr, len);
}

void *mremap(void *old, size_t oldlen, size_t newlen, int flags, ...) {
  static void *(*f)(void *, size_t, size_t, int, ...);
  void *to = NULL;
  if (!f) *(void **)&f = sym("mremap");
  if (flags & MREMAP_FIXED) {
    va_list ap;
    va_start(ap, flags);
    to = va_arg(ap, void *);
    va_end(ap);
  }
  note_length(oldlen);
  note_length(newlen);
  return (flags & MREMAP_FIXED) ? f(old, oldlen, newlen, flags, to)
                                : f(old, oldlen, newlen, flags);
}

int main(int argc, char **argv) {
  static void *small[2000];
  void *big, *p;
  size_t i, n = 100000, want, big_map_len = 0;
  int large_first = argc > 2 && !strcmp(argv[2], "large-first");
  setvbuf(stdout, NULL, _IOLBF, 0);
  page = argc > 1 ? atol(argv[1]) : 0;
  if (page != 16384 && page != 65536) {
    printf("FAIL: give the page size, 16384 or 65536\n0 passed, 1 failed\n");
    return 1;
  }
  if (imalloc_CoGetMalloc(1, &m) != S_OK) {
    printf("FAIL: no allocator\n0 passed, 1 failed\n");
    return 1;
  }
  /* small blocks of several classes, a large block grown, shrunk, freed;
  ** with "large-first", the large block is the allocator's first call */
  if (large_first) {
    big = ALLOC(n);
    big_map_len = atomic_load(&max_map_len);
  }
  for (i = 0; i < sizeof small / sizeof small[0]; i++)
    small[i] = ALLOC(16 + (i % 64) * 48);
  if (!large_first) {
    atomic_store(&max_map_len, 0);
    big = ALLOC(n);  /* 100000 bytes: 25 pages of 4 KiB, not of 16 or 64 */
    big_map_len = atomic_load(&max_map_len);
  }
  /* a block above 64 KiB has its own mapping: the longest one made in its
  ** Alloc (the first call also maps a page for the thread's cache), made
  ** for it, holds a whole number of the system's pages (and a CHUNK_SIZE
  ** for its alignment, trimmed after) */
  want = (n + (size_t)page - 1) / (size_t)page * (size_t)page;
  CHECK(big != NULL && GETSIZE(big) == n);
  CHECK(big_map_len >= want && big_map_len % (size_t)page == 0);
  p = REALLOC(big, 3 * n);
  CHECK(p != NULL);
  if (p) big = p;
  p = REALLOC(big, n + 1);
  CHECK(p != NULL);
  if (p) big = p;
  FREE(big);
  for (i = 0; i < sizeof small / sizeof small[0]; i++) FREE(small[i]);
  m->lpVtbl->HeapMinimize(m);
  printf("page %ld: %d anonymous mmaps, %d with a descriptor other than -1, "
         "%d lengths not whole pages\n", page, atomic_load(&maps),
         atomic_load(&bad_fd), atomic_load(&odd_lengths));
  CHECK(atomic_load(&maps) > 0);
  CHECK(atomic_load(&bad_fd) == 0);
  CHECK(atomic_load(&odd_lengths) == 0);
  return check_report();
}
