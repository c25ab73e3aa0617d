/*
** taskalloc_spy_race.c: a call that saw a spy registered, while another
** thread revokes it before the call takes the spy's lock. The race is
** made deterministic: this program defines pthread_mutex_lock (calling
** the C library's), and a thread that is told to stops in it before it
** takes the spy's lock (the mutex CoRevokeMallocSpy takes first, noted
** once) until the main thread has revoked the spy.
**
** Each call (Alloc, Realloc, Free, GetSize, DidAlloc, HeapMinimize) then
** finds no spy under the lock and must do what it does without one: a
** block made or resized is not counted as spied (statistics), is told to
** a spy registered later as not spied (fSpyed FALSE) and holds no later
** revoke back; a block freed is gone; sizes are answered; memory kept
** for reuse is given back. Prints "N passed, N failed"; exits non-zero
** on a failure.
*/
#define _GNU_SOURCE  /* RTLD_NEXT */
#include "check.h"
#include "client.h"

#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

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

enum op { OP_ALLOC, OP_REALLOC, OP_REALLOC_NULL, OP_FREE, OP_GETSIZE,
          OP_DIDALLOC, OP_MINIMIZE };

struct job {
  enum op op;
  void *p;        /* the block the call is given */
  void *got;      /* what Alloc or Realloc answered */
  SIZE_T size;    /* GetSize's answer */
  int did;        /* DidAlloc's */
};

static void *call(void *arg) {
  struct job *j = arg;
  stop_at_spy_lock = 1;
  switch (j->op) {
    case OP_ALLOC: j->got = ALLOC(100); break;
    case OP_REALLOC: j->got = REALLOC(j->p, 300); break;
    case OP_REALLOC_NULL: j->got = REALLOC(NULL, 100); break;
    case OP_FREE: FREE(j->p); break;
    case OP_GETSIZE: j->size = GETSIZE(j->p); break;
    case OP_DIDALLOC: j->did = DIDALLOC(j->p); break;
    case OP_MINIMIZE: m->lpVtbl->HeapMinimize(m); break;
  }
  stop_at_spy_lock = 0;
  return NULL;
}

/* Runs op in a thread that saw the spy registered and is stopped at its
** lock while this one revokes the spy (done at once: no spied block is
** live); 0 on a failure of the set-up. */
static int race(struct job *j) {
  pthread_t t;
  int ok = imalloc_CoRegisterMallocSpy(&spy) == S_OK &&
           pthread_create(&t, NULL, call, j) == 0;
  if (!ok) return 0;
  while (sem_wait(&at_lock) != 0) {
  }
  ok = imalloc_CoRevokeMallocSpy() == S_OK;
  sem_post(&go_on);
  return pthread_join(t, NULL) == 0 && ok;
}

/* Not made under a spy: no spied block counted, and a spy registered now
** is told fSpyed FALSE for it (then revoked: nothing holds it back). */
static int unspied(void *p) {
  int ok = stats().spied_blocks == 0 &&
           imalloc_CoRegisterMallocSpy(&spy) == S_OK;
  last_spyed = -1;
  ok = ok && DIDALLOC(p) == 1 && last_spyed == 0;
  return imalloc_CoRevokeMallocSpy() == S_OK && ok;
}

int main(void) {
  struct job j;
  void *warm, *p;
  size_t live, mapped;
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

  /* Alloc: a block as without a spy */
  memset(&j, 0, sizeof j);
  j.op = OP_ALLOC;
  CHECK(race(&j));
  CHECK(j.got != NULL && GETSIZE(j.got) == 100);
  CHECK(unspied(j.got));
  p = j.got;

  /* Realloc: the block resized, still not spied */
  memset(&j, 0, sizeof j);
  j.op = OP_REALLOC;
  j.p = p;
  fill(p, 100, 5);
  CHECK(race(&j));
  CHECK(j.got != NULL && GETSIZE(j.got) == 300 && is_pattern(j.got, 100, 5));
  if (j.got) p = j.got;
  CHECK(unspied(p));

  /* Realloc of NULL: a new block, not spied */
  memset(&j, 0, sizeof j);
  j.op = OP_REALLOC_NULL;
  CHECK(race(&j));
  CHECK(j.got != NULL && GETSIZE(j.got) == 100);
  CHECK(unspied(j.got));
  FREE(j.got);

  /* GetSize and DidAlloc answer for the block */
  memset(&j, 0, sizeof j);
  j.op = OP_GETSIZE;
  j.p = p;
  CHECK(race(&j));
  CHECK(j.size == 300);
  memset(&j, 0, sizeof j);
  j.op = OP_DIDALLOC;
  j.p = p;
  CHECK(race(&j));
  CHECK(j.did == 1);

  /* Free: the block is gone */
  live = live_blocks();
  memset(&j, 0, sizeof j);
  j.op = OP_FREE;
  j.p = p;
  CHECK(race(&j));
  CHECK(live_blocks() == live - 1);
  CHECK(DIDALLOC(p) == 0);

  /* HeapMinimize: the mapping of a freed large block, kept for reuse,
  ** is given back */
  p = ALLOC(1000000);
  CHECK(p != NULL);
  FREE(p);
  mapped = stats().mapped_bytes;
  memset(&j, 0, sizeof j);
  j.op = OP_MINIMIZE;
  CHECK(race(&j));
  printf("mapped bytes: %zu before the HeapMinimize, %zu after\n", mapped,
         stats().mapped_bytes);
  CHECK(stats().mapped_bytes + 900000 <= mapped);  /* most of that block */

  /* a Realloc of NULL under a spy: PreRealloc told fSpyed FALSE */
  CHECK(imalloc_CoRegisterMallocSpy(&spy) == S_OK);
  last_spyed = -1;
  p = REALLOC(NULL, 40);
  CHECK(p != NULL && last_spyed == 0);
  FREE(p);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK);
  FREE(warm);
  return check_report();
}
