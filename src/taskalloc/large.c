/*
** large.c: blocks above 64 KiB. Each has its own mapping, 1 MiB aligned,
** described by its table entries only (internal.h): the head entry holds
** the requested size and the flags, so a block costs 8 bytes per MiB
** spanned. The mapping is the requested size rounded up to the page size.
**
** A freed mapping goes to a small cache (up to LCACHE_MAX mappings and
** ta_retain bytes, oldest out first) with its pages, so that freeing and
** allocating a block of the same size again costs no mmap and no page
** faults; HeapMinimize unmaps the cache. Realloc to a larger size grows
** the mapping where it is, or moves its pages to a new place with mremap,
** without copying them.
**
** Lookups and a racing release: DidAlloc, GetSize, Free, Realloc and the
** spy lookups read only table entries for a large block, never the block,
** so no lookup can fault, however it interleaves with a Free. The block's
** own bytes are read (Realloc's copy) only by the thread that claimed it
** (head swapped to 0) or marked it BUSY, which no other thread can then
** claim. A release clears the block's entries before it unmaps: while the
** range is still mapped nobody else can be given it, so no entry of a new
** owner (a chunk or large block of ours, mapped later at the same address)
** can be wiped by ours, and once the range is unmapped no stale entry of
** ours claims memory that is now someone else's.
*/
#include "internal.h"

#include <string.h>

#define LCACHE_MAX 16

struct mapping {
  uintptr_t base;
  size_t len;
};

static struct {
  pthread_mutex_t lock;
  struct mapping m[LCACHE_MAX];   /* oldest first */
  unsigned count;
  size_t bytes;
} g_lcache = { PTHREAD_MUTEX_INITIALIZER, { { 0, 0 } }, 0, 0 };

static void unmap_cached(uintptr_t base, size_t len) {
  UNPOISON((void *)base, len);  /* whoever maps the range next */
  ta_os_unmap((void *)base, len);
  atomic_fetch_sub_explicit(&ta_mapped, len, RLX);
}

/* A cached mapping of at least len bytes and at most twice that, its
** tail beyond len unmapped; 0 if none. */
static uintptr_t lcache_take(size_t len) {
  unsigned i, best = LCACHE_MAX;
  struct mapping got;
  pthread_mutex_lock(&g_lcache.lock);
  for (i = 0; i < g_lcache.count; i++) {
    size_t l = g_lcache.m[i].len;
    if (l >= len && l / 2 <= len &&
        (best == LCACHE_MAX || l < g_lcache.m[best].len))
      best = i;
  }
  if (best == LCACHE_MAX) {
    pthread_mutex_unlock(&g_lcache.lock);
    return 0;
  }
  got = g_lcache.m[best];
  memmove(&g_lcache.m[best], &g_lcache.m[best + 1],
          (g_lcache.count - best - 1) * sizeof got);
  g_lcache.count--;
  g_lcache.bytes -= got.len;
  pthread_mutex_unlock(&g_lcache.lock);
  if (got.len > len) unmap_cached(got.base + len, got.len - len);
  return got.base;
}

/* Keeps the freed mapping [base, base + len) (its entries cleared). */
static void lcache_put(uintptr_t base, size_t len) {
  struct mapping out[LCACHE_MAX + 1];
  unsigned nout = 0, i;
  POISON((void *)base, len);
  pthread_mutex_lock(&g_lcache.lock);
  if (len <= ta_retain) {
    if (g_lcache.count == LCACHE_MAX) {
      out[nout++] = g_lcache.m[0];
      g_lcache.bytes -= g_lcache.m[0].len;
      memmove(&g_lcache.m[0], &g_lcache.m[1],
              (LCACHE_MAX - 1) * sizeof out[0]);
      g_lcache.count--;
    }
    g_lcache.m[g_lcache.count].base = base;
    g_lcache.m[g_lcache.count].len = len;
    g_lcache.count++;
    g_lcache.bytes += len;
  } else {
    out[nout].base = base;
    out[nout++].len = len;
  }
  while (g_lcache.bytes > ta_retain) {  /* the oldest go */
    out[nout++] = g_lcache.m[0];
    g_lcache.bytes -= g_lcache.m[0].len;
    memmove(&g_lcache.m[0], &g_lcache.m[1],
            (g_lcache.count - 1) * sizeof out[0]);
    g_lcache.count--;
  }
  pthread_mutex_unlock(&g_lcache.lock);
  for (i = 0; i < nout; i++) unmap_cached(out[i].base, out[i].len);
}

void ta_large_cache_drain(void) {
  struct mapping out[LCACHE_MAX];
  unsigned n, i;
  pthread_mutex_lock(&g_lcache.lock);
  n = g_lcache.count;
  memcpy(out, g_lcache.m, n * sizeof out[0]);
  g_lcache.count = 0;
  g_lcache.bytes = 0;
  pthread_mutex_unlock(&g_lcache.lock);
  for (i = 0; i < n; i++) unmap_cached(out[i].base, out[i].len);
}

static inline uintptr_t large_head(size_t n, uintptr_t flags) {
  return ((uintptr_t)n << E_SHIFT) | L_LIVE | flags | E_LARGE;
}

/* Entries for the block at base of len bytes: continuations first, the
** head last (its release store publishes them with it). */
static int large_publish(uintptr_t base, size_t len, uintptr_t head) {
  uintptr_t r;
  for (r = base + CHUNK_SIZE; r < base + len; r += CHUNK_SIZE)
    if (!ta_table_set(r, (((r - base) >> CHUNK_SHIFT) << E_SHIFT) | E_CONT |
                             E_LARGE))
      return 0;
  return ta_table_set(base, head);
}

void *ta_large_alloc(size_t n, uint32_t spy) {
  struct tcache *tc = tc_self();
  size_t len;
  uintptr_t p;
  if (n > MAX_ALLOC) return NULL;
  ta_init();
  len = page_up(n);
  p = lcache_take(len);
  if (p) {
    UNPOISON((void *)p, len);
  } else {
    p = (uintptr_t)ta_os_map_aligned(len);
    if (!p) return NULL;
    atomic_fetch_add_explicit(&ta_mapped, len, RLX);
  }
  if (!large_publish(p, len, large_head(n, spy ? L_SPY : 0))) {
    ta_table_clear(p, len);  /* before the munmap, as above */
    unmap_cached(p, len);
    return NULL;
  }
  if (spy) atomic_fetch_add_explicit(&ta_spied, 1, RLX);
  ta_tc_ready(tc);
  ta_tc_count(tc, 1, (int64_t)n);
  VG_ALLOC((void *)p, n);
  return (void *)p;
}

/* Claims the large block at u by swapping its head entry from live (and
** not BUSY) to 0: 1 and the old head when this call won. Of two threads
** freeing the same block, one swaps, the other sees 0 (or a failed CAS,
** then 0) and does nothing. */
int ta_large_claim(uintptr_t u, uintptr_t *old) {
  tentry *t;
  uintptr_t e;
  if (u & (CHUNK_SIZE - 1)) return 0;
  t = table_slot(u);
  if (!t) return 0;
  e = atomic_load_explicit(t, ACQ);
  for (;;) {
    if (!(e & E_LARGE) || !large_at(e, u) || (e & L_BUSY)) return 0;
    if (atomic_compare_exchange_weak_explicit(t, &e, 0, ACQ, ACQ)) break;
  }
  *old = e;
  return 1;
}

/* The block at u was claimed (its head was `old`): clear the rest of its
** entries, then cache or unmap its mapping. */
void ta_large_release(uintptr_t u, uintptr_t old) {
  struct tcache *tc = tc_self();
  size_t n = (size_t)(old >> E_SHIFT), len = page_up(n);
  VG_FREE((void *)u);
  if (len > CHUNK_SIZE) ta_table_clear(u + CHUNK_SIZE, len - CHUNK_SIZE);
  lcache_put(u, len);
  if (old & L_SPY) atomic_fetch_sub_explicit(&ta_spied, 1, RLX);
  ta_tc_ready(tc);
  ta_tc_count(tc, -1, -(int64_t)n);
}

void ta_large_free(uintptr_t u) {
  uintptr_t old;
  if (ta_large_claim(u, &old)) ta_large_release(u, old);
}

/* The claimed block at u (mapping len) grown to n bytes (mapping newlen)
** without copying: where it is, or its pages moved to a new aligned
** range. Its entries are published before the pages move (a lookup never
** reads the block), BUSY until done. The new address, or 0: then nothing
** changed, except that u's head entry is still 0. */
static uintptr_t large_grow(uintptr_t u, size_t len, size_t n, size_t newlen,
                            uintptr_t flags) {
  uintptr_t q, head = large_head(n, flags);
  if (ta_os_grow((void *)u, len, newlen)) {
    if (!large_publish(u, newlen, head | L_BUSY)) {  /* a leaf's mmap */
      ta_table_clear(u, newlen);
      ta_os_unmap((void *)(u + len), newlen - len);
      large_publish(u, len, 0);
      return 0;
    }
    q = u;
  } else {
    q = (uintptr_t)ta_os_map_aligned(newlen);
    if (!q) return 0;
    if (!large_publish(q, newlen, head | L_BUSY)) {
      ta_table_clear(q, newlen);
      ta_os_unmap((void *)q, newlen);
      return 0;
    }
    if (len > CHUNK_SIZE)  /* before the old range is unmapped */
      ta_table_clear(u + CHUNK_SIZE, len - CHUNK_SIZE);
    if (!ta_os_move((void *)u, len, (void *)q, newlen)) {
      ta_table_clear(q, newlen);
      ta_os_unmap((void *)q, newlen);
      large_publish(u, len, 0);  /* its continuations back */
      return 0;
    }
  }
  atomic_store_explicit(table_slot(q), head, REL);
  atomic_fetch_add_explicit(&ta_mapped, newlen - len, RLX);
  return q;
}

/* Realloc of p, whose table entry is a large block's: in place when the
** new size is still large and fits the mapping, which is then trimmed;
** a larger mapping by mremap; a small block by a copy. */
void *ta_large_realloc(void *p, size_t n, uint32_t spy) {
  uintptr_t u = (uintptr_t)p, s, q, flags;
  tentry *t = table_slot(u);
  size_t len, newlen, oldn;
  if (!t) return NULL;
  s = atomic_load_explicit(t, ACQ);
  if (!(s & E_LARGE) || !large_at(s, u) || (s & L_BUSY)) return NULL;
  oldn = (size_t)(s >> E_SHIFT);
  len = page_up(oldn);
  newlen = page_up(n);
  flags = (s & L_SPY) | (spy ? L_SPY : 0);
  if (n <= SMALL_MAX) return ta_move_block(p, n, spy);
  if (newlen > len) {
    if (!ta_large_claim(u, &s)) return NULL;
    q = large_grow(u, len, n, newlen, flags);
    if (!q) {
      atomic_store_explicit(t, s, REL);  /* p as it was: copy instead */
      return ta_move_block(p, n, spy);
    }
    if (q != u) {
      VG_FREE(p);
      VG_ALLOC((void *)q, n);
    } else {
      VG_RESIZE(p, oldn, n);
    }
    if (spy && !(s & L_SPY)) atomic_fetch_add_explicit(&ta_spied, 1, RLX);
    ta_tc_count(tc_self(), 0, (int64_t)n - (int64_t)oldn);
    return (void *)q;
  }
  /* BUSY: a racing Free or Realloc of p now does nothing, so the tail is
  ** ours to unmap and the head ours to rewrite. */
  if (!atomic_compare_exchange_strong_explicit(t, &s, s | L_BUSY, ACQ, ACQ))
    return NULL;
  if (newlen < len) {  /* entries of the regions left, then the tail */
    uintptr_t keep = (u + newlen + CHUNK_SIZE - 1) & ~(CHUNK_SIZE - 1);
    if (keep < u + len) ta_table_clear(keep, u + len - keep);
    ta_os_unmap((void *)(u + newlen), len - newlen);
    atomic_fetch_sub_explicit(&ta_mapped, len - newlen, RLX);
  }
  VG_RESIZE(p, oldn, n);
  if (spy && !(s & L_SPY)) atomic_fetch_add_explicit(&ta_spied, 1, RLX);
  atomic_store_explicit(t, large_head(n, flags), REL);
  ta_tc_count(tc_self(), 0, (int64_t)n - (int64_t)oldn);
  return p;
}

void ta_large_lock(void) {
  pthread_mutex_lock(&g_lcache.lock);
}

void ta_large_unlock(void) {
  pthread_mutex_unlock(&g_lcache.lock);
}

void ta_large_reinit(void) {
  pthread_mutex_init(&g_lcache.lock, NULL);
}
