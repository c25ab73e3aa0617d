/*
** freed.c: the blocks this module freed, for heaps that delay frees.
**
** A heap with free checking on (Wine's under WINEDEBUG=warn+heap; a debug
** heap on Windows may do alike) keeps a freed block aside for a while, to
** catch writes after the free, and answers DidAlloc 1 for it until the
** delay runs out. The DidAlloc check of the binding would then let a second
** free of the block through. So, once per process, the backend asks the
** task allocator whether it delays frees (imalloc_freed_probe) and how many
** frees a block stays delayed for; only if it does, every block the binding
** frees is noted here, and forgotten when the binding's own Alloc or Realloc
** hands its address out again. A noted address is refused as "freed
** already" by every check, before DidAlloc is asked.
**
** The record is process-wide, like the heap's delay, and lives in C memory:
** noting, forgetting and asking never allocate on the Lua side, so they can
** sit between a check and a use. It keeps the last `depth` addresses noted,
** `depth` being the number of frees the probe saw a block stay delayed for:
** the heap's delay counts every free of the process, of which the binding's
** are a part, so a block the binding freed that the heap still delays is
** always in the record. Its limit: an address whose delay has run out and
** that native code was given again stays noted until the binding frees
** `depth` more blocks or hands that address out itself.
**
** On a heap that frees at once (the built-in allocator, Windows' default
** heap, Wine without heap checking) nothing is noted, and the binding's cost
** is one test of imalloc_freed_on.
*/
#include <stdlib.h>

#include "freed.h"

/* The longest delay recorded: the record is searched linearly. */
#define FREED_MAXDEPTH 4096

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
  if (imalloc_atomic_get(&imalloc_freed_on)) return;
  first = m->lpVtbl->Alloc(m, 16);
  if (first == NULL) return;
  m->lpVtbl->Free(m, first);
  if (m->lpVtbl->DidAlloc(m, first) != 1) return;  /* freed at once */
  if (m->lpVtbl->GetSize(m, first) == (SIZE_T)-1) sizetells = m;
  /* Delayed: count the frees it takes for the heap to let the block go. */
  while (n < FREED_MAXDEPTH && m->lpVtbl->DidAlloc(m, first) == 1) {
    q = m->lpVtbl->Alloc(m, 16);
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
  imalloc_spin_lock(&lock);
  ring[next] = p;
  next = (next + 1) % depth;
  imalloc_spin_unlock(&lock);
}

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

void imalloc_freed_noteifgone_(IMalloc *m, void *p) {
  if (heapdidalloc(m, p) != 1) imalloc_freed_note_(p);
}
