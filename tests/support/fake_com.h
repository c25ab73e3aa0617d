/*
** fake_com.h: parts for the COM objects the tests write themselves (an
** IMalloc standing for another allocator, an IMallocSpy): the
** QueryInterface of an object that is IUnknown and one interface, an
** IMalloc's methods for one that holds no block, and an IMallocSpy's that
** pass every call through unchanged. A test builds its vtable from these
** and its own methods for what it counts or changes.
*/
#ifndef IMALLOC_TESTS_FAKE_COM_H
#define IMALLOC_TESTS_FAKE_COM_H

#include <string.h>

#include "com_abi.h"

/* riid is IUnknown's or *own. */
static inline int fake_iid_is(REFIID riid, const IID *own) {
  static const IID unk = IMALLOC_IID_IUNKNOWN;
  return !memcmp(riid, &unk, sizeof unk) || !memcmp(riid, own, sizeof *own);
}

/* ---- IMalloc ------------------------------------------------------------- */

/* IUnknown and IMalloc: the object itself, AddRef'd through its vtable. */
static inline HRESULT STDMETHODCALLTYPE fake_malloc_qi(
    IMalloc *This, REFIID riid, void **out) {
  static const IID mal = IMALLOC_IID_IMALLOC;
  if (fake_iid_is(riid, &mal)) {
    *out = This;
    This->lpVtbl->AddRef(This);
    return S_OK;
  }
  *out = NULL;
  return E_NOINTERFACE;
}

/* An allocator that gives no block and owns none. */
static inline void *STDMETHODCALLTYPE fake_malloc_no_alloc(
    IMalloc *This, SIZE_T cb) {
  (void)This, (void)cb;
  return NULL;
}
static inline void *STDMETHODCALLTYPE fake_malloc_no_realloc(
    IMalloc *This, void *p, SIZE_T cb) {
  (void)This, (void)p, (void)cb;
  return NULL;
}
static inline void STDMETHODCALLTYPE fake_malloc_no_free(
    IMalloc *This, void *p) {
  (void)This, (void)p;
}
static inline SIZE_T STDMETHODCALLTYPE fake_malloc_no_getsize(
    IMalloc *This, void *p) {
  (void)This, (void)p;
  return (SIZE_T)-1;
}
static inline int STDMETHODCALLTYPE fake_malloc_no_didalloc(
    IMalloc *This, void *p) {
  (void)This;
  return p ? 0 : -1;
}
static inline void STDMETHODCALLTYPE fake_malloc_heapminimize(IMalloc *This) {
  (void)This;
}

/* ---- IMallocSpy ---------------------------------------------------------- */

/* IUnknown and IMallocSpy: the object itself, AddRef'd through its vtable. */
static inline HRESULT STDMETHODCALLTYPE fake_spy_qi(
    IMallocSpy *This, REFIID riid, void **out) {
  static const IID spy = IMALLOC_IID_IMALLOCSPY;
  if (fake_iid_is(riid, &spy)) {
    *out = This;
    This->lpVtbl->AddRef(This);
    return S_OK;
  }
  *out = NULL;
  return E_NOINTERFACE;
}

/* A spy that is never freed: QueryInterface answers itself for any
** interface, and its one count of references stays 1. */
static inline HRESULT STDMETHODCALLTYPE fake_spy_qi_any(
    IMallocSpy *This, REFIID riid, void **out) {
  (void)riid;
  *out = This;
  return S_OK;
}
static inline ULONG STDMETHODCALLTYPE fake_spy_ref_static(IMallocSpy *This) {
  (void)This;
  return 1;
}

/* Every call passed through: the size and pointers as given. PreFree,
** PreGetSize and PreDidAlloc share pass_pre; both HeapMinimize calls,
** pass_heapminimize. */
static inline SIZE_T STDMETHODCALLTYPE pass_prealloc(
    IMallocSpy *This, SIZE_T cb) {
  (void)This;
  return cb;
}
static inline void *STDMETHODCALLTYPE pass_postalloc(
    IMallocSpy *This, void *p) {
  (void)This;
  return p;
}
static inline void *STDMETHODCALLTYPE pass_pre(
    IMallocSpy *This, void *p, BOOL f) {
  (void)This, (void)f;
  return p;
}
static inline void STDMETHODCALLTYPE pass_postfree(IMallocSpy *This, BOOL f) {
  (void)This, (void)f;
}
static inline SIZE_T STDMETHODCALLTYPE pass_prerealloc(
    IMallocSpy *This, void *p, SIZE_T cb, void **pnew, BOOL f) {
  (void)This, (void)f;
  *pnew = p;
  return cb;
}
static inline void *STDMETHODCALLTYPE pass_postrealloc(
    IMallocSpy *This, void *p, BOOL f) {
  (void)This, (void)f;
  return p;
}
static inline SIZE_T STDMETHODCALLTYPE pass_postgetsize(
    IMallocSpy *This, SIZE_T cb, BOOL f) {
  (void)This, (void)f;
  return cb;
}
static inline int STDMETHODCALLTYPE pass_postdidalloc(
    IMallocSpy *This, void *p, BOOL f, int actual) {
  (void)This, (void)p, (void)f;
  return actual;
}
static inline void STDMETHODCALLTYPE pass_heapminimize(IMallocSpy *This) {
  (void)This;
}

/* The initializer of a static spy whose Post calls all pass through and
** whose Pre calls are the ones given (pass_* for those it leaves alone). */
#define FAKE_SPY_VTBL(prealloc, prefree, prerealloc, pregetsize, predidalloc) \
  {                                                                          \
    fake_spy_qi_any, fake_spy_ref_static, fake_spy_ref_static, prealloc,     \
    pass_postalloc, prefree, pass_postfree, prerealloc, pass_postrealloc,    \
    pregetsize, pass_postgetsize, predidalloc, pass_postdidalloc,            \
    pass_heapminimize, pass_heapminimize                                     \
  }

/* A spy that passes every call through: one per test program, never freed
** (its references stay 1). */
static inline IMallocSpy *fake_pass_spy(void) {
  static const IMallocSpyVtbl vtbl =
      FAKE_SPY_VTBL(pass_prealloc, pass_pre, pass_prerealloc, pass_pre, pass_pre);
  static IMallocSpy spy = {&vtbl};
  return &spy;
}

#endif
