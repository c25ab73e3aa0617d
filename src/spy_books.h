/*
** spy_books.h: the IMallocSpy and its books (spy_books.c), with no Lua:
** what imalloc.spy (spy.c) drives, and what a C test can drive alone.
**
** One spy per process. Its callbacks arrive on any thread, also while a
** Lua state collects garbage, so nothing here calls into Lua; the books
** (the outstanding spied blocks, counters, the fault rule) live in the C
** runtime's heap, never in the task allocator they watch.
*/
#ifndef IMALLOC_SPY_BOOKS_H
#define IMALLOC_SPY_BOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "com_abi.h"
#include "platform.h"

/* "file:line" of the Lua line that asked for a block: a short_src
** (at most 60 characters, Lua's LUA_IDSIZE) and a line number. */
#define IMALLOC_WHERE_MAX (60 + 16)

/* An outstanding spied block. */
typedef struct imalloc_SpyRecord {
  void *addr;
  size_t size;
  uint64_t seq;                   /* 1, 2, ... in the order of allocation */
  char where[IMALLOC_WHERE_MAX];  /* "" when not tagged by the binding */
} imalloc_SpyRecord;

/* A fault rule; `on` is 0 when there is none. */
typedef struct imalloc_SpyRule {
  int on;
  uint64_t nth;       /* the nth counted allocation fails (0: no nth) */
  int every;          /* ... and every nth after it */
  int has_above;
  size_t above;       /* every allocation of more than `above` bytes fails */
  double fraction;    /* this fraction of them fails (0: none) */
  uint64_t prng;      /* the state of the generator that decides */
  uint64_t counted;   /* allocations of at least one byte since the rule */
  uint64_t phase;     /* of them, since the last one `every` failed */
} imalloc_SpyRule;

/* The books' counters, and the spy's state. */
typedef struct imalloc_SpySummary {
  size_t count, bytes;
  uint64_t allocs, reallocs, frees, failures, dropped;
  int active, pending;
} imalloc_SpySummary;

/* Registers the spy with `rule`; tags blocks with where they come from
** when `where`. S_OK, CO_E_OBJISREG while registered or a stop pending, or
** the backend's failure. */
IMALLOC_HIDDEN HRESULT imalloc_spy_start(const imalloc_SpyRule *rule,
                                         int where);

/* Revokes the spy: S_OK; E_ACCESSDENIED while spied blocks live (the spy
** is then let go when the last one is freed); CO_E_OBJNOTREG when idle. */
IMALLOC_HIDDEN HRESULT imalloc_spy_stop(void);

/* Sets the fault rule of an active spy; 0 if it is not active. */
IMALLOC_HIDDEN int imalloc_spy_setrule(const imalloc_SpyRule *rule);

/* Copies up to `room` outstanding records into `out` and the counters into
** *sum; returns the number of records there are: more than `room` means
** nothing was copied and a larger `out` is needed. */
IMALLOC_HIDDEN size_t imalloc_spy_snapshot(imalloc_SpyRecord *out,
                                           size_t room,
                                           imalloc_SpySummary *sum);

/* The session the binding's tags name (binding.h): that of a registered
** spy that records where blocks come from, else 0. */
IMALLOC_HIDDEN extern imalloc_atomic_int imalloc_spy_tagging;

/* Gives this thread's next allocation through `m` the tag `where`. */
IMALLOC_HIDDEN void imalloc_spy_settagtext(const char *where, IMalloc *m);

#endif
