/*
** interpose.h: for the tests that define a function of the C library
** themselves (mmap, munmap, mremap, pthread_mutex_lock, dl_iterate_phdr...)
** so as to count or refuse what the code under test asks of it: the C
** library's own, found once, and mremap's optional argument. A test that
** includes it defines _GNU_SOURCE first (RTLD_NEXT, mremap).
*/
#ifndef IMALLOC_TESTS_INTERPOSE_H
#define IMALLOC_TESTS_INTERPOSE_H

#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/mman.h>

/* The C library's NAME into the function pointer FN, when FN is NULL
** (a static of the defining function). */
#define INTERPOSE_NEXT(fn, name) \
  do { \
    if (!(fn)) *(void **)&(fn) = dlsym(RTLD_NEXT, (name)); \
  } while (0)

/* In a test's `void *mremap(void *old, size_t oldlen, size_t newlen,
** int flags, ...)`: its fifth argument, the target, into TO when FLAGS has
** MREMAP_FIXED, else NULL. */
#define MREMAP_TARGET(flags, to) \
  do { \
    va_list mremap_ap_; \
    (to) = NULL; \
    if ((flags) & MREMAP_FIXED) { \
      va_start(mremap_ap_, flags); \
      (to) = va_arg(mremap_ap_, void *); \
      va_end(mremap_ap_); \
    } \
  } while (0)

typedef void *(*mremap_fn)(void *, size_t, size_t, int, ...);

/* The C library's mremap with the arguments the test's was given. */
static inline void *interpose_mremap(mremap_fn real, void *old, size_t oldlen,
                                     size_t newlen, int flags, void *to) {
  return (flags & MREMAP_FIXED) ? real(old, oldlen, newlen, flags, to)
                                : real(old, oldlen, newlen, flags);
}

#endif
