/*
** malloc_shim.c: the C library's malloc family over the built-in task
** allocator (src/taskalloc/), for LD_PRELOAD: a program that was never
** written for imalloc runs on it unchanged, so the allocator can be put
** through other people's benchmarks (bench/peer-suite). Built as
** bench/libimalloc_malloc.so; not part of the module.
**
** Every call goes through the public interface (imalloc_CoTaskMem* and the
** IMalloc's GetSize), spy check and all: what is measured is what a COM
** caller gets.
**
** What differs from glibc's malloc:
**  - malloc_usable_size is the size requested (GetSize is exact);
**  - free, realloc and malloc_usable_size of a pointer that is not a live
**    block of ours are ignored (NULL, 0), as CoTaskMemFree promises;
**  - alignments above 16: up to 64 from the small classes whose blocks are
**    multiples of 64, up to 1 MiB from a block above 64 KiB (those start on
**    1 MiB), above that ENOMEM.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "taskalloc.h"

#define SHIM_EXPORT __attribute__((visibility("default")))
#define SMALL_MAX 65536u         /* the allocator's largest small block */
#define LARGE_ALIGN ((size_t)1 << 20)

static IMalloc *task(void) {
  static IMalloc *m;  /* the singleton: the same answer from every thread */
  IMalloc *p = __atomic_load_n(&m, __ATOMIC_RELAXED);
  if (!p) {
    imalloc_CoGetMalloc(1, &p);
    __atomic_store_n(&m, p, __ATOMIC_RELAXED);
  }
  return p;
}

/* The allocator sets errno to ENOMEM when it returns NULL (its own
** size limit, or the system's refusal), as malloc must: a tail call. */
SHIM_EXPORT void *malloc(size_t n) {
  return imalloc_CoTaskMemAlloc(n);
}

SHIM_EXPORT void free(void *p) {
  imalloc_CoTaskMemFree(p);
}

SHIM_EXPORT void *calloc(size_t k, size_t n) {
  size_t total;
  void *p;
  if (__builtin_mul_overflow(k, n, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  /* Not malloc(): gcc would make malloc + memset a call to calloc. */
  p = imalloc_CoTaskMemAlloc(total);
  if (!p) {
    errno = ENOMEM;
    return NULL;
  }
  return memset(p, 0, total);
}

/* As glibc: realloc(p, 0) frees p and returns NULL. */
SHIM_EXPORT void *realloc(void *p, size_t n) {
  void *q = imalloc_CoTaskMemRealloc(p, n);
  if (!q && n) errno = ENOMEM;
  return q;
}

SHIM_EXPORT void *reallocarray(void *p, size_t k, size_t n) {
  size_t total;
  if (__builtin_mul_overflow(k, n, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, total);
}

SHIM_EXPORT size_t malloc_usable_size(void *p) {
  SIZE_T n;
  if (!p) return 0;
  n = task()->lpVtbl->GetSize(task(), p);
  return n == (SIZE_T)-1 ? 0 : (size_t)n;
}

/* A block of n bytes aligned to a (a power of two), or NULL. */
static void *aligned(size_t a, size_t n) {
  void *p;
  if (a <= 16) return malloc(n);
  if (a <= 64 && n <= SMALL_MAX / 2) {
    /* The classes of 64 and 128 bytes, and every class from 256 up, have
    ** blocks that are multiples of 64, laid out from a 64-aligned offset of
    ** a 1 MiB-aligned chunk. Checked all the same: a block that is not
    ** aligned is given back and the large path taken. */
    size_t m = n <= 64 ? 64 : n <= 128 ? 128 : n <= 256 ? 256 : n;
    p = malloc(m);
    if (!p || ((uintptr_t)p & (a - 1)) == 0) return p;
    free(p);
  }
  if (a > LARGE_ALIGN) {
    errno = ENOMEM;
    return NULL;
  }
  p = malloc(n > SMALL_MAX ? n : SMALL_MAX + 1);
  if (p && ((uintptr_t)p & (a - 1)) != 0) {  /* not what large.c promises */
    free(p);
    errno = ENOMEM;
    return NULL;
  }
  return p;
}

static int power_of_two(size_t a) { return a && !(a & (a - 1)); }

SHIM_EXPORT int posix_memalign(void **out, size_t a, size_t n) {
  void *p;
  if (!power_of_two(a) || a % sizeof(void *)) return EINVAL;
  p = aligned(a, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

SHIM_EXPORT void *aligned_alloc(size_t a, size_t n) {
  if (!power_of_two(a)) {
    errno = EINVAL;
    return NULL;
  }
  return aligned(a, n);
}

SHIM_EXPORT void *memalign(size_t a, size_t n) {
  if (!power_of_two(a)) {
    errno = EINVAL;
    return NULL;
  }
  return aligned(a, n);
}

SHIM_EXPORT void *valloc(size_t n) { return aligned(4096, n); }

SHIM_EXPORT void *pvalloc(size_t n) {
  return aligned(4096, (n + 4095) & ~(size_t)4095);
}
