/*
** freed.h: the blocks this module freed, on heaps that delay frees
** (freed.c). No Lua here: the backend calls imalloc_freed_probe.
**
** The binding calls imalloc_freed_note(p) for every block it frees (free,
** realloc to 0 or to a new address, a buffer's free), whatever its
** handle's checks, and imalloc_freed_forget(q) for every block its own
** Alloc or Realloc hands out; its checks refuse an address for which
** imalloc_freed_has answers 1. Each is one relaxed load while the heap
** frees at once, and none allocates.
*/
#ifndef IMALLOC_FREED_H
#define IMALLOC_FREED_H

#include <stddef.h>

#include "com_abi.h"
#include "platform.h"

/* 1 once the probe found that the heap delays frees (then for good). */
IMALLOC_HIDDEN extern imalloc_atomic_int imalloc_freed_on;

/* Asks `m` (the task allocator, before any spy of this module is
** registered) whether a freed block stays DidAlloc 1, and for how many
** further frees; if so, turns the record on. Called once per process. */
IMALLOC_HIDDEN void imalloc_freed_probe(IMalloc *m);

/* How many addresses the record keeps; 0 when it is off. */
IMALLOC_HIDDEN size_t imalloc_freed_depth(void);

IMALLOC_HIDDEN void imalloc_freed_note_(void *p);
IMALLOC_HIDDEN void imalloc_freed_forget_(void *p);
IMALLOC_HIDDEN int imalloc_freed_has_(const void *p);

/* Block `p` is being freed by the binding. */
static inline void imalloc_freed_note(void *p) {
  if (imalloc_atomic_get(&imalloc_freed_on) && p != NULL) imalloc_freed_note_(p);
}

/* Block `q` was just handed out by the binding's Alloc or Realloc; returns
** it. */
static inline void *imalloc_freed_forget(void *q) {
  if (imalloc_atomic_get(&imalloc_freed_on) && q != NULL) imalloc_freed_forget_(q);
  return q;
}

/* Whether `p` is a block the binding freed and has not handed out since. */
static inline int imalloc_freed_has(const void *p) {
  return imalloc_atomic_get(&imalloc_freed_on) && p != NULL &&
         imalloc_freed_has_(p);
}

#endif
