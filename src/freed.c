/*
** freed.c: freed blocks on heaps that delay frees.
**
** A heap with free checking on (Wine's under WINEDEBUG=warn+heap; a debug
** heap on Windows may do alike) keeps a freed block aside for a while, to
** catch writes after the free, and answers DidAlloc 1 for it until the
** delay runs out: the DidAlloc check of the binding would let a second free
** of the block through. So, once per process, the backend has the task
** allocator probed (imalloc_freed_probe): Alloc, Free, DidAlloc.
**
** - DidAlloc 0: the heap frees at once (Windows' default heap, Wine
**   without heap checking). Nothing more is done; the binding's cost is
**   one relaxed load per call site. The built-in allocator of the POSIX
**   backend frees at once by design and is not probed: there the calls
**   compile away (freed.h).
** - DidAlloc 1 and GetSize -1 (Wine: HeapSize fails on a delayed block):
**   the heap tells a delayed block from a live one. Every DidAlloc of the
**   binding's checks is followed, when it answers 1, by GetSize, and -1
**   makes it 0. Exact, also for blocks that native code freed.
** - DidAlloc 1 and GetSize answering: the record. The probe counts the
**   frees it takes the heap to let a block go (`depth`); the binding notes
**   every block it frees in a process-wide ring of the last `depth`
**   addresses, forgets an address when its own Alloc or Realloc hands it
**   out, and a noted address is DidAlloc 0 to its checks without asking the
**   heap. The heap's delay counts every free of the process, the binding's
**   among them, so a block the binding freed that the heap still delays is
**   always noted. Its limits: a block native code freed is not noted, and
**   an address whose delay ran out and that native code was given again
**   stays noted, and refused, until `depth` more frees by the binding or
**   its own Alloc hands it out. IMALLOC_FREED_RECORD=1 in the environment
**   chooses the record even where GetSize tells (to test it under Wine).
**
** Everything here is C memory under a spin lock: noting, forgetting and
** asking never allocate on the Lua side, so they can sit between a check
** and a use.
*/
#include <stdlib.h>

#include "freed.h"

/* The longest delay recorded: the record is searched linearly. */
#define FREED_MAXDEPTH 4096
/* The size of the probe's blocks: a small one, as heaps delay small blocks
** (any size below a heap's blocks mapped on their own does alike). */
#define PROBE_SIZE 16

imalloc_atomic_int imalloc_freed_on;

static imalloc_spinlock lock = IMALLOC_SPINLOCK_INIT;
static void **ring;     /* the last `depth` addresses noted (NULL: none) */
static size_t depth;
static size_t next;     /* where the next one goes */
/* The task allocator as the probe found it, when its GetSize answers -1
** for a block its heap delays; else NULL. */
static IMalloc *sizetells;

void imalloc_freed_probe(IMalloc *m) {
  void *first, *q;
  size_t n = 0;
  const char *force = getenv("IMALLOC_FREED_RECORD");
  if (imalloc_atomic_get(&imalloc_freed_on)) return;
  first = m->lpVtbl->Alloc(m, PROBE_SIZE);
  if (first == NULL) return;
  m->lpVtbl->Free(m, first);
  if (m->lpVtbl->DidAlloc(m, first) != 1) return;  /* freed at once */
  if (m->lpVtbl->GetSize(m, first) == (SIZE_T)-1 &&
      !(force != NULL && force[0] == '1')) {
    /* The heap tells a delayed block from a live one: DidAlloc and GetSize
    ** are exact, and a record could only refuse an address that native
    ** code was given again. No record. */
    sizetells = m;
    imalloc_atomic_set(&imalloc_freed_on, 1);
    return;
  }
  /* Delayed: count the frees it takes for the heap to let the block go. */
  while (n < FREED_MAXDEPTH && m->lpVtbl->DidAlloc(m, first) == 1) {
    q = m->lpVtbl->Alloc(m, PROBE_SIZE);
    if (q == NULL) break;
    m->lpVtbl->Free(m, q);
    n++;
  }
  if (n == 0) n = 1;
  ring = (void **)calloc(n, sizeof(void *));
  if (ring == NULL) return;  /* no record: the DidAlloc check alone */
  depth = n;
  imalloc_atomic_set(&imalloc_freed_on, 1);
}

void imalloc_freed_note_(void *p) {
  if (depth == 0) return;  /* no record: the heap tells */
  imalloc_spin_lock(&lock);
  ring[next] = p;
  next = (next + 1) % depth;
  imalloc_spin_unlock(&lock);
}

/* (Without a record, depth is 0: nothing to search here or in has.) */
void imalloc_freed_forget_(void *p) {
  size_t i;
  imalloc_spin_lock(&lock);
  for (i = 0; i < depth; i++)
    if (ring[i] == p) ring[i] = NULL;
  imalloc_spin_unlock(&lock);
}

/* Whether `p` is in the record. */
static int has(const void *p) {
  size_t i;
  int found = 0;
  imalloc_spin_lock(&lock);
  for (i = 0; i < depth && !found; i++) found = ring[i] == p;
  imalloc_spin_unlock(&lock);
  return found;
}

/* DidAlloc, then, for a block the heap answers 1 for, whether it is one
** the heap delays (GetSize only after DidAlloc 1: a block already given
** back may be unmapped). */
static int heapdidalloc(IMalloc *m, void *p) {
  int r = m->lpVtbl->DidAlloc(m, p);
  if (r == 1 && m == sizetells && m->lpVtbl->GetSize(m, p) == (SIZE_T)-1)
    r = 0;
  return r;
}

int imalloc_freed_didalloc_(IMalloc *m, void *p) {
  if (p != NULL && has(p)) return 0;
  return heapdidalloc(m, p);
}
