/*
** backend_posix.c: the built-in task allocator (src/taskalloc/).
**
** The allocator's state, thread caches and their destructors live in this
** shared object, and blocks it hands out may outlive every Lua state. Lua
** unloads C modules in lua_close, so the module pins itself in memory the
** first time it is asked for the allocator.
*/
#define _GNU_SOURCE  /* dladdr, RTLD_NODELETE */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/uio.h>
#endif

#include "backend.h"
#include "taskalloc.h"

const char imalloc_backend_name[] = "builtin";

static pthread_once_t pin_once = PTHREAD_ONCE_INIT;

static void pin_module(void) {
  Dl_info info;
  /* Any address inside this object names it; a data one keeps -pedantic
  ** quiet about function-to-object pointer casts. */
  if (dladdr(imalloc_backend_name, &info) && info.dli_fname) {
    /* A second reference with RTLD_NODELETE: dlclose never unmaps us.
    ** Deliberately not closed. */
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  }
}

HRESULT imalloc_backend_getmalloc(DWORD context, IMalloc **out) {
  pthread_once(&pin_once, pin_module);
  return imalloc_CoGetMalloc(context, out);
}

HRESULT imalloc_backend_registerspy(IMallocSpy *spy) {
  pthread_once(&pin_once, pin_module);  /* the spy's code must stay too */
  return imalloc_CoRegisterMallocSpy(spy);
}

HRESULT imalloc_backend_revokespy(void) {
  return imalloc_CoRevokeMallocSpy();
}

/* Copies n bytes from `addr` without faulting, through a pipe: write()
** reads the bytes in the kernel, which answers EFAULT for an unmapped
** address instead of faulting. */
static int readmem_pipe(const void *addr, void *out, size_t n) {
  int fds[2], ok;
  if (pipe(fds) != 0) return 0;
  ok = write(fds[1], addr, n) == (ssize_t)n && read(fds[0], out, n) == (ssize_t)n;
  close(fds[0]);
  close(fds[1]);
  return ok;
}

#ifdef __linux__
/* Set once process_vm_readv is found unavailable: forbidden by a seccomp
** profile (EPERM), or not implemented, as under qemu-user (ENOSYS). */
static atomic_int no_vm_readv;

/* The same with one system call, where the kernel allows it. */
static int readmem(const void *addr, void *out, size_t n) {
  struct iovec local, remote;
  ssize_t got;
  if (atomic_load_explicit(&no_vm_readv, memory_order_relaxed))
    return readmem_pipe(addr, out, n);
  local.iov_base = out;
  local.iov_len = n;
  remote.iov_base = (void *)(uintptr_t)addr;
  remote.iov_len = n;
  got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  if (got < 0 && (errno == ENOSYS || errno == EPERM)) {
    atomic_store_explicit(&no_vm_readv, 1, memory_order_relaxed);
    return readmem_pipe(addr, out, n);
  }
  return got == (ssize_t)n;
}
#else
#define readmem readmem_pipe
#endif

/* The last vtable found good: wrapping the same kind of object again (the
** common case) then costs two reads and no symbol lookups. */
static _Atomic(const void *) good_vtbl;

int imalloc_backend_isinterface(const void *p, int nslots) {
  /* NULL, not garbage, where a read fails */
  const void *vtbl = NULL;
  void *slots[16] = {NULL};
  Dl_info info;
  int i;
  if (nslots < 1 || nslots > 16) return 0;
  if (!readmem(p, &vtbl, sizeof vtbl) || vtbl == NULL) return 0;
  if (!readmem(vtbl, slots, (size_t)nslots * sizeof slots[0])) return 0;
  if (vtbl == atomic_load(&good_vtbl)) return 1;
  for (i = 0; i < nslots; i++) {
    /* dladdr answers only for addresses inside a loaded object */
    if (slots[i] == NULL || !dladdr(slots[i], &info)) return 0;
  }
  atomic_store(&good_vtbl, vtbl);
  return 1;
}
