/*
** freed.h: the blocks this module freed, on heaps that delay frees
** (freed.c). No Lua here: the backend calls imalloc_freed_probe.
**
** The binding calls imalloc_freed_note(p) for every block it frees (free,
** realloc to a new address, a realloc(p, 0) that returns NULL, which
** frees p by COM's rule, a buffer's free or resize), whatever its handle's
** checks, and imalloc_freed_forget(q) for every block its own Alloc or
** Realloc hands out; every DidAlloc of its checks goes through imalloc_freed_didalloc.
** Each is one relaxed load while the heap frees at once (none on POSIX),
** and none allocates, on the Lua side or elsewhere.
*/
#ifndef IMALLOC_FREED_H
#define IMALLOC_FREED_H

#include <stddef.h>

#include "com_abi.h"
#include "platform.h"

/* 1 once the probe found that the heap delays frees (then for good). */
IMALLOC_HIDDEN extern imalloc_atomic_int imalloc_freed_on;

/* Whether the probe turned this on. Only the Windows backend probes (platform.h): the
** built-in allocator frees at once (its DidAlloc is exact), so there the
** binding's checks compile to what they would be without this file. */
#if IMALLOC_HEAP_MAY_DELAY_FREES
#define IMALLOC_FREED_ON() imalloc_atomic_get(&imalloc_freed_on)
#else
#define IMALLOC_FREED_ON() 0
#endif

/* Asks `m` (the task allocator, before any spy of this module is
** registered) whether a freed block stays DidAlloc 1, and for how many
** further frees; if so, turns the record on. Called once per process. */
IMALLOC_HIDDEN void imalloc_freed_probe(IMalloc *m);

IMALLOC_HIDDEN void imalloc_freed_note_(void *p);
IMALLOC_HIDDEN void imalloc_freed_forget_(void *p);
IMALLOC_HIDDEN int imalloc_freed_didalloc_(IMalloc *m, void *p);

/* Block `p` is being freed by the binding. */
static inline void imalloc_freed_note(void *p) {
  if (IMALLOC_FREED_ON() && p != NULL) imalloc_freed_note_(p);
}

/* Block `q` was just handed out by the binding's Alloc or Realloc; returns
** it. (NULL, a failed Alloc, is forgotten too: the record's empty slots
** hold NULL already.) */
static inline void *imalloc_freed_forget(void *q) {
  if (IMALLOC_FREED_ON()) imalloc_freed_forget_(q);
  return q;
}

/* DidAlloc as the binding's checks, m:didalloc and wrap see it: on a heap
** that delays frees, 0 for a block the binding freed (without asking the
** heap), and for a block anyone freed that the heap still delays, when the
** heap tells them apart (the probe found GetSize answering -1 for a
** delayed block, as Wine's HeapSize does). Costs one relaxed load beside
** the call while the heap frees at once (nothing on POSIX). */
static inline int imalloc_freed_didalloc(IMalloc *m, void *p) {
  if (IMALLOC_FREED_ON()) return imalloc_freed_didalloc_(m, p);
  return m->lpVtbl->DidAlloc(m, p);
}

#endif
