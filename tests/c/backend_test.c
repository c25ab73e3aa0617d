/*
** backend_test.c: the POSIX backend's contract (src/backend.h), called
** directly: imalloc.wrap's guard imalloc_backend_isinterface, for objects
** a script could hand it by mistake, and the allocator it hands out.
** With the argument "pipe" (backend_test_pipe: process_vm_readv fails, as
** under seccomp or qemu-user), the same through the pipe the backend falls
** back to, and the answer when no file descriptor is left for one;
** without it, that process_vm_readv needs no descriptor. This program
** defines dladdr (calling the C library's), to count the lookups that a
** vtable found good spares.
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _GNU_SOURCE  /* MAP_ANONYMOUS, RTLD_NEXT, Dl_info */
#include "check.h"
#include "backend.h"
#include "taskalloc.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

typedef void (*slot_fn)(void);

static void slot(void) {}

/* An object laid out as COM's: a pointer to a table of 16 entries. */
struct object {
  const slot_fn *vtbl;
};

static int dladdr_calls;

int dladdr(const void *addr, Dl_info *info) {
  static int (*real)(const void *, Dl_info *);
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "dladdr");
  dladdr_calls++;
  return real(addr, info);
}

static void test_isinterface(void) {
  static slot_fn code[16], with_null[16], with_heap[16];
  struct object good = {code}, null_vtbl = {NULL}, holed = {with_null},
                heaped = {with_heap};
  void *heap = malloc(64);
  struct object *gone;
  int i;
  for (i = 0; i < 16; i++) code[i] = with_null[i] = with_heap[i] = slot;
  with_null[15] = NULL;
  with_heap[0] = (slot_fn)(uintptr_t)heap;  /* data, not code */

  /* The numbers of slots a caller may ask about: 1 to 16. */
  CHECK(imalloc_backend_isinterface(&good, 0) == 0);
  CHECK(imalloc_backend_isinterface(&good, -1) == 0);
  CHECK(imalloc_backend_isinterface(&good, 17) == 0);
  CHECK(imalloc_backend_isinterface(&good, 1) == 1);
  CHECK(imalloc_backend_isinterface(&good, 16) == 1);

  /* Every slot asked about is checked, the last one too (before the
  ** vtable passes once: then it is remembered as good). */
  CHECK(imalloc_backend_isinterface(&holed, 16) == 0);
  CHECK(imalloc_backend_isinterface(&holed, 15) == 1);
  CHECK(imalloc_backend_isinterface(&heaped, 9) == 0);
  CHECK(imalloc_backend_isinterface(&null_vtbl, 9) == 0);

  /* Unreadable memory is refused without being touched. */
  gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
              -1, 0);
  CHECK(gone != MAP_FAILED);
  if (gone != MAP_FAILED) {
    gone->vtbl = code;
    CHECK(imalloc_backend_isinterface(gone, 9) == 1);
    munmap(gone, 4096);
    CHECK(imalloc_backend_isinterface(gone, 9) == 0);
  }
  /* a readable object whose vtable pointer leads nowhere */
  {
    struct object wild = {(const slot_fn *)(uintptr_t)16};
    CHECK(imalloc_backend_isinterface(&wild, 9) == 0);
  }
  /* After a good vtable was seen (and remembered), others are still
  ** checked in full. */
  CHECK(imalloc_backend_isinterface(&good, 9) == 1);
  CHECK(imalloc_backend_isinterface(&heaped, 9) == 0);
  CHECK(imalloc_backend_isinterface(&null_vtbl, 9) == 0);
  CHECK(imalloc_backend_isinterface(&good, 9) == 1);
  free(heap);

  /* The vtable last found good is known by its address: its slots are
  ** read but not looked up again; another vtable's are. */
  dladdr_calls = 0;
  CHECK(imalloc_backend_isinterface(&good, 9) == 1);
  CHECK(dladdr_calls == 0);
  CHECK(imalloc_backend_isinterface(&holed, 9) == 1);
  CHECK(dladdr_calls == 9);
}

static void test_allocator(void) {
  IMalloc *m = NULL;
  CHECK(imalloc_backend_getmalloc(1, &m) == S_OK && m != NULL);
  CHECK(imalloc_backend_isinterface(m, 9) == 1);
  CHECK(imalloc_backend_getmalloc(0, &m) == E_INVALIDARG && m == NULL);
  CHECK(strcmp(imalloc_backend_name, "builtin") == 0);
  CHECK(imalloc_backend_revokespy() == CO_E_OBJNOTREG);
}

/* No descriptor left for the pipe: memory that cannot be read is not an
** interface. Since process_vm_readv needs no descriptor, this also shows
** that the pipe is the way memory is read here. */
static void test_no_pipe(void) {
  static slot_fn code[16];
  struct object good = {code};
  struct rlimit old, none;
  int i;
  for (i = 0; i < 16; i++) code[i] = slot;
  CHECK(imalloc_backend_isinterface(&good, 9) == 1);
  CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
  none = old;
  none.rlim_cur = 0;
  CHECK(setrlimit(RLIMIT_NOFILE, &none) == 0);
  CHECK(imalloc_backend_isinterface(&good, 9) == 0);
  CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
  CHECK(imalloc_backend_isinterface(&good, 9) == 1);
}

/* With process_vm_readv, no descriptor is needed: wrap works in a process
** that has none left, and still refuses what cannot be read. */
static void test_no_descriptor_needed(void) {
  static slot_fn code[16];
  struct object good = {code};
  struct rlimit old, none;
  int i;
  for (i = 0; i < 16; i++) code[i] = slot;
  CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
  none = old;
  none.rlim_cur = 0;
  CHECK(setrlimit(RLIMIT_NOFILE, &none) == 0);
  CHECK(imalloc_backend_isinterface(&good, 9) == 1);
  CHECK(imalloc_backend_isinterface((void *)(uintptr_t)16, 9) == 0);
  CHECK(imalloc_backend_isinterface(&good, 9) == 1);
  CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
}

int main(int argc, char **argv) {
  test_isinterface();
  test_allocator();
  if (argc > 1 && strcmp(argv[1], "pipe") == 0)
    test_no_pipe();
  else
    test_no_descriptor_needed();
  return check_report();
}
