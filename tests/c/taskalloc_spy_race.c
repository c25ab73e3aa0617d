/*
** taskalloc_spy_race.c: an Alloc that saw a spy registered, while another
** thread revokes it before the Alloc takes the spy's lock. The race is
** made deterministic: this program defines pthread_mutex_lock (calling
** the C library's), and a thread that is told to stops in it before it
** takes the spy's lock (the mutex CoRevokeMallocSpy takes first, noted
** once) until the main thread has revoked the spy.
**
** The Alloc then finds no spy under the lock and must make a block as
** without one: not counted as spied (statistics), told to a spy
** registered later as not spied (fSpyed FALSE), and a later revoke not
** held back by it. Prints "N passed, N failed"; exits non-zero on a
** failure.
*/
#define _GNU_SOURCE  /* RTLD_NEXT */
#include "check.h"
#include "client.h"

#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef int (*mutex_fn)(pthread_mutex_t *);

static _Thread_local int note_next;   /* note the next mutex taken */
static pthread_mutex_t *spy_lock;     /* the spy's lock, once noted */
static _Thread_local int stop_at_spy_lock;
static sem_t at_lock, go_on;

int pthread_mutex_lock(pthread_mutex_t *mx) {
  static mutex_fn f;
  if (!f) *(void **)&f = dlsym(RTLD_NEXT, "pthread_mutex_lock");
  if (!f) abort();
  if (note_next) {
    note_next = 0;
    spy_lock = mx;
  }
  if (stop_at_spy_lock && mx == spy_lock) {
    stop_at_spy_lock = 0;
    sem_post(&at_lock);
    while (sem_wait(&go_on) != 0) {
    }
  }
  return f(mx);
}

/* ---- a spy that passes everything through and notes fSpyed ------------- */

static BOOL last_spyed = -1;
static long refs = 1;

static HRESULT STDMETHODCALLTYPE s_QueryInterface(IMallocSpy *This,
                                                  REFIID riid, void **out) {
  (void)riid;
  *out = This;
  refs++;
  return S_OK;
}
static ULONG STDMETHODCALLTYPE s_AddRef(IMallocSpy *This) {
  (void)This;
  return (ULONG)++refs;
}
static ULONG STDMETHODCALLTYPE s_Release(IMallocSpy *This) {
  (void)This;
  return (ULONG)--refs;
}
static SIZE_T STDMETHODCALLTYPE s_PreAlloc(IMallocSpy *This, SIZE_T cb) {
  (void)This;
  return cb;
}
static void *STDMETHODCALLTYPE s_PostAlloc(IMallocSpy *This, void *p) {
  (void)This;
  return p;
}
static void *STDMETHODCALLTYPE s_PreFree(IMallocSpy *This, void *p, BOOL f) {
  (void)This;
  last_spyed = f;
  return p;
}
static void STDMETHODCALLTYPE s_PostFree(IMallocSpy *This, BOOL f) {
  (void)This;
  (void)f;
}
static SIZE_T STDMETHODCALLTYPE s_PreRealloc(IMallocSpy *This, void *p,
                                             SIZE_T cb, void **real, BOOL f) {
  (void)This;
  last_spyed = f;
  *real = p;
  return cb;
}
static void *STDMETHODCALLTYPE s_PostRealloc(IMallocSpy *This, void *p,
                                             BOOL f) {
  (void)This;
  (void)f;
  return p;
}
static void *STDMETHODCALLTYPE s_PreGetSize(IMallocSpy *This, void *p,
                                            BOOL f) {
  (void)This;
  last_spyed = f;
  return p;
}
static SIZE_T STDMETHODCALLTYPE s_PostGetSize(IMallocSpy *This, SIZE_T cb,
                                              BOOL f) {
  (void)This;
  (void)f;
  return cb;
}
static void *STDMETHODCALLTYPE s_PreDidAlloc(IMallocSpy *This, void *p,
                                             BOOL f) {
  (void)This;
  last_spyed = f;
  return p;
}
static int STDMETHODCALLTYPE s_PostDidAlloc(IMallocSpy *This, void *p, BOOL f,
                                            int actual) {
  (void)This;
  (void)p;
  (void)f;
  return actual;
}
static void STDMETHODCALLTYPE s_PreHeapMinimize(IMallocSpy *This) {
  (void)This;
}
static void STDMETHODCALLTYPE s_PostHeapMinimize(IMallocSpy *This) {
  (void)This;
}

static const IMallocSpyVtbl spy_vtbl = {
  s_QueryInterface, s_AddRef, s_Release, s_PreAlloc, s_PostAlloc,
  s_PreFree, s_PostFree, s_PreRealloc, s_PostRealloc, s_PreGetSize,
  s_PostGetSize, s_PreDidAlloc, s_PostDidAlloc, s_PreHeapMinimize,
  s_PostHeapMinimize
};
static IMallocSpy spy = { &spy_vtbl };

/* ---- the race ------------------------------------------------------------ */

static void *allocator(void *arg) {
  void **out = arg;
  stop_at_spy_lock = 1;
  *out = ALLOC(100);
  return NULL;
}

int main(void) {
  pthread_t t;
  void *p = NULL, *warm;
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (imalloc_CoGetMalloc(1, &m) != S_OK || sem_init(&at_lock, 0, 0) != 0 ||
      sem_init(&go_on, 0, 0) != 0) {
    printf("FAIL: no allocator\n0 passed, 1 failed\n");
    return 1;
  }
  warm = ALLOC(100);  /* this thread's cache set up before the spy */
  note_next = 1;      /* the first lock a revoke takes is the spy's */
  CHECK(imalloc_CoRevokeMallocSpy() == CO_E_OBJNOTREG);
  CHECK(spy_lock != NULL);
  CHECK(imalloc_CoRegisterMallocSpy(&spy) == S_OK);
  CHECK(pthread_create(&t, NULL, allocator, &p) == 0);
  while (sem_wait(&at_lock) != 0) {
  }
  /* the thread saw the spy and waits at its lock: no spied block is
  ** live, so the revoke is done at once */
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK);
  sem_post(&go_on);
  CHECK(pthread_join(t, NULL) == 0);

  CHECK(p != NULL && GETSIZE(p) == 100);
  CHECK(stats().spied_blocks == 0);
  /* a spy registered now is told the block was not made under one */
  CHECK(imalloc_CoRegisterMallocSpy(&spy) == S_OK);
  last_spyed = -1;
  CHECK(DIDALLOC(p) == 1);
  CHECK(last_spyed == 0);
  FREE(p);
  CHECK(last_spyed == 0);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK);  /* nothing holds it back */
  FREE(warm);
  return check_report();
}
