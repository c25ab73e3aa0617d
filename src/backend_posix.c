/*
** backend_posix.c: the built-in task allocator (taskalloc.c).
**
** The allocator's state, thread caches and their destructors live in this
** shared object, and blocks it hands out may outlive every Lua state. Lua
** unloads C modules in lua_close, so the module pins itself in memory the
** first time it is asked for the allocator.
*/
#define _GNU_SOURCE  /* dladdr, RTLD_NODELETE */
#include <dlfcn.h>
#include <pthread.h>

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
