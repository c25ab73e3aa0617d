/*
** alloc.c: the core operations (Alloc, Free, Realloc, GetSize, DidAlloc,
** their fast paths inline here), the IMalloc singleton, the exported
** functions and statistics. See internal.h for the design.
*/
#include "internal.h"

#include <string.h>

/* ---- small blocks: the thread cache's fast paths ------------------------- */

/* The fast paths read the cache's address without setting it up (the slow
** paths do; until then it is ta_nocache, whose bins send every call
** there): with every call a tail call, they save no registers. */
static HOT void *small_alloc(size_t n, unsigned c, uint32_t spy) {
  struct tcache *tc = ta_self;
  struct bin *b;
  void *p;
  b = &tc->bins[c];
  p = b->head;
  if (UNLIKELY(!p)) return ta_small_alloc_slow(n, spy);
  b->head = NEXT(p);
  b->room++;
  atomic_store_explicit(SLOT_AT(p), b->word | spy | (uint32_t)n, RLX);
  if (UNLIKELY(spy)) atomic_fetch_add_explicit(&ta_spied, 1, RLX);
  UNPOISON(p, n);
  VG_ALLOC(p, n);
  tc_count_fast(tc, 1, (int64_t)n);
  return p;
}

/* p was claimed (its slot, at `slot`, swapped from old to 0): back to the
** free lists of tc, this thread's cache. The caller counts a spied block
** out of ta_spied. With `any`, p may be of another shard's chunk (the
** entry e says): then the slow path sends it back to that chunk. Without,
** the caller found p handed out by this thread's shard (its slot says),
** and p goes to this thread's bin even if its chunk has changed shard
** since: the slot is a hint, which the chunk's shard only corrects on the
** slow paths. */
/* e is the chunk's table entry: its class bits, class << 4, are also the
** offset of the class's bin (struct bin is 16 bytes) and geometry. */
_Static_assert(sizeof(struct bin) == 1u << E_CLS_SHIFT, "bin size");
static HOT struct bin *entry_bin(struct tcache *tc, uintptr_t e) {
  return (struct bin *)((char *)tc->bins + (e & E_CLS));
}

/* p (entry e, slot `slot`) was claimed: freed for the tools, and its slot
** kept in it for the Alloc that hands it out again. */
static HOT void block_freed(void *p, uintptr_t e, _Atomic uint32_t *slot) {
  VG_FREE(p);
  POISON(p, entry_geom(e)->bsize);
  UNPOISON(p, 2 * sizeof(void *));
  SLOT_AT(p) = slot;
}

static HOT void small_release(struct tcache *tc, void *p, uintptr_t e,
                              uint32_t old, _Atomic uint32_t *slot, int any) {
  struct bin *b = entry_bin(tc, e);
  block_freed(p, e, slot);
  if (UNLIKELY(!b->room || (any && (e & E_SHARD) != tc->ekey))) {
    ta_small_release_slow(p, e, old);
    return;
  }
  NEXT(p) = b->head;
  b->head = p;
  b->room--;
  tc_count_fast(tc, -1, -(int64_t)(old & SLOT_SIZE));
}

/* Claims the small block whose slot is `slot` (found for the chunk entry
** e): the slot swapped from live (of e's class) to 0. The old slot word,
** or 0 if the slot is not a live block of e's class (another thread
** claimed it first, or its chunk changed class meanwhile). */
static inline uint32_t small_claim(_Atomic uint32_t *slot, uintptr_t e) {
  uint32_t w = atomic_load_explicit(slot, RLX);
  do {
    if (!slot_live(w, e)) return 0;
  } while (!atomic_compare_exchange_weak_explicit(slot, &w, 0, ACQ, RLX));
  return w;
}

/* ---- the core operations (no spy) --------------------------------------- */

/* The sizes of the table (up to 1024 bytes) first: one compare for them. */
static HOT void *core_alloc(size_t n, uint32_t spy) {
  if (LIKELY(n <= 1024 - SPY_PAD(spy)))  /* n + 1 may wrap: not tested */
    return small_alloc(n, ta_cls16[(n + SPY_PAD(spy) + 15) >> 4], spy);
  if (LIKELY(n <= SMALL_MAX - SPY_PAD(spy)))
    return small_alloc(n, size_class(n + SPY_PAD(spy)), spy);
  return ta_large_alloc(n, spy);
}

/* Free of the small block at p (entry e, slot `slot`) whose slot word w,
** as core_free read it, is not a live block without the SPY flag handed
** out by this thread's shard: a spied block or another thread's, claimed
** unless another thread freed it first; or none. */
static NOINLINE void free_other(void *p, uintptr_t e, _Atomic uint32_t *slot,
                                uint32_t w) {
  struct tcache *tc;
  uintptr_t *r, v;
  do {
    if (!slot_live(w, e)) return;
  } while (!atomic_compare_exchange_weak_explicit(slot, &w, 0, ACQ, RLX));
  if (w & SLOT_SPY) atomic_fetch_sub_explicit(&ta_spied, 1, RLX);
  tc = ta_self;
  /* class << 3 */
  r = (uintptr_t *)((char *)tc->remote + ((e & E_CLS) >> 1));
  v = *r;
  if ((e & E_SHARD) == tc->ekey || !rb_room(v)) {
    small_release(tc, p, e, w, slot, 1);
    return;
  }
  /* Another thread's chunk, and this thread's cache is active: on the
  ** class's list of such blocks, back to their chunks with the batch. */
  block_freed(p, e, slot);
  if (UNLIKELY(!rb_room(rb_push(r, v, p))))
    ta_remote_flush(tc, (unsigned)entry_class(e));
  tc_count_fast(tc, -1, -(int64_t)(w & SLOT_SIZE));
}

static HOT void core_free(void *p) {
  uintptr_t u = (uintptr_t)p, e = table_get(u);
  struct tcache *tc;
  struct bin *b;
  _Atomic uint32_t *slot;
  uint32_t old;
  if (!e) return;
  if (UNLIKELY(e & E_LARGE)) {
    ta_large_free(u);
    return;
  }
  slot = small_slot(e, u);
  if (!slot) return;
  tc = ta_self;
  b = entry_bin(tc, e);
  old = atomic_load_explicit(slot, RLX);
  do {  /* small_claim, with no second test of the result */
    if (UNLIKELY(!slot_mine(old, b->word))) {
      free_other(p, e, slot, old);
      return;
    }
  } while (UNLIKELY(
      !atomic_compare_exchange_weak_explicit(slot, &old, 0, ACQ, RLX)));
  small_release(tc, p, e, old, slot, 0);
}

#if IMALLOC_DELAY_FREES
/* Test builds only (-DIMALLOC_DELAY_FREES=ON): frees delayed as Wine's
** checking heap delays them, by tests/delayfree/delay.c, under the spy as
** in ole32. A freed small block stays live-looking (DidAlloc 1, GetSize
** -1, Free and Realloc refuse it) until IMALLOC_DELAY_FREES later frees;
** ta_free_now frees one for good. Normal builds compile none of this. */
TA_HIDDEN int ta_delay_free(void *p);
TA_HIDDEN int ta_delay_has(void *p);
TA_HIDDEN void ta_free_now(void *p);
void ta_free_now(void *p) { core_free(p); }
static void delayed_free(void *p) {
  if (!ta_delay_free(p)) core_free(p);
}
#define core_free delayed_free
#endif

static HOT size_t core_getsize(void *p) {
  uintptr_t u = (uintptr_t)p, e = table_get(u);
  _Atomic uint32_t *slot;
  uint32_t w;
  if (!e) return (size_t)-1;
  if (UNLIKELY(e & E_LARGE))
    return large_at(e, u) ? (size_t)(e >> E_SHIFT) : (size_t)-1;
  slot = small_slot(e, u);
  if (!slot) return (size_t)-1;
  w = atomic_load_explicit(slot, RLX);
  return slot_live(w, e) ? (size_t)(w & SLOT_SIZE) : (size_t)-1;
}

static HOT int core_didalloc(void *p) {
  uintptr_t u = (uintptr_t)p, e = table_get(u);
  _Atomic uint32_t *slot;
  if (!e) return 0;
  if (UNLIKELY(e & E_LARGE)) return large_at(e, u);
  slot = small_slot(e, u);
  return slot && slot_live(atomic_load_explicit(slot, RLX), e);
}

#if IMALLOC_DELAY_FREES
static size_t delayed_getsize(void *p) {
  return ta_delay_has(p) ? (size_t)-1 : core_getsize(p);
}
static int delayed_didalloc(void *p) {
  return ta_delay_has(p) || core_didalloc(p);
}
#define core_getsize delayed_getsize
#define core_didalloc delayed_didalloc
#endif

/* Whether p is the start of, or lies inside, a live block allocated under
** the spy: a spy may hand out a pointer past a header of its own. */
BOOL ta_spyed(void *p) {
  uintptr_t u = (uintptr_t)p, e = table_get(u), rel, c;
  const struct geom *g;
  uint32_t w;
  if (!e) return 0;
  if (e & E_LARGE) {  /* find the head: it holds the flags and size */
    uintptr_t base = u & ~(CHUNK_SIZE - 1);
    if (e & E_CONT) {
      base -= (e >> E_SHIFT) << CHUNK_SHIFT;
      e = table_get(base);
    }
    return (e & (E_LARGE | E_CONT | L_LIVE | L_SPY)) ==
               (E_LARGE | L_LIVE | L_SPY) &&
           u - base < page_up((size_t)(e >> E_SHIFT));
  }
  c = e & ~(CHUNK_SIZE - 1);
  g = entry_geom(e);
  rel = u - c - BLOCKS_OFF;
  if (rel >= g->span) return 0;
  w = atomic_load_explicit(
      block_slot(c, ((uint64_t)rel * g->recip) >> RECIP_SHIFT), RLX);
  return slot_live(w, e) && (w & SLOT_SPY);
}

/* Moves the live small block p (entry e and slot `slot`, as its Realloc
** found them) to a new block of n bytes: allocate first, so that a
** failure leaves p as it was, then claim p, which another thread may have
** freed meanwhile (the allocation may wait for a lock). */
static void *move_small(void *p, size_t n, uint32_t spy, uintptr_t e,
                        _Atomic uint32_t *slot) {
  void *q = core_alloc(n, spy);
  uint32_t old;
  size_t oldn;
  if (!q) return NULL;
  old = small_claim(slot, e);
  if (!old) {  /* a racing Free gave the address away */
    core_free(q);
    return NULL;
  }
  oldn = old & SLOT_SIZE;
  memcpy(q, p, oldn < n ? oldn : n);
#if IMALLOC_DELAY_FREES
  /* the old block freed as Free frees it: delayed */
  atomic_store_explicit(slot, old, RLX);
  core_free(p);
  return q;
#endif
  if (old & SLOT_SPY) atomic_fetch_sub_explicit(&ta_spied, 1, RLX);
  small_release(tc_self(), p, e, old, slot, 1);
  return q;
}

/* The same for the live large block p (large.c's Realloc to a small size,
** or when it cannot grow the mapping). */
void *ta_move_block(void *p, size_t n, uint32_t spy) {
  uintptr_t u = (uintptr_t)p, s;
  void *q = core_alloc(n, spy);
  size_t oldn;
  if (!q) return NULL;
  if (!ta_large_claim(u, &s)) {  /* a racing Free gave it away */
    core_free(q);
    return NULL;
  }
  oldn = (size_t)(s >> E_SHIFT);
  memcpy(q, p, oldn < n ? oldn : n);
  ta_large_release(u, s);
  return q;
}

static void *core_realloc(void *p, size_t n, uint32_t spy) {
  uintptr_t u = (uintptr_t)p, e;
  const struct geom *g;
  _Atomic uint32_t *slot;
  uint32_t w, nw;
  if (!p) return core_alloc(n, spy);
  if (!n) {
    core_free(p);
    return NULL;
  }
  e = table_get(u);
  if (!e || n > MAX_ALLOC) return NULL;
  if (e & E_LARGE) return ta_large_realloc(p, n, spy);
  slot = small_slot(e, u);
  if (!slot) return NULL;
  w = atomic_load_explicit(slot, RLX);
  if (!slot_live(w, e)) return NULL;
  g = entry_geom(e);
  /* In place when it fits, unless that would strand most of a block
  ** above 128 bytes. */
  if (n + SPY_PAD(spy) <= g->bsize && (g->bsize <= 128 || n > g->bsize / 4)) {
    nw = (w & ~SLOT_SIZE) | spy | (uint32_t)n;
    if (!atomic_compare_exchange_strong_explicit(slot, &w, nw, RLX, RLX))
      return NULL;
    if (spy && !(w & SLOT_SPY)) atomic_fetch_add_explicit(&ta_spied, 1, RLX);
    UNPOISON(p, n);
    if (n < (w & SLOT_SIZE)) POISON((char *)p + n, (w & SLOT_SIZE) - n);
    VG_RESIZE(p, w & SLOT_SIZE, n);
    ta_tc_count(tc_self(), 0, (int64_t)n - (int64_t)(w & SLOT_SIZE));
    return p;
  }
  return move_small(p, n, spy, e, slot);
}

#if IMALLOC_DELAY_FREES
static void *delayed_realloc(void *p, size_t n, uint32_t spy) {
  return p && n && ta_delay_has(p) ? NULL : core_realloc(p, n, spy);
}
#define core_realloc delayed_realloc
#endif

/* The same, callable from the other files (the spy's paths). */
void *ta_alloc(size_t n, uint32_t spy) { return core_alloc(n, spy); }
void *ta_realloc(void *p, size_t n, uint32_t spy) {
  return core_realloc(p, n, spy);
}
void ta_free(void *p) { core_free(p); }
size_t ta_getsize(void *p) { return core_getsize(p); }
int ta_didalloc(void *p) { return core_didalloc(p); }

/* ---- the IMalloc singleton ------------------------------------------------ */

#define SPYING() \
  UNLIKELY(atomic_load_explicit(&ta_spy, RLX) != NULL)

static int iid_eq(REFIID a, const IID *b) {
  return memcmp(a, b, sizeof(IID)) == 0;
}

static HRESULT STDMETHODCALLTYPE m_QueryInterface(IMalloc *This, REFIID riid,
                                                  void **ppv);

static ULONG STDMETHODCALLTYPE m_AddRef(IMalloc *This) {
  (void)This;
  return 2;  /* a static singleton; Wine answers the same */
}

static ULONG STDMETHODCALLTYPE m_Release(IMalloc *This) {
  (void)This;
  return 1;
}

/* The methods' bodies, inline in the methods and in the exported
** functions alike (CoTaskMemAlloc and CoTaskMemFree are not one more call
** in front of the method). */
static HOT void *do_alloc(SIZE_T cb) {
  if (SPYING()) return ta_spy_alloc(cb);
  return core_alloc(cb, 0);
}

/* NULL is tested only for the spy: without one, the table's entry of the
** region at 0 is 0 (nothing of ours is mapped there), as for any address
** that is not ours. */
static HOT void do_free(void *pv) {
  if (SPYING()) {
    if (pv) ta_spy_free(pv);
    return;
  }
  core_free(pv);
}

static void *STDMETHODCALLTYPE m_Alloc(IMalloc *This, SIZE_T cb) {
  (void)This;
  return do_alloc(cb);
}

static void *STDMETHODCALLTYPE m_Realloc(IMalloc *This, void *pv, SIZE_T cb) {
  (void)This;
  if (SPYING()) return ta_spy_realloc(pv, cb);
  return core_realloc(pv, cb, 0);
}

static void STDMETHODCALLTYPE m_Free(IMalloc *This, void *pv) {
  (void)This;
  do_free(pv);
}

static SIZE_T STDMETHODCALLTYPE m_GetSize(IMalloc *This, void *pv) {
  (void)This;
  if (!pv) return (SIZE_T)-1;
  if (SPYING()) return ta_spy_getsize(pv);
  return core_getsize(pv);
}

static int STDMETHODCALLTYPE m_DidAlloc(IMalloc *This, void *pv) {
  (void)This;
  if (!pv) return -1;
  if (SPYING()) return ta_spy_didalloc(pv);
  return core_didalloc(pv);
}

/* Gives free memory back: every thread's cached blocks to the shared
** lists (tcache.c), the pages of every empty chunk and the cached large
** mappings to the system. */
static void STDMETHODCALLTYPE m_HeapMinimize(IMalloc *This) {
  (void)This;
  if (SPYING()) {
    ta_spy_minimize();
    return;
  }
  ta_minimize();
}

static const IMallocVtbl g_vtbl = {
  m_QueryInterface, m_AddRef, m_Release, m_Alloc, m_Realloc,
  m_Free, m_GetSize, m_DidAlloc, m_HeapMinimize
};

static IMalloc g_malloc = { &g_vtbl };

static HRESULT STDMETHODCALLTYPE m_QueryInterface(IMalloc *This, REFIID riid,
                                                  void **ppv) {
  static const IID iid_unknown = IMALLOC_IID_IUNKNOWN;
  static const IID iid_malloc = IMALLOC_IID_IMALLOC;
  (void)This;
  if (!ppv) return E_POINTER;
  if (riid && (iid_eq(riid, &iid_unknown) || iid_eq(riid, &iid_malloc))) {
    *ppv = &g_malloc;
    return S_OK;
  }
  *ppv = NULL;  /* COM's rule (Wine leaves it untouched) */
  return riid ? E_NOINTERFACE : E_INVALIDARG;
}

/* ---- exported functions ------------------------------------------------- */

HRESULT imalloc_CoGetMalloc(DWORD context, IMalloc **out) {
  if (!out) return E_POINTER;
  if (context != MEMCTX_TASK) {
    *out = NULL;
    return E_INVALIDARG;
  }
  *out = &g_malloc;
  return S_OK;
}

void *imalloc_CoTaskMemAlloc(SIZE_T cb) {
  return do_alloc(cb);
}

void *imalloc_CoTaskMemRealloc(void *p, SIZE_T cb) {
  return m_Realloc(&g_malloc, p, cb);
}

void imalloc_CoTaskMemFree(void *p) {
  do_free(p);
}

void imalloc_taskalloc_stats(struct imalloc_taskstats *out) {
  int64_t blocks, bytes;
  if (!out) return;
  ta_stats_counts(&blocks, &bytes);
  out->live_blocks = blocks > 0 ? (size_t)blocks : 0;
  out->live_bytes = bytes > 0 ? (size_t)bytes : 0;
  out->mapped_bytes = atomic_load_explicit(&ta_mapped, RLX);
  out->metadata_bytes = atomic_load_explicit(&ta_meta, RLX);
  out->bookkeeping_bytes_per_block = sizeof(uint32_t);
  out->spied_blocks = atomic_load_explicit(&ta_spied, RLX);
}
