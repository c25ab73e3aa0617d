/*
** cospy.c: IMallocSpy, as in ole32: spied calls are serialised under one
** lock, recursive so that a spy may itself call the allocator. Without a
** spy each call costs one relaxed load of ta_spy. A block allocated under
** the spy carries SLOT_SPY (L_SPY); ta_spied counts them so that a pending
** revoke completes when the last one is freed.
*/
#include "internal.h"

_Atomic(IMallocSpy *) ta_spy;
_Atomic size_t ta_spied;

static pthread_mutex_t g_spy_lock;
static pthread_once_t g_spy_once = PTHREAD_ONCE_INIT;
static int g_spy_pending;  /* under g_spy_lock */

static void spy_lock_init(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&g_spy_lock, &a);
  pthread_mutexattr_destroy(&a);
}

/* Locks and returns the spy, or unlocks and returns NULL if it is gone. */
static IMallocSpy *spy_enter(void) {
  IMallocSpy *spy;
  pthread_once(&g_spy_once, spy_lock_init);  /* visible to this thread */
  pthread_mutex_lock(&g_spy_lock);
  spy = atomic_load_explicit(&ta_spy, RLX);
  if (!spy) pthread_mutex_unlock(&g_spy_lock);
  return spy;
}

/* Completes a pending revoke once no spied block is left; then unlocks. */
static void spy_leave(void) {
  if (g_spy_pending && atomic_load_explicit(&ta_spied, RLX) == 0) {
    IMallocSpy *spy = atomic_load_explicit(&ta_spy, RLX);
    g_spy_pending = 0;
    atomic_store_explicit(&ta_spy, NULL, REL);  /* before Release: the spy
                                               ** may free memory in it */
    spy->lpVtbl->Release(spy);
  }
  pthread_mutex_unlock(&g_spy_lock);
}

void *ta_spy_alloc(SIZE_T cb) {
  IMallocSpy *spy = spy_enter();
  SIZE_T n;
  void *p;
  if (!spy) return ta_alloc(cb, 0);
  n = spy->lpVtbl->PreAlloc(spy, cb);
  if (cb && !n) {  /* PreAlloc may force a failure, except for 0 bytes */
    spy_leave();
    return NULL;
  }
  p = ta_alloc(n, SLOT_SPY);
  p = spy->lpVtbl->PostAlloc(spy, p);
  spy_leave();
  return p;
}

void *ta_spy_realloc(void *pv, SIZE_T cb) {
  IMallocSpy *spy = spy_enter();
  BOOL spyed;
  void *real = NULL, *p;
  SIZE_T n;
  if (!spy) return ta_realloc(pv, cb, 0);
  spyed = pv ? ta_spyed(pv) : 0;
  n = spy->lpVtbl->PreRealloc(spy, pv, cb, &real, spyed);
  if (cb && !n) {  /* forced failure: the block stays as it was */
    spy_leave();
    return NULL;
  }
  p = ta_realloc(real, n, SLOT_SPY);
  /* Like ole32 (Wine), the result counts as spied. */
  p = spy->lpVtbl->PostRealloc(spy, p, 1);
  spy_leave();
  return p;
}

void ta_spy_free(void *pv) {
  IMallocSpy *spy = spy_enter();
  BOOL spyed;
  if (!spy) {
    ta_free(pv);
    return;
  }
  spyed = ta_spyed(pv);
  ta_free(spy->lpVtbl->PreFree(spy, pv, spyed));
  spy->lpVtbl->PostFree(spy, spyed);
  spy_leave();
}

SIZE_T ta_spy_getsize(void *pv) {
  IMallocSpy *spy = spy_enter();
  BOOL spyed;
  SIZE_T n;
  if (!spy) return ta_getsize(pv);
  spyed = ta_spyed(pv);
  n = ta_getsize(spy->lpVtbl->PreGetSize(spy, pv, spyed));
  n = spy->lpVtbl->PostGetSize(spy, n, spyed);
  spy_leave();
  return n;
}

int ta_spy_didalloc(void *pv) {
  IMallocSpy *spy = spy_enter();
  BOOL spyed;
  int r;
  if (!spy) return ta_didalloc(pv);
  spyed = ta_spyed(pv);
  r = ta_didalloc(spy->lpVtbl->PreDidAlloc(spy, pv, spyed));
  /* Microsoft documents pRequest as the caller's pointer (Wine passes the
  ** one PreDidAlloc returned). */
  r = spy->lpVtbl->PostDidAlloc(spy, pv, spyed, r);
  spy_leave();
  return r;
}

void ta_spy_minimize(void) {
  IMallocSpy *spy = spy_enter();
  if (!spy) {
    ta_minimize();
    return;
  }
  spy->lpVtbl->PreHeapMinimize(spy);
  ta_minimize();
  spy->lpVtbl->PostHeapMinimize(spy);
  spy_leave();
}

HRESULT imalloc_CoRegisterMallocSpy(IMallocSpy *spy) {
  static const IID iid_spy = IMALLOC_IID_IMALLOCSPY;
  HRESULT hr = E_INVALIDARG;
  void *got = NULL;
  if (!spy) return E_INVALIDARG;
  pthread_once(&g_spy_once, spy_lock_init);
  pthread_mutex_lock(&g_spy_lock);
  if (atomic_load_explicit(&ta_spy, RLX)) {
    hr = CO_E_OBJISREG;  /* also while a revoke is pending */
  } else if (spy->lpVtbl->QueryInterface(spy, &iid_spy, &got) >= 0 && got) {
    atomic_store_explicit(&ta_spy, (IMallocSpy *)got, REL);
    hr = S_OK;
  }
  pthread_mutex_unlock(&g_spy_lock);
  return hr;
}

HRESULT imalloc_CoRevokeMallocSpy(void) {
  HRESULT hr = S_OK;
  IMallocSpy *spy;
  pthread_once(&g_spy_once, spy_lock_init);  /* visible to this thread */
  pthread_mutex_lock(&g_spy_lock);
  spy = atomic_load_explicit(&ta_spy, RLX);
  if (!spy) {
    hr = CO_E_OBJNOTREG;
  } else if (atomic_load_explicit(&ta_spied, RLX) != 0) {
    g_spy_pending = 1;
    hr = E_ACCESSDENIED;
  } else {
    g_spy_pending = 0;
    atomic_store_explicit(&ta_spy, NULL, REL);
    spy->lpVtbl->Release(spy);
  }
  pthread_mutex_unlock(&g_spy_lock);
  return hr;
}

/* Fork (alloc.c): the spy's lock is taken first. */
void ta_spy_lock(void) {
  pthread_once(&g_spy_once, spy_lock_init);
  pthread_mutex_lock(&g_spy_lock);
}

void ta_spy_unlock(void) {
  pthread_mutex_unlock(&g_spy_lock);
}

void ta_spy_reinit(void) {
  spy_lock_init();
}
