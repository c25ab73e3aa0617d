/*
** malloc_taskalloc.c: taskalloc.h's interface over the C library's malloc,
** for the 32-bit Linux build of tests/m32 only.
**
** The built-in allocator (src/taskalloc/) needs 64-bit pointers: its free
** lists and lookup table pack fields above bit 48. To run the specs with a
** 32-bit SIZE_T anyway, this file stands in for it: every live block is in
** one table under one mutex, so DidAlloc, GetSize, Free and Realloc answer
** for foreign and freed pointers without touching them, as taskalloc.h
** promises. No IMallocSpy (E_NOTIMPL): the spy's specs are not run here.
*/
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "taskalloc.h"

/* Open addressing, linear probing, deletion by backward shift. */
typedef struct { void *p; size_t size; } Entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Entry *table;
static size_t capacity, count, bytes;

static size_t slot_of(const void *p) {
  uintptr_t h = (uintptr_t)p >> 4;
  h ^= h >> 15;
  h *= 0x2c1b3c6dU;
  h ^= h >> 12;
  return (size_t)h & (capacity - 1);
}

static Entry *find(const void *p) {
  size_t i;
  if (capacity == 0 || p == NULL) return NULL;
  for (i = slot_of(p); table[i].p != NULL; i = (i + 1) & (capacity - 1))
    if (table[i].p == p) return &table[i];
  return NULL;
}

static int insert(void *p, size_t size);

static int grow(void) {
  Entry *old = table;
  size_t oldcap = capacity, i;
  size_t newcap = capacity ? 2 * capacity : 1024;
  Entry *t = calloc(newcap, sizeof *t);
  if (t == NULL) return 0;
  table = t;
  capacity = newcap;
  count = 0;
  for (i = 0; i < oldcap; i++)
    if (old[i].p != NULL) insert(old[i].p, old[i].size);
  free(old);
  return 1;
}

static int insert(void *p, size_t size) {
  size_t i;
  if (2 * (count + 1) > capacity && !grow()) return 0;
  for (i = slot_of(p); table[i].p != NULL; i = (i + 1) & (capacity - 1)) {}
  table[i].p = p;
  table[i].size = size;
  count++;
  return 1;
}

static void erase(Entry *e) {
  size_t i = (size_t)(e - table), j = i;
  for (;;) {
    size_t home;
    j = (j + 1) & (capacity - 1);
    if (table[j].p == NULL) break;
    home = slot_of(table[j].p);
    /* move j back into the hole at i unless its home lies in (i, j] */
    if (((j - home) & (capacity - 1)) >= ((j - i) & (capacity - 1))) {
      table[i] = table[j];
      i = j;
    }
  }
  table[i].p = NULL;
  count--;
}

/* A new block of `cb` bytes, 16-aligned, recorded; NULL when it cannot be. */
static void *block_new(SIZE_T cb) {
  void *p;
  if (posix_memalign(&p, 16, cb ? cb : 1) != 0) return NULL;
  pthread_mutex_lock(&lock);
  if (!insert(p, cb)) {
    pthread_mutex_unlock(&lock);
    free(p);
    return NULL;
  }
  bytes += cb;
  pthread_mutex_unlock(&lock);
  return p;
}

/* Forgets `p` if it is a live block; returns whether it was. */
static int block_forget(void *p, size_t *size) {
  Entry *e;
  pthread_mutex_lock(&lock);
  e = find(p);
  if (e != NULL) {
    if (size) *size = e->size;
    bytes -= e->size;
    erase(e);
  }
  pthread_mutex_unlock(&lock);
  return e != NULL;
}

void *imalloc_CoTaskMemAlloc(SIZE_T cb) { return block_new(cb); }

void imalloc_CoTaskMemFree(void *p) {
  if (block_forget(p, NULL)) free(p);
}

void *imalloc_CoTaskMemRealloc(void *p, SIZE_T cb) {
  size_t old;
  void *q;
  Entry *e;
  if (p == NULL) return block_new(cb);
  if (cb == 0) {
    imalloc_CoTaskMemFree(p);
    return NULL;
  }
  pthread_mutex_lock(&lock);
  e = find(p);
  old = e ? e->size : 0;
  if (e != NULL && cb <= old) {  /* shrinking keeps the block, as COM's heaps do */
    bytes -= old - cb;
    e->size = cb;
  }
  pthread_mutex_unlock(&lock);
  if (e == NULL) return NULL;
  if (cb <= old) return p;
  q = block_new(cb);
  if (q == NULL) return NULL;  /* p stays as it was */
  memcpy(q, p, old < cb ? old : cb);
  imalloc_CoTaskMemFree(p);
  return q;
}

static SIZE_T block_size(void *p) {
  Entry *e;
  SIZE_T size;
  pthread_mutex_lock(&lock);
  e = find(p);
  size = e ? e->size : (SIZE_T)-1;
  pthread_mutex_unlock(&lock);
  return size;
}

/* ---- the IMalloc singleton ---------------------------------------------- */

static HRESULT STDMETHODCALLTYPE m_qi(IMalloc *m, REFIID riid, void **out) {
  static const IID unknown = {0, 0, 0, {0xC0, 0, 0, 0, 0, 0, 0, 0x46}};
  static const IID imalloc = {2, 0, 0, {0xC0, 0, 0, 0, 0, 0, 0, 0x46}};
  if (out == NULL) return E_POINTER;
  if (memcmp(riid, &unknown, sizeof unknown) == 0 ||
      memcmp(riid, &imalloc, sizeof imalloc) == 0) {
    *out = m;
    return S_OK;
  }
  *out = NULL;
  return E_NOINTERFACE;
}
/* As Wine's: the singleton keeps no count. */
static ULONG STDMETHODCALLTYPE m_addref(IMalloc *m) { (void)m; return 2; }
static ULONG STDMETHODCALLTYPE m_release(IMalloc *m) { (void)m; return 1; }
static void *STDMETHODCALLTYPE m_alloc(IMalloc *m, SIZE_T cb) {
  (void)m;
  return imalloc_CoTaskMemAlloc(cb);
}
static void *STDMETHODCALLTYPE m_realloc(IMalloc *m, void *p, SIZE_T cb) {
  (void)m;
  return imalloc_CoTaskMemRealloc(p, cb);
}
static void STDMETHODCALLTYPE m_free(IMalloc *m, void *p) {
  (void)m;
  imalloc_CoTaskMemFree(p);
}
static SIZE_T STDMETHODCALLTYPE m_getsize(IMalloc *m, void *p) {
  (void)m;
  return block_size(p);
}
static int STDMETHODCALLTYPE m_didalloc(IMalloc *m, void *p) {
  (void)m;
  if (p == NULL) return -1;  /* COM: "cannot tell" */
  return block_size(p) != (SIZE_T)-1;
}
static void STDMETHODCALLTYPE m_heapminimize(IMalloc *m) { (void)m; }

static const IMallocVtbl vtbl = {
  m_qi, m_addref, m_release, m_alloc, m_realloc, m_free, m_getsize,
  m_didalloc, m_heapminimize
};
static IMalloc singleton = { &vtbl };

HRESULT imalloc_CoGetMalloc(DWORD context, IMalloc **out) {
  if (out == NULL) return E_POINTER;
  if (context != 1) {
    *out = NULL;
    return E_INVALIDARG;
  }
  *out = &singleton;
  return S_OK;
}

HRESULT imalloc_CoRegisterMallocSpy(IMallocSpy *spy) {
  (void)spy;
  return E_NOTIMPL;
}

HRESULT imalloc_CoRevokeMallocSpy(void) { return CO_E_OBJNOTREG; }

void imalloc_taskalloc_stats(struct imalloc_taskstats *out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&lock);
  out->live_blocks = count;
  out->live_bytes = bytes;
  pthread_mutex_unlock(&lock);
}
