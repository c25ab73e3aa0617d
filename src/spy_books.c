/*
** spy_books.c: an IMallocSpy for finding leaks and testing out-of-memory
** paths, and its books (spy_books.h). No Lua: imalloc.spy (spy.c) drives it.
**
** One static spy object per process, registered with CoRegisterMallocSpy
** (the built-in allocator's on POSIX). Its callbacks arrive on any thread,
** also while a Lua state collects garbage, so they never call into Lua: they
** keep their books (the outstanding spied blocks, counters, the fault rule)
** with the C runtime's malloc, never with the task allocator they watch,
** under a spinlock of their own. The allocator serialises a Pre call and
** its Post call (both ole32 and taskalloc/cospy.c hold their spy lock in
** between), so what a Pre call hands to its Post call is kept in
** thread-local storage.
**
** Locks, outermost first: `control` (start and stop), the allocator's own
** spy lock, `lock` (the books). Nothing is called while `lock` is held,
** and nothing that takes `control` runs inside the allocator, so the order
** cannot be inverted.
**
** Where from: while the spy is registered, the binding's allocation paths
** call imalloc_spy_tag (binding.h), which puts "file:line" of the Lua
** caller in a thread-local slot (imalloc_spy_settagtext); the next Pre(Re)Alloc on that thread takes
** it (if that call went to the task allocator), and its Post call attaches
** it to the block's record.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "spy_books.h"

typedef imalloc_SpyRecord Record;
typedef imalloc_SpyRule Rule;


/*
** {======================================================
** The books
** =======================================================
*/

enum { IDLE, ACTIVE, PENDING };

/* Everything below is guarded by `lock`. */
static struct {
  int state;
  int session;        /* 1, 2, ... by each start: tags name theirs */
  IMalloc *task;      /* the task allocator: only its calls are tagged */
  /* the outstanding blocks: records in a dense array, found through an
  ** open-addressing index (0: empty slot, else the record's index + 1) */
  Record *rec;
  size_t nrec, caprec;
  uint32_t *index;
  size_t capindex;    /* a power of two, or 0 */
  size_t bytes;
  uint64_t seq, allocs, reallocs, frees, failures, dropped;
  Rule rule;
} books;

static imalloc_spinlock lock = IMALLOC_SPINLOCK_INIT;

static imalloc_spinlock control = IMALLOC_SPINLOCK_INIT;

static imalloc_atomic_int refs;

/* What the binding checks before tagging (binding.h): the session while
** the spy is registered and records where blocks come from, else 0. */
imalloc_atomic_int imalloc_spy_tagging;

/* Critical sections are a few dozen instructions (a table growth or a
** report's copy at most), and the allocator already serialises the
** callbacks, so the lock spins. */
static void lock_books(void) {
  imalloc_spin_lock(&lock);
}

static void unlock_books(void) {
  imalloc_spin_unlock(&lock);
}

static void lock_control(void) {
  imalloc_spin_lock(&control);
}

static void unlock_control(void) {
  imalloc_spin_unlock(&control);
}

static size_t slot_of(const void *addr, size_t cap) {
  uint64_t h = (uint64_t)(uintptr_t)addr >> 4;
  h *= UINT64_C(0x9E3779B97F4A7C15);
  return (size_t)(h >> 32) & (cap - 1);
}

/* The index slot that holds `addr`, or the empty slot where it would go. */
static size_t probe(const void *addr) {
  size_t i = slot_of(addr, books.capindex);
  while (books.index[i] != 0 && books.rec[books.index[i] - 1].addr != addr)
    i = (i + 1) & (books.capindex - 1);
  return i;
}

/* Rebuilds the index with `cap` slots; 0 if out of memory. */
static int grow_index(size_t cap) {
  uint32_t *index = (uint32_t *)calloc(cap, sizeof *index);
  size_t r;
  if (index == NULL) return 0;
  free(books.index);
  books.index = index;
  books.capindex = cap;
  for (r = 0; r < books.nrec; r++)
    books.index[probe(books.rec[r].addr)] = (uint32_t)(r + 1);
  return 1;
}

/* Adds a record (its addr is not in the books); counts it as dropped when
** memory for the books runs out. */
static void add(const Record *r) {
  size_t i;
  if (books.nrec == books.caprec) {
    size_t cap = books.caprec ? 2 * books.caprec : 64;
    Record *rec = cap <= UINT32_MAX - 1
        ? (Record *)realloc(books.rec, cap * sizeof *rec) : NULL;
    if (rec == NULL) {
      books.dropped++;
      return;
    }
    books.rec = rec;
    books.caprec = cap;
  }
  if (2 * (books.nrec + 1) > books.capindex &&
      !grow_index(books.capindex ? 2 * books.capindex : 128)) {
    books.dropped++;
    return;
  }
  i = probe(r->addr);
  if (books.index[i] != 0) {
    /* the address came back without a free the spy saw: the new block
    ** replaces the record */
    Record *old = &books.rec[books.index[i] - 1];
    books.bytes -= old->size;
    *old = *r;
  } else {
    books.rec[books.nrec] = *r;
    books.nrec++;
    books.index[i] = (uint32_t)books.nrec;
  }
  books.bytes += r->size;
}

/* Takes the record of `addr` out of the books into *out; 0 if none. */
static int take(const void *addr, Record *out) {
  size_t i, j, k, r, last;
  if (books.nrec == 0 || addr == NULL) return 0;
  i = probe(addr);
  if (books.index[i] == 0) return 0;
  r = books.index[i] - 1;
  *out = books.rec[r];
  books.bytes -= out->size;
  /* delete slot i, shifting back the entries of its cluster that it
  ** separated from their home slot (no tombstones) */
  j = i;
  for (;;) {
    books.index[i] = 0;
    for (;;) {
      j = (j + 1) & (books.capindex - 1);
      if (books.index[j] == 0) goto deleted;
      k = slot_of(books.rec[books.index[j] - 1].addr, books.capindex);
      /* j's entry may move to i unless its home k lies cyclically in (i, j] */
      if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
      break;
    }
    books.index[i] = books.index[j];
    i = j;
  }
deleted:
  /* keep the records dense: the last one moves into the hole */
  last = books.nrec - 1;
  if (r != last) {
    books.rec[r] = books.rec[last];
    books.index[probe(books.rec[r].addr)] = (uint32_t)(r + 1);
  }
  books.nrec--;
  return 1;
}

/* Forgets every block and frees the tables. */
static void clear_books(void) {
  free(books.rec);
  free(books.index);
  books.rec = NULL;
  books.index = NULL;
  books.nrec = books.caprec = books.capindex = 0;
  books.bytes = 0;
}

/* splitmix64: a seeded, platform-independent sequence. */
static uint64_t next_random(uint64_t *state) {
  uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

/* Whether the rule fails an allocation of cb > 0 bytes; counts it. */
static int rule_fails(size_t cb) {
  Rule *r = &books.rule;
  int fails = 0;
  if (!r->on) return 0;
  r->counted++;
  /* every nth: a countdown, not counted % nth, whose 64-bit division
  ** would make 32-bit mingw-w64 builds need libgcc's DLL */
  if (r->nth != 0 && r->every) {
    if (++r->phase == r->nth) {
      r->phase = 0;
      fails = 1;
    }
  } else {
    fails = r->counted == r->nth;  /* nth 0: counted is at least 1 */
  }
  if (r->has_above && cb > r->above) fails = 1;
  /* drawn every time, so the sequence is the seed's: 53 random bits as a
  ** double in [0, 1); a fraction of 0 fails none */
  if ((double)(next_random(&r->prng) >> 11) / 9007199254740992.0 <
      r->fraction)
    fails = 1;
  if (fails) books.failures++;
  return fails;
}

/* }====================================================== */


/*
** {======================================================
** The spy object
** =======================================================
*/

enum { NONE, ALLOC, MOVE, FREED };

/* What one thread hands from a Pre call to its Post call, and the tag.
** Every Pre(Re)Alloc sets `kind` on each of its paths, and the allocator
** calls a Post only right after its Pre on the same thread (none after a
** Pre that failed the call), so a Post call reads what its own Pre set. */
typedef struct ThreadState {
  char tag[IMALLOC_WHERE_MAX];
  int tag_session;       /* 0: no tag */
  IMalloc *tag_malloc;   /* the IMalloc the tagged call goes to */
  int quiet;             /* the spy's own Alloc: not in the books */
  int kind;              /* of the call in flight */
  size_t size;
  int tagged;
  int had_old;
  Record old;
} ThreadState;

/* This thread's ThreadState (platform.h). */
IMALLOC_THREAD_STATE(ThreadState, thread_state)

/* Moves the binding's tag, if any, into the call in flight. A tag whose
** call did not reach the spy (a handle over another IMalloc, a spy revoked
** meanwhile) is dropped by the next call, not given to its block. */
static void take_tag(ThreadState *t) {
  t->tagged = t->tag_session != 0 && t->tag_session == books.session &&
             t->tag_malloc == books.task;
  t->tag_session = 0;
}

static void fill(ThreadState *t, Record *r, void *addr, const Record *old) {
  r->addr = addr;
  r->size = t->size;
  r->seq = ++books.seq;
  if (t->tagged)
    memcpy(r->where, t->tag, sizeof r->where);
  else if (old)
    memcpy(r->where, old->where, sizeof r->where);
  else
    r->where[0] = '\0';
}

/* Nothing calls the spy after this (start replaces the rule). */
static void release_all(void) {
  lock_books();
  clear_books();
  books.state = IDLE;
  imalloc_atomic_set(&imalloc_spy_tagging, 0);
  unlock_books();
}

static HRESULT STDMETHODCALLTYPE s_QueryInterface(IMallocSpy *This,
                                                  REFIID riid, void **ppv) {
  static const IID iid_unknown = IMALLOC_IID_IUNKNOWN;
  static const IID iid_spy = IMALLOC_IID_IMALLOCSPY;
  if (ppv == NULL) return E_POINTER;
  if (riid != NULL && (memcmp(riid, &iid_unknown, sizeof(IID)) == 0 ||
                       memcmp(riid, &iid_spy, sizeof(IID)) == 0)) {
    imalloc_atomic_add(&refs, 1);
    *ppv = This;
    return S_OK;
  }
  *ppv = NULL;
  return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE s_AddRef(IMallocSpy *This) {
  (void)This;
  return (ULONG)imalloc_atomic_add(&refs, 1);
}

/* The last reference gone: the allocator has let the spy go (a revoke, or
** the free that completed a pending one). */
static ULONG STDMETHODCALLTYPE s_Release(IMallocSpy *This) {
  int n = imalloc_atomic_add(&refs, -1);
  (void)This;
  if (n == 0) release_all();
  return (ULONG)n;
}

static SIZE_T STDMETHODCALLTYPE s_PreAlloc(IMallocSpy *This, SIZE_T cb) {
  ThreadState *t = thread_state();
  int fails;
  (void)This;
  t->kind = NONE;
  if (t->quiet) return cb;
  lock_books();
  take_tag(t);
  fails = cb != 0 && rule_fails(cb);
  unlock_books();
  if (fails) return 0;
  t->kind = ALLOC;
  t->size = cb;
  return cb;
}

static void *STDMETHODCALLTYPE s_PostAlloc(IMallocSpy *This, void *p) {
  ThreadState *t = thread_state();
  (void)This;
  if (t->kind == ALLOC && p != NULL) {
    Record r;
    lock_books();
    fill(t, &r, p, NULL);
    books.allocs++;
    add(&r);
    unlock_books();
  }
  return p;
}

static void *STDMETHODCALLTYPE s_PreFree(IMallocSpy *This, void *p,
                                         BOOL spyed) {
  Record old;
  (void)This;
  (void)spyed;  /* the books know: a spied block has a record (the spy's own
                ** block, freed by first_allocation, has none) */
  lock_books();
  if (take(p, &old)) books.frees++;
  unlock_books();
  return p;
}

static void STDMETHODCALLTYPE s_PostFree(IMallocSpy *This, BOOL spyed) {
  (void)This;
  (void)spyed;
}

/* Realloc(NULL, n) is an allocation and may be failed; Realloc of a live
** block never is: the block must stay as it was, and allocators differ
** in what a 0 from PreRealloc does to it (README, "Fault injection").
** Realloc(p, 0) frees p. */
static SIZE_T STDMETHODCALLTYPE s_PreRealloc(IMallocSpy *This, void *p,
                                             SIZE_T cb, void **pnew,
                                             BOOL spyed) {
  ThreadState *t = thread_state();
  int fails = 0;
  (void)This;
  (void)spyed;
  *pnew = p;
  lock_books();
  take_tag(t);
  t->size = cb;
  if (p == NULL) {
    fails = cb != 0 && rule_fails(cb);
    t->kind = ALLOC;
  } else {
    t->had_old = take(p, &t->old);
    if (cb == 0) {
      if (t->had_old) books.frees++;
      t->kind = FREED;
    } else {
      t->kind = MOVE;
    }
  }
  unlock_books();
  return fails ? 0 : cb;
}

static void *STDMETHODCALLTYPE s_PostRealloc(IMallocSpy *This, void *p,
                                             BOOL spyed) {
  ThreadState *t = thread_state();
  Record r;
  (void)This;
  (void)spyed;
  lock_books();
  if (p != NULL) {  /* (a Realloc to 0 bytes answers NULL) */
    fill(t, &r, p, t->kind == MOVE && t->had_old ? &t->old : NULL);
    if (t->kind == ALLOC) books.allocs++; else books.reallocs++;
    add(&r);
  } else if (t->kind == MOVE && t->had_old) {
    add(&t->old);  /* a real failure: the block stays as it was */
  }
  unlock_books();
  return p;
}

static void *STDMETHODCALLTYPE s_PreGetSize(IMallocSpy *This, void *p,
                                            BOOL spyed) {
  (void)This;
  (void)spyed;
  return p;
}

static SIZE_T STDMETHODCALLTYPE s_PostGetSize(IMallocSpy *This, SIZE_T cb,
                                              BOOL spyed) {
  (void)This;
  (void)spyed;
  return cb;
}

static void *STDMETHODCALLTYPE s_PreDidAlloc(IMallocSpy *This, void *p,
                                             BOOL spyed) {
  (void)This;
  (void)spyed;
  return p;
}

static int STDMETHODCALLTYPE s_PostDidAlloc(IMallocSpy *This, void *p,
                                            BOOL spyed, int actual) {
  (void)This;
  (void)p;
  (void)spyed;
  return actual;
}

static void STDMETHODCALLTYPE s_HeapMinimize(IMallocSpy *This) {
  (void)This;
}

static const IMallocSpyVtbl spy_vtbl = {
  s_QueryInterface, s_AddRef, s_Release, s_PreAlloc, s_PostAlloc,
  s_PreFree, s_PostFree, s_PreRealloc, s_PostRealloc, s_PreGetSize,
  s_PostGetSize, s_PreDidAlloc, s_PostDidAlloc, s_HeapMinimize,
  s_HeapMinimize
};

static IMallocSpy spy = { &spy_vtbl };

/* Gives this thread's next allocation through `m` the tag `where`. */
void imalloc_spy_settagtext(const char *where, IMalloc *m) {
  ThreadState *t = thread_state();
  size_t n = 0;
  /* at most the room there is, reading no further than the string's end */
  while (n < sizeof t->tag - 1 && where[n] != '\0') {
    t->tag[n] = where[n];
    n++;
  }
  t->tag[n] = '\0';
  t->tag_session = imalloc_atomic_get(&imalloc_spy_tagging);
  t->tag_malloc = m;
}

/* }====================================================== */


/*
** {======================================================
** Start, stop, rule, report
** =======================================================
*/

/* Makes sure the allocator's own books exist before anyone asks it about
** a block. Wine 8's ole32 creates its table of spied blocks at the first
** spied allocation, and GetSize and DidAlloc read that table without
** checking: before it exists they fault. One quiet Alloc(0) and Free right
** after registering creates it (elsewhere they are merely two calls). */
static void first_allocation(IMalloc *m) {
  ThreadState *t = thread_state();
  t->quiet = 1;
  m->lpVtbl->Free(m, m->lpVtbl->Alloc(m, 0));
  t->quiet = 0;
}

HRESULT imalloc_spy_start(const imalloc_SpyRule *rule, int where) {
  IMalloc *task = NULL;
  HRESULT hr = imalloc_backend_getmalloc(MEMCTX_TASK, &task);
  if (hr < 0) return hr;
  if (task == NULL) return E_POINTER;
  /* the singleton stays: its address identifies it after this Release */
  task->lpVtbl->Release(task);
  lock_control();
  lock_books();
  if (books.state != IDLE) {
    /* registered, or a stop is pending: what the allocator would answer */
    unlock_books();
    unlock_control();
    return CO_E_OBJISREG;
  }
  /* the books are empty: release_all cleared them */
  books.state = ACTIVE;
  books.session = books.session < INT32_MAX ? books.session + 1 : 1;
  books.seq = books.allocs = books.reallocs = books.frees = 0;
  books.failures = books.dropped = 0;
  books.rule = *rule;
  books.task = task;
  unlock_books();
  /* our own reference while registering, as a COM creator holds one */
  imalloc_atomic_set(&refs, 1);
  hr = imalloc_backend_registerspy(&spy);
  if (hr >= 0) {
    first_allocation(task);
    lock_books();
    if (where && books.state == ACTIVE)
      imalloc_atomic_set(&imalloc_spy_tagging, books.session);
    unlock_books();
  }
  spy.lpVtbl->Release(&spy);  /* on failure, back to IDLE */
  unlock_control();
  return hr;
}

HRESULT imalloc_spy_stop(void) {
  HRESULT hr;
  int before;
  lock_control();
  lock_books();
  before = books.state;
  if (before == IDLE) {
    /* not ours to revoke: another module's spy may be registered */
    unlock_books();
    unlock_control();
    return CO_E_OBJNOTREG;
  }
  books.state = PENDING;  /* before the revoke: the release may follow it */
  books.rule.on = 0;
  unlock_books();
  hr = imalloc_backend_revokespy();
  if (hr < 0 && hr != E_ACCESSDENIED) {
    lock_books();
    if (books.state == PENDING) books.state = before;
    unlock_books();
  }
  unlock_control();
  return hr;
}

int imalloc_spy_setrule(const imalloc_SpyRule *rule) {
  int active;
  lock_books();
  active = books.state == ACTIVE;
  if (active) books.rule = *rule;
  unlock_books();
  return active;
}

size_t imalloc_spy_snapshot(imalloc_SpyRecord *out, size_t room,
                            imalloc_SpySummary *sum) {
  size_t n, i;
  lock_books();
  n = books.nrec;
  if (n <= room) {
    for (i = 0; i < n; i++) out[i] = books.rec[i];
    sum->count = n;
    sum->bytes = books.bytes;
    sum->allocs = books.allocs;
    sum->reallocs = books.reallocs;
    sum->frees = books.frees;
    sum->failures = books.failures;
    sum->dropped = books.dropped;
    sum->active = books.state == ACTIVE;
    sum->pending = books.state == PENDING;
  }
  unlock_books();
  return n;
}

/* }====================================================== */
