/*
** freed_record.c: the probe and the record of freed blocks (src/freed.c,
** compiled into this test as on a heap that may delay frees) against a
** fake task allocator whose every answer the test sets: how many frees it
** delays a block for, whether GetSize tells a delayed block, when Alloc
** fails. Each case is a process of its own (the probe runs once a
** process):
**
**   freed_record CASE
**
**   off          frees at once: nothing is turned on
**   nomem        Alloc fails: nothing is turned on, nothing else asked
**   nocalloc     the record cannot be made: nothing is turned on
**   tells        delays 5 frees, GetSize -1 for a delayed block: on, no
**                record; a delayed block is DidAlloc 0 (IMALLOC_FREED_RECORD
**                unset, or 0 in the test freed-record-tells-0)
**   record       the same heap with IMALLOC_FREED_RECORD=1: a record of 5
**   sizes        delays 5 frees, GetSize answers for them: a record of 5
**   maxdepth     never lets a block go: a record of 4096, the most
**   allocfail    Alloc fails after the probe's 4th: a record of 3
**   once         DidAlloc 1 for the first freed block once only: a record
**                of 1
*/
#include "check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_com.h"
#include "freed.h"

/* ---- the fake heap ------------------------------------------------------ */

#define NBLOCKS 8192
enum { FREE = 0, LIVE, DELAYED };

static _Alignas(16) unsigned char blocks[NBLOCKS][32];
static unsigned char state[NBLOCKS];
static size_t queue[NBLOCKS];  /* the delayed blocks, oldest first */
static size_t queued;

static struct {
  size_t delay;        /* frees a block is kept aside for */
  int size_tells;      /* GetSize -1 for a delayed block */
  long allocs_left;    /* Allocs that succeed (-1: all) */
  int lie_once;        /* DidAlloc 1 for a delayed block once, then 0 */
  /* calls */
  int allocs, frees, didallocs, getsizes, getsize_of_other;
} heap;

static long index_of(const void *p) {
  uintptr_t u = (uintptr_t)p, base = (uintptr_t)blocks;
  if (u < base || u >= base + sizeof blocks || (u - base) % 32 != 0) return -1;
  return (long)((u - base) / 32);
}

static void *STDMETHODCALLTYPE f_alloc(IMalloc *m, SIZE_T n) {
  size_t i;
  (void)m;
  heap.allocs++;
  if (n > 32 || heap.allocs_left == 0) return NULL;
  if (heap.allocs_left > 0) heap.allocs_left--;
  for (i = 0; i < NBLOCKS; i++)
    if (state[i] == FREE) {
      state[i] = LIVE;
      return blocks[i];
    }
  return NULL;
}

static void STDMETHODCALLTYPE f_free(IMalloc *m, void *p) {
  long i = index_of(p);
  (void)m;
  heap.frees++;
  if (i < 0 || state[i] != LIVE) return;
  state[i] = DELAYED;
  queue[queued++] = (size_t)i;
  if (queued > heap.delay) {  /* the oldest is let go */
    state[queue[0]] = FREE;
    memmove(queue, queue + 1, --queued * sizeof queue[0]);
  }
}

static SIZE_T STDMETHODCALLTYPE f_getsize(IMalloc *m, void *p) {
  long i = index_of(p);
  (void)m;
  heap.getsizes++;
  if (i < 0 || state[i] == FREE) {
    heap.getsize_of_other++;  /* a block given back may be unmapped */
    return (SIZE_T)-1;
  }
  return state[i] == DELAYED && heap.size_tells ? (SIZE_T)-1 : 16;
}

static int STDMETHODCALLTYPE f_didalloc(IMalloc *m, void *p) {
  long i = index_of(p);
  (void)m;
  heap.didallocs++;
  if (p == NULL) return -1;
  if (i < 0 || state[i] == FREE) return 0;
  if (state[i] == DELAYED && heap.lie_once && heap.lie_once++ > 1) {
    state[i] = FREE;  /* let go at the second ask */
    return 0;
  }
  return 1;
}

static ULONG STDMETHODCALLTYPE f_addref(IMalloc *m) { (void)m; return 2; }
static ULONG STDMETHODCALLTYPE f_release(IMalloc *m) { (void)m; return 1; }

/* (freed.c calls no Realloc nor HeapMinimize) */
static const IMallocVtbl vtbl = {
  fake_malloc_qi, f_addref, f_release, f_alloc, fake_malloc_no_realloc,
  f_free, f_getsize, f_didalloc, fake_malloc_heapminimize
};
/* two objects over the same heap: the probe sees the first only */
static IMalloc fake = { &vtbl }, other = { &vtbl };

/* freed.c's calloc (-Dcalloc=freed_test_calloc on this target), which
** can fail, and which puts a live block right past the end of what it
** hands out: a record that reads or writes one slot too many shows. */
static int calloc_fails;
static void *canary;
static void **past_end;
void *freed_test_calloc(size_t n, size_t size) {
  char *p;
  if (calloc_fails || (size && n > (SIZE_MAX - sizeof(void *)) / size))
    return NULL;
  p = malloc(n * size + sizeof(void *));
  if (p == NULL) return NULL;
  memset(p, 0, n * size);
  past_end = (void **)(void *)(p + n * size);  /* n * size: pointers */
  *past_end = canary;
  return p;
}

/* ---- what the record holds ---------------------------------------------- */

static char markers[NBLOCKS];  /* addresses no heap has */

/* How many addresses the record holds: a live block noted, then others,
** until the block is pushed out and the heap answers for it again. */
static size_t depth(void) {
  void *live = f_alloc(&fake, 16);
  size_t k = 0;
  imalloc_freed_note_(live);
  while (imalloc_freed_didalloc_(&fake, live) == 0 && k < NBLOCKS - 1)
    imalloc_freed_note_(markers + ++k);
  return k;
}

static int on(void) { return imalloc_atomic_get(&imalloc_freed_on); }

/* The record of `want` addresses: noting, forgetting, and asking it. */
static void check_record(size_t want) {
  void *a = f_alloc(&fake, 16), *b = f_alloc(&fake, 16);
  int getsizes;
  CHECK(on() == 1);
  /* the slot past the record is not the record's */
  CHECK(past_end != NULL && *past_end == canary);
  CHECK(imalloc_freed_didalloc_(&fake, canary) == 1);
  imalloc_freed_forget_(canary);
  CHECK(*past_end == canary);
  /* an empty record holds no NULL: NULL is the heap's to answer */
  CHECK(imalloc_freed_didalloc_(&fake, NULL) == -1);
  CHECK(depth() == want);
  CHECK(depth() == want);  /* again, from wherever the ring now starts */
  /* noted: 0 without asking the heap; forgotten: the heap's answer */
  imalloc_freed_note_(a);
  imalloc_freed_note_(b);
  heap.didallocs = 0;
  if (want >= 2) {
    CHECK(imalloc_freed_didalloc_(&fake, a) == 0);
    CHECK(heap.didallocs == 0);
  }
  CHECK(imalloc_freed_didalloc_(&fake, b) == 0);
  imalloc_freed_forget_(a);
  CHECK(imalloc_freed_didalloc_(&fake, a) == 1);
  CHECK(imalloc_freed_didalloc_(&fake, b) == 0);
  imalloc_freed_forget_(b);
  CHECK(imalloc_freed_didalloc_(&fake, b) == 1);
  /* a forgotten slot holds no NULL either */
  CHECK(imalloc_freed_didalloc_(&fake, NULL) == -1);
  /* a block native code freed is not known: the heap answers, GetSize
  ** unasked (the record alone) */
  f_free(&fake, a);
  getsizes = heap.getsizes;
  CHECK(imalloc_freed_didalloc_(&fake, a) == 1);
  CHECK(heap.getsizes == getsizes);
  /* a second probe changes nothing, asks nothing */
  imalloc_freed_note_(b);
  heap.allocs = heap.frees = 0;
  imalloc_freed_probe(&fake);
  CHECK(heap.allocs == 0 && heap.frees == 0);
  CHECK(imalloc_freed_didalloc_(&fake, b) == 0);
}

static void check_tells(void) {
  void *live = f_alloc(&fake, 16), *gone = f_alloc(&fake, 16);
  CHECK(on() == 1);
  f_free(&fake, gone);
  /* the heap's DidAlloc, then GetSize for a 1 only */
  CHECK(imalloc_freed_didalloc_(&fake, live) == 1);
  CHECK(imalloc_freed_didalloc_(&fake, gone) == 0);
  CHECK(imalloc_freed_didalloc_(&fake, NULL) == -1);
  CHECK(imalloc_freed_didalloc_(&fake, markers) == 0);
  CHECK(heap.getsize_of_other == 0);
  /* only the allocator the probe found is asked so: another may give -1
  ** for a live block */
  CHECK(imalloc_freed_didalloc_(&other, gone) == 1);
  /* no record: noting and forgetting change nothing */
  imalloc_freed_note_(live);
  CHECK(imalloc_freed_didalloc_(&fake, live) == 1);
  imalloc_freed_forget_(gone);
  CHECK(imalloc_freed_didalloc_(&fake, gone) == 0);
  /* a second probe changes nothing, asks nothing */
  heap.allocs = heap.frees = 0;
  imalloc_freed_probe(&fake);
  CHECK(heap.allocs == 0 && heap.frees == 0);
  CHECK(imalloc_freed_didalloc_(&fake, gone) == 0);
}

int main(int argc, char **argv) {
  const char *c = argc > 1 ? argv[1] : "";
  heap.delay = 5;
  heap.allocs_left = -1;
  canary = f_alloc(&fake, 16);  /* live for good */
  heap.allocs = 0;
  if (strcmp(c, "off") == 0) {
    heap.delay = 0;
    imalloc_freed_probe(&fake);
    CHECK(on() == 0);
    CHECK(heap.allocs == 1 && heap.frees == 1 && heap.didallocs == 1);
  } else if (strcmp(c, "nomem") == 0) {
    heap.allocs_left = 0;
    imalloc_freed_probe(&fake);
    CHECK(on() == 0);
    CHECK(heap.frees == 0 && heap.didallocs == 0);
  } else if (strcmp(c, "nocalloc") == 0) {
    calloc_fails = 1;
    imalloc_freed_probe(&fake);
    CHECK(on() == 0);
  } else if (strcmp(c, "tells") == 0) {
    heap.size_tells = 1;
    imalloc_freed_probe(&fake);
    /* Alloc, Free, DidAlloc, GetSize: no count of the delay */
    CHECK(heap.allocs == 1 && heap.frees == 1 && heap.getsizes == 1);
    check_tells();
  } else if (strcmp(c, "record") == 0) {
    heap.size_tells = 1;  /* but IMALLOC_FREED_RECORD=1 */
    imalloc_freed_probe(&fake);
    CHECK(heap.allocs == 6 && heap.frees == 6);
    check_record(5);
  } else if (strcmp(c, "sizes") == 0) {
    imalloc_freed_probe(&fake);
    check_record(5);
  } else if (strcmp(c, "maxdepth") == 0) {
    heap.delay = NBLOCKS;
    imalloc_freed_probe(&fake);
    CHECK(heap.allocs == 4097);
    check_record(4096);
  } else if (strcmp(c, "allocfail") == 0) {
    heap.allocs_left = 4;  /* the probe's first block and 3 more */
    imalloc_freed_probe(&fake);
    heap.allocs_left = -1;
    check_record(3);
  } else if (strcmp(c, "once") == 0) {
    heap.lie_once = 1;
    imalloc_freed_probe(&fake);
    heap.lie_once = 0;
    check_record(1);
  } else {
    printf("usage: freed_record off|nomem|nocalloc|tells|record|sizes|"
           "maxdepth|allocfail|once\n");
    return 2;
  }
  return check_report();
}
