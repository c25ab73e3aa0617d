/*
** large.c: blocks above 64 KiB. Each has its own mapping, 1 MiB aligned,
** described by its table entries only (internal.h): the head entry holds
** the requested size and the flags, so a block costs 8 bytes per MiB
** spanned. The mapping is the requested size rounded up to the page size.
**
** A freed mapping goes to a small cache (up to LCACHE_MAX mappings and a
** bound that follows what the program recycles, below; oldest out first)
** with its pages, so that freeing and allocating a block of about the same
** size again costs no mmap and few page faults; HeapMinimize unmaps the
** cache. Realloc to a larger size grows
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

#include <errno.h>
#include <string.h>

#define LCACHE_MAX 16
/* The window of the adaptive bound: the last RECENT large operations
** (Allocs and Frees of large blocks). */
#define RECENT 16
/* Small refills and flushes with no large operation between them after
** which the cache falls back to ta_retain (ta_large_idle). */
#define IDLE_SLOW 64
/* AddressSanitizer and valgrind write their shadow of a range page by page
** (under ASan an eighth of its size), and it stays resident: poisoning a
** kept mapping of gigabytes whole, or unpoisoning it when it is mapped
** again, would cost that much memory. So a kept mapping is poisoned in its
** first POISON_KEPT bytes only (a use after free past them goes unseen in
** those builds), and whatever is poisoned within a range that starts at or
** after a mapping's start lies within its first POISON_KEPT bytes, which is
** all that unpoisoning it needs to clear. */
#define POISON_KEPT ((size_t)64 << 20)

struct mapping {
  uintptr_t base;
  size_t len;
};

/* The cache of freed mappings. It keeps up to LCACHE_MAX mappings and
** max(ta_retain, reuse) bytes, where reuse follows the program: of the
** last RECENT large operations, the bytes the Allocs could have taken from
** the Frees before them (a block freed and another allocated soon after
** counts, up to the smaller of the two; frees with no allocation after
** them, or allocations with no free before them, do not). A loop over large blocks thus keeps about
** what it recycles, however large (malloc-large: blocks of 5 to 25 MiB);
** once the program stops recycling (its large operations only allocate or
** only free, or it makes none while its small blocks' slow paths run
** IDLE_SLOW times), the bound falls back to ta_retain and the excess is
** unmapped. HeapMinimize unmaps everything. */
static struct {
  pthread_mutex_t lock;
  struct mapping m[LCACHE_MAX];   /* oldest first */
  unsigned count;
  size_t bytes;
  size_t reuse;                   /* of the window, below */
  ptrdiff_t op[RECENT];           /* the window: +len an Alloc, -len a Free */
  unsigned next;                  /* op's oldest entry */
  unsigned long tick;             /* large operations so far */
  unsigned long idle_tick;        /* tick at the last idle check */
} g_lcache = { PTHREAD_MUTEX_INITIALIZER, { { 0, 0 } }, 0, 0, 0, { 0 },
               0, 0, 0 };

/* Whether the cache holds more than ta_retain: the slow paths of small
** blocks then count towards ta_large_idle (read without the lock). */
static _Atomic int g_excess;

static void poison_kept(uintptr_t base, size_t len) {
  POISON((void *)base, len < POISON_KEPT ? len : POISON_KEPT);
}

static void unpoison_kept(uintptr_t base, size_t len) {
  UNPOISON((void *)base, len < POISON_KEPT ? len : POISON_KEPT);
}

static void unmap_cached(uintptr_t base, size_t len) {
  unpoison_kept(base, len);  /* whoever maps the range next */
  ta_os_unmap((void *)base, len);
  atomic_fetch_sub_explicit(&ta_mapped, len, RLX);
}

/* With the lock held: one large operation of len bytes (+ allocated,
** - freed) enters the window, the oldest leaves it; reuse becomes the
** bytes the window's Allocs could have taken from its earlier Frees. */
static void lcache_note(ptrdiff_t len) {
  size_t avail = 0, matched = 0;
  unsigned i;
  g_lcache.op[g_lcache.next] = len;
  g_lcache.next = (g_lcache.next + 1) % RECENT;
  for (i = 0; i < RECENT; i++) {  /* oldest first */
    ptrdiff_t o = g_lcache.op[(g_lcache.next + i) % RECENT];
    if (o < 0) {
      avail += (size_t)-o;
    } else {
      size_t t = (size_t)o < avail ? (size_t)o : avail;
      matched += t;
      avail -= t;
    }
  }
  g_lcache.reuse = matched;
  g_lcache.tick++;
}

static size_t lcache_bound(void) {
  return g_lcache.reuse > ta_retain ? g_lcache.reuse : ta_retain;
}

/* With the lock held: the oldest mappings out to `out` until the cache
** holds at most `bound` bytes (and at most `max` mappings). */
static unsigned lcache_trim(size_t bound, unsigned max,
                            struct mapping *out) {
  unsigned nout = 0;
  while (g_lcache.count && (g_lcache.bytes > bound || g_lcache.count > max)) {
    out[nout++] = g_lcache.m[0];
    g_lcache.bytes -= g_lcache.m[0].len;
    memmove(&g_lcache.m[0], &g_lcache.m[1],
            (g_lcache.count - 1) * sizeof out[0]);
    g_lcache.count--;
  }
  atomic_store_explicit(&g_excess, g_lcache.bytes > ta_retain, RLX);
  return nout;
}

/* With the lock held: entry i out of the cache. */
static struct mapping lcache_remove(unsigned i) {
  struct mapping got = g_lcache.m[i];
  memmove(&g_lcache.m[i], &g_lcache.m[i + 1],
          (g_lcache.count - i - 1) * sizeof got);
  g_lcache.count--;
  g_lcache.bytes -= got.len;
  return got;
}

/* Moves the last `part` bytes of the cached range [b, b + part) (already
** out of the cache) over [to, to + part), a range of a mapping of ours
** whose pages were never touched: the donor's resident pages replace them,
** with no copy and no fault. 1 if done. */
static int lcache_donate(uintptr_t b, size_t part, uintptr_t to) {
  unpoison_kept(b, part);
  if (!ta_os_move((void *)b, part, (void *)to, part)) {
    poison_kept(b, part);
    return 0;
  }
  atomic_fetch_sub_explicit(&ta_mapped, part, RLX);
  return 1;
}

/* A mapping of exactly len bytes at a CHUNK_SIZE-aligned address, made of
** the cache's pages as far as they go (0 when the cache is empty: the
** caller maps a fresh one). The base is the smallest cached range that
** holds len bytes, else the largest; a longer one gives its tail back to
** the cache, a shorter one grows (mremap, in place or moved) and takes the
** pages it lacks from the other cached ranges, moved with mremap: what the
** cache holds is recycled page for page, whatever the sizes, and only the
** part of a block the cache cannot cover is faulted in fresh. Counts the
** Alloc in the window either way. */
static uintptr_t lcache_take(size_t len) {
  unsigned i, best = LCACHE_MAX;
  struct mapping got, out[LCACHE_MAX];
  unsigned nout;
  uintptr_t q;
  size_t have;
  pthread_mutex_lock(&g_lcache.lock);
  lcache_note((ptrdiff_t)len);
  for (i = 0; i < g_lcache.count; i++) {
    size_t l = g_lcache.m[i].len, bl;
    if (best == LCACHE_MAX) { best = i; continue; }
    bl = g_lcache.m[best].len;
    if (l >= len ? (bl < len || l < bl) : (bl < len && l > bl)) best = i;
  }
  if (best == LCACHE_MAX) {
    pthread_mutex_unlock(&g_lcache.lock);
    return 0;
  }
  got = lcache_remove(best);
  if (got.len > len) {  /* the tail stays cached, its pages resident */
    g_lcache.m[g_lcache.count].base = got.base + len;
    g_lcache.m[g_lcache.count].len = got.len - len;
    g_lcache.bytes += got.len - len;
    g_lcache.count++;
    got.len = len;
  }
  q = got.base;
  if (q & (CHUNK_SIZE - 1)) {  /* a tail: its pages go to an aligned place */
    q = (uintptr_t)ta_os_map_aligned(len);
    if (!q) goto fail;
    atomic_fetch_add_explicit(&ta_mapped, len, RLX);
    if (!lcache_donate(got.base, got.len, q)) {
      unmap_cached(q, len);
      goto fail;
    }
  } else if (got.len < len) {
    unpoison_kept(q, got.len);
    if (!ta_os_grow((void *)q, got.len, len)) {
      q = (uintptr_t)ta_os_map_aligned(len);
      if (!q) goto fail;
      atomic_fetch_add_explicit(&ta_mapped, len, RLX);
      if (!lcache_donate(got.base, got.len, q)) {
        unmap_cached(q, len);
        goto fail;
      }
    } else {
      atomic_fetch_add_explicit(&ta_mapped, len - got.len, RLX);
    }
  }
  /* [q, q + got.len) holds cached pages; the rest from other ranges. */
  have = got.len;
  while (have < len && g_lcache.count) {
    struct mapping *d = &g_lcache.m[g_lcache.count - 1];
    size_t part = len - have < d->len ? len - have : d->len;
    if (!lcache_donate(d->base + d->len - part, part, q + have)) break;
    d->len -= part;
    g_lcache.bytes -= part;
    if (!d->len) g_lcache.count--;
    have += part;
  }
  nout = lcache_trim(lcache_bound(), LCACHE_MAX, out);
  pthread_mutex_unlock(&g_lcache.lock);
  for (i = 0; i < nout; i++) unmap_cached(out[i].base, out[i].len);
  return q;
fail:  /* the system refused a mapping: got's pages back to it */
  nout = lcache_trim(lcache_bound(), LCACHE_MAX, out);
  pthread_mutex_unlock(&g_lcache.lock);
  for (i = 0; i < nout; i++) unmap_cached(out[i].base, out[i].len);
  unmap_cached(got.base, got.len);
  return 0;
}

/* Keeps the freed mapping [base, base + len) (its entries cleared), and
** counts the Free in the window. */
static void lcache_put(uintptr_t base, size_t len) {
  struct mapping out[LCACHE_MAX + 1];
  unsigned nout = 0, i;
  size_t bound;
  pthread_mutex_lock(&g_lcache.lock);
  lcache_note(-(ptrdiff_t)len);
  bound = lcache_bound();
  if (len <= bound) {
    poison_kept(base, len);  /* before another thread can take it */
    nout = lcache_trim(bound - len, LCACHE_MAX - 1, out);
    g_lcache.m[g_lcache.count].base = base;
    g_lcache.m[g_lcache.count].len = len;
    g_lcache.count++;
    g_lcache.bytes += len;
    atomic_store_explicit(&g_excess, g_lcache.bytes > ta_retain, RLX);
  } else {
    nout = lcache_trim(bound, LCACHE_MAX, out);
    out[nout].base = base;
    out[nout++].len = len;
  }
  pthread_mutex_unlock(&g_lcache.lock);
  for (i = 0; i < nout; i++) unmap_cached(out[i].base, out[i].len);
}

/* Called by the small blocks' slow paths while the cache holds more than
** ta_retain: after IDLE_SLOW of them with no large operation between, the
** program has stopped recycling large blocks, and the cache falls back to
** ta_retain. */
void ta_large_idle(void) {
  static _Thread_local unsigned slow;
  struct mapping out[LCACHE_MAX];
  unsigned nout = 0, i;
  if (++slow < IDLE_SLOW) return;
  slow = 0;
  pthread_mutex_lock(&g_lcache.lock);
  if (g_lcache.tick == g_lcache.idle_tick) {
    memset(g_lcache.op, 0, sizeof g_lcache.op);
    g_lcache.reuse = 0;
    nout = lcache_trim(ta_retain, LCACHE_MAX, out);
  }
  g_lcache.idle_tick = g_lcache.tick;
  pthread_mutex_unlock(&g_lcache.lock);
  for (i = 0; i < nout; i++) unmap_cached(out[i].base, out[i].len);
}

int ta_large_excess(void) {
  return atomic_load_explicit(&g_excess, RLX);
}

void ta_large_cache_drain(void) {
  struct mapping out[LCACHE_MAX];
  unsigned n, i;
  pthread_mutex_lock(&g_lcache.lock);
  n = g_lcache.count;
  memcpy(out, g_lcache.m, n * sizeof out[0]);
  g_lcache.count = 0;
  g_lcache.bytes = 0;
  memset(g_lcache.op, 0, sizeof g_lcache.op);
  g_lcache.reuse = 0;
  atomic_store_explicit(&g_excess, 0, RLX);
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
  if (n > MAX_ALLOC) goto nomem;
  ta_init();
  len = page_up(n);
  p = lcache_take(len);
  if (p) {
    unpoison_kept(p, len);
  } else {
    p = (uintptr_t)ta_os_map_aligned(len);
    if (!p) goto nomem;
    atomic_fetch_add_explicit(&ta_mapped, len, RLX);
  }
  if (!large_publish(p, len, large_head(n, spy ? L_SPY : 0))) {
    ta_table_clear(p, len);  /* before the munmap, as above */
    unmap_cached(p, len);
    goto nomem;
  }
  if (spy) atomic_fetch_add_explicit(&ta_spied, 1, RLX);
  ta_tc_ready(tc);
  ta_tc_count(tc, 1, (int64_t)n);
  VG_ALLOC((void *)p, n);
  return (void *)p;
nomem:  /* as malloc does: the C library's shim returns our NULL as it is */
  errno = ENOMEM;
  return NULL;
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
