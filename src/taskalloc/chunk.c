/*
** chunk.c: small blocks' memory. A chunk (1 MiB) serves one size class at
** a time, for one shard (below); a shard's class keeps the chunks it can
** still hand blocks out of in a list, each with its own free list. A chunk
** whose blocks are all free again goes to the pool, where any class and
** any shard takes it from; the pool keeps up to ta_retain bytes of such
** chunks with their pages and gives the pages of the rest back to the
** system (the retention policy, README's Backends). Chunks are never
** unmapped: lookups read their slots at any time without a lock.
**
** Shards: every thread refills from a shard of its own while there are no
** more than NSHARD threads (tcache.c hands the ids out), and from its own
** chunks first, so two busy threads do not refill from one chunk: their
** blocks, and the slots every Alloc and Free writes, lie in different
** chunks, hence different cache lines, and each takes a lock no other
** thread takes on its refills. A block freed by another thread than the
** one whose chunk holds it is not handed out by the freeing thread: it
** goes back, in a batch, to its own chunk under that chunk's shard's lock
** (tcache.c). A thread takes over an ended thread's chunks, one per
** refill, one with free blocks first (ta_class_take): no two live threads
** allocate from one chunk. When its own shard has no chunk of a class, it
** adopts one with free blocks that a live thread is not allocating from,
** before it takes a chunk from the pool. A chunk changes shard under the
** locks of both shards, so one who holds the lock of the shard a chunk
** names may use the chunk's list links and counts; its table entry names
** its shard too (internal.h), which Free reads without a lock, as a hint.
**
** Memory: free blocks are handed out before blocks never handed out (a
** refill carves a chunk only when no chunk of its list has a free block),
** and the pool gives a class the chunk that served it last (pool_pick):
** a program's pages then follow what each class needed at most, not the
** sum of what every class that ever held a chunk needed.
*/
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_RETAIN ((size_t)32 << 20)

struct geom ta_geom[NCLASS];
uint32_t ta_nslots[NCLASS];
uint32_t ta_batch[NCLASS];
const uint8_t ta_cls16[65] = {
  0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 9, 9, 10, 10, 11, 11,
  12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15,
  16, 16, 16, 16, 16, 16, 16, 16, 17, 17, 17, 17, 17, 17, 17, 17,
  18, 18, 18, 18, 18, 18, 18, 18, 19, 19, 19, 19, 19, 19, 19, 19
};
size_t ta_retain = DEFAULT_RETAIN;

/* A chunk's `where`: CH_FULL while all its blocks are out (it is on no
** list then), else CH_PARTIAL, 0 as in a new chunk's header (a chunk
** empties only after it is CH_PARTIAL again, ta_class_give; the pool does
** not read it). */
enum { CH_PARTIAL, CH_FULL };

struct list {
  struct chunk *head, *tail;
};

/* Mutable state of a class in a shard, under the shard's lock: one lock
** per shard, not per class, so that fork's handlers hold a few locks (a
** shard is mostly one thread's, whose refills do not contend anyway). */
struct klass {
  struct list partial;   /* chunks with blocks to hand out */
  int listed;            /* whether its bit is set in g_partial[class] */
  uint32_t takes;        /* refills served from its list */
  uint32_t seen[NSHARD]; /* shard v's `takes` of this class when this
                         ** shard last looked at it (adopt) */
};

static struct klass g_cls[NSHARD][NCLASS];
#define SHARD_LOCK { PTHREAD_MUTEX_INITIALIZER }
#define SHARD_LOCKS4 SHARD_LOCK, SHARD_LOCK, SHARD_LOCK, SHARD_LOCK
_Static_assert(NSHARD == 16, "one initialiser per shard's lock");
static struct {
  _Alignas(64) pthread_mutex_t lock;
} g_shard[NSHARD] = { SHARD_LOCKS4, SHARD_LOCKS4, SHARD_LOCKS4, SHARD_LOCKS4 };

/* A class's shard and its lock follow from where it is in g_cls: nothing
** is written to g_cls at start-up, so the pages of shards no thread uses
** are never touched (16 shards of 44 classes: 64 KiB). */
static unsigned klass_shard(const struct klass *k) {
  return (unsigned)((size_t)((const char *)k - (const char *)g_cls) /
                    sizeof g_cls[0]);
}

static pthread_mutex_t *klass_lock(const struct klass *k) {
  return &g_shard[klass_shard(k)].lock;
}

/* Per class, the shards whose list of that class is not empty: a thread
** looks there for shards no live thread holds (ta_shards), and drains
** their chunks' free blocks first; and, when its own list is empty, for a
** live thread's idle chunk. Written under the shard's lock, read
** without. */
static _Atomic uint32_t g_partial[NCLASS];
_Atomic uint32_t ta_shards;

/* With k's lock held, after its list changed: its bit in g_partial. */
static void partial_note(struct klass *k, unsigned cls) {
  int now = k->partial.head != NULL;
  uint32_t bit;
  if (now == k->listed) return;
  k->listed = now;
  bit = 1u << klass_shard(k);
  if (now) atomic_fetch_or_explicit(&g_partial[cls], bit, RLX);
  else atomic_fetch_and_explicit(&g_partial[cls], ~bit, RLX);
}

/* Empty chunks: `dirty` with their pages (most recently emptied first),
** linked through their headers; `clean`, whose pages were all given back,
** header included, in an array of their addresses. */
static struct {
  pthread_mutex_t lock;
  struct list dirty;
  size_t dirty_bytes;
  uintptr_t *clean;
  size_t nclean, cap;
} g_pool = { PTHREAD_MUTEX_INITIALIZER, { NULL, NULL }, 0, NULL, 0, 0 };

static void list_push_front(struct list *l, struct chunk *c) {
  c->prev = NULL;
  c->next = l->head;
  if (l->head) l->head->prev = c; else l->tail = c;
  l->head = c;
}

static void list_push_back(struct list *l, struct chunk *c) {
  c->next = NULL;
  c->prev = l->tail;
  if (l->tail) l->tail->next = c; else l->head = c;
  l->tail = c;
}

static void list_remove(struct list *l, struct chunk *c) {
  if (c->prev) c->prev->next = c->next; else l->head = c->next;
  if (c->next) c->next->prev = c->prev; else l->tail = c->prev;
}

static uint32_t class_size(unsigned c) {
  unsigned j, lg;
  if (c < 8) return 16u * (c + 1);
  j = c - 8;
  lg = 7 + j / 4;
  return (1u << lg) + (j % 4 + 1) * (1u << (lg - 2));
}

/* IMALLOC_RETAIN: bytes, with an optional K, M or G suffix; 0 keeps
** nothing. A malformed value leaves the default. */
static void read_retain(void) {
  const char *s = getenv("IMALLOC_RETAIN");
  char *end;
  unsigned long long v;
  if (!s || !*s) return;
  v = strtoull(s, &end, 10);
  switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
  }
  if (*end == 'i' || *end == 'b' || *end == 'B') end++;  /* KiB, MB */
  if (*end == 'B') end++;
  if (*end == '\0' && (s[0] >= '0' && s[0] <= '9')) ta_retain = (size_t)v;
}

void ta_classes_init(void) {
  unsigned c;
  for (c = 0; c < NCLASS; c++) {
    struct geom *g = &ta_geom[c];
    uint32_t b;
    g->bsize = class_size(c);
    ta_nslots[c] = (uint32_t)((CHUNK_SIZE - BLOCKS_OFF) / g->bsize);
    g->span = ta_nslots[c] * g->bsize;
    g->recip = (((uint64_t)1 << RECIP_SHIFT) / g->bsize) + 1;
    /* about 8 KiB moved per lock, between 1 and 64 blocks */
    b = 8192 / g->bsize;
    ta_batch[c] = b < 1 ? 1 : b > 64 ? 64 : b;
  }
  read_retain();
}

/* With the pool's lock held: room for one more clean chunk. */
static int clean_room(void) {
  size_t cap, bytes, old = g_pool.cap * sizeof(uintptr_t);
  uintptr_t *v;
  if (g_pool.nclean < g_pool.cap) return 1;
  cap = g_pool.cap ? 2 * g_pool.cap : ta_page / sizeof *v;
  bytes = cap * sizeof *v;
  v = ta_os_map(bytes);
  if (!v) return 0;
  if (g_pool.nclean) memcpy(v, g_pool.clean, g_pool.nclean * sizeof *v);
  ta_os_unmap(g_pool.clean, old);  /* the first time: 0 bytes, nothing */
  atomic_fetch_add_explicit(&ta_mapped, bytes - old, RLX);
  atomic_fetch_add_explicit(&ta_meta, bytes - old, RLX);
  g_pool.clean = v;
  g_pool.cap = cap;
  return 1;
}

/* With the pool's lock held: gives all the pages of the oldest empty
** chunks back, header included, until at most `keep` bytes of them are
** left. The lock is dropped around the madvise calls (a batch at a time,
** on no list meanwhile); their slots, all 0, read as 0 afterwards too. */
static void pool_trim(size_t keep) {
  while (g_pool.dirty_bytes > keep && g_pool.dirty.tail) {
    struct chunk *batch[64];
    unsigned k = 0, i;
    while (g_pool.dirty_bytes > keep && g_pool.dirty.tail && k < 64) {
      batch[k] = g_pool.dirty.tail;
      list_remove(&g_pool.dirty, batch[k++]);
      g_pool.dirty_bytes -= CHUNK_SIZE;
    }
    pthread_mutex_unlock(&g_pool.lock);
    for (i = 0; i < k; i++) ta_os_purge(batch[i], CHUNK_SIZE);
    pthread_mutex_lock(&g_pool.lock);
    for (i = 0; i < k; i++) {
      if (clean_room()) {
        g_pool.clean[g_pool.nclean++] = (uintptr_t)batch[i];
      } else {  /* no memory for the array: kept as if dirty */
        list_push_back(&g_pool.dirty, batch[i]);
        g_pool.dirty_bytes += CHUNK_SIZE;
        keep = (size_t)-1;
      }
    }
  }
}

void ta_pool_purge_all(void) {
  pthread_mutex_lock(&g_pool.lock);
  pool_trim(0);
  pthread_mutex_unlock(&g_pool.lock);
}

/* c's blocks are all free (its slots all 0) and it is on no list: to the
** pool. */
static void chunk_empty(struct chunk *c) {
  UNPOISON((char *)c + BLOCKS_OFF, CHUNK_SIZE - BLOCKS_OFF);
  atomic_fetch_sub_explicit(&ta_meta, ta_nslots[c->cls] * sizeof(uint32_t),
                            RLX);
  pthread_mutex_lock(&g_pool.lock);
  list_push_front(&g_pool.dirty, c);
  g_pool.dirty_bytes += CHUNK_SIZE;
  pool_trim(ta_retain);
  pthread_mutex_unlock(&g_pool.lock);
}

/* With the pool's lock held: the empty chunk with its pages that class cls
** takes, or NULL. One that served cls last, whose pages are those cls
** touched before; else the one with the most pages. Which one matters
** for the memory a program holds: an empty chunk keeps the pages its
** blocks were carved from, so a class that took a chunk another class
** had filled further, while that class took one it had to fill again,
** would hold the pages of both; over a program's phases the chunks would
** each grow to the largest need of any class that ever held them, and the
** pages to the sum of those. The first POOL_SCAN chunks are looked at
** (the most recently emptied, which a class that just emptied one finds
** first), so the lock is held for a bounded walk. */
#define POOL_SCAN 64
static struct chunk *pool_pick(unsigned cls) {
  struct chunk *c, *best = NULL;
  unsigned n;
  for (c = g_pool.dirty.head, n = 0; c && n < POOL_SCAN; c = c->next, n++) {
    if (c->cls == cls) return c;
    if (!best || c->touched > best->touched) best = c;
  }
  return best;
}

/* The table entry of chunk c while it serves class cls for shard sh. */
static uintptr_t chunk_entry(const struct chunk *c, unsigned cls,
                             unsigned sh) {
  return (uintptr_t)c | (uintptr_t)cls << E_CLS_SHIFT |
         (uintptr_t)sh << E_SHARD_SHIFT;
}

/* With shard sh's lock of cls held: an empty chunk for them, from the pool
** (one with its pages first, pool_pick) or new, its entry in the table
** naming cls. */
static struct chunk *chunk_get(unsigned sh, unsigned cls) {
  struct chunk *c;
  pthread_mutex_lock(&g_pool.lock);
  c = pool_pick(cls);
  if (c) {
    list_remove(&g_pool.dirty, c);
    g_pool.dirty_bytes -= CHUNK_SIZE;
  } else if (g_pool.nclean) {
    c = (struct chunk *)g_pool.clean[--g_pool.nclean];
    c->touched = 0;  /* its pages were given back */
  }
  pthread_mutex_unlock(&g_pool.lock);
  if (!c) {
    c = ta_os_map_aligned(CHUNK_SIZE);  /* zeroed: touched 0 */
    if (!c) return NULL;
    atomic_fetch_add_explicit(&ta_mapped, CHUNK_SIZE, RLX);
    atomic_fetch_add_explicit(&ta_meta, CHUNK_HDR, RLX);
  }
  /* (its `used` is 0: a chunk goes to the pool with no block out, and a
  ** new one reads 0) */
  c->free = NULL;
  c->nfree = 0;
  c->next_idx = 0;
  c->cls = cls;
  atomic_store_explicit(&c->shard, sh, RLX);
  /* The slots are all 0: a lookup that read the old class and one that
  ** reads the new one both find no live block until one is handed out.
  ** Only a new chunk's entry can fail (its table leaf's mmap): then the
  ** chunk goes to the pool, no class's yet. */
  if (!ta_table_set((uintptr_t)c, chunk_entry(c, cls, sh))) {
    pthread_mutex_lock(&g_pool.lock);
    list_push_back(&g_pool.dirty, c);
    g_pool.dirty_bytes += CHUNK_SIZE;
    pthread_mutex_unlock(&g_pool.lock);
    return NULL;
  }
  atomic_fetch_add_explicit(&ta_meta, ta_nslots[cls] * sizeof(uint32_t), RLX);
  return c;
}

/* With k's lock held, c the first chunk of its list: up to `want` blocks
** of it as a NULL-terminated list (*got of them). Blocks never handed out
** are carved only when the chunk has no free ones: a block carved touches
** memory that a freed one would not (and the cache asks for more than it
** needs now). A chunk's whole free list is taken without walking it when
** it holds at most `want`: the lock is then held for a few stores, not a
** walk of cold blocks. */
static void *chunk_take(struct klass *k, struct chunk *c, unsigned cls,
                        uint32_t want, uint32_t *got) {
  uint32_t bsize = ta_geom[cls].bsize, n = 0;
  void *head, *p;
  if (c->nfree > want) {  /* the first `want` of a longer list */
    void *last = NULL;
    for (p = c->free; n < want; p = NEXT(p), n++) last = p;
    head = c->free;
    NEXT(last) = NULL;
    c->free = p;
    c->nfree -= n;
  } else if (c->nfree) {  /* the whole free list */
    head = c->free;
    n = c->nfree;
    c->free = NULL;
    c->nfree = 0;
  } else {  /* blocks never handed out */
    head = NULL;
    while (n < want && c->next_idx < ta_nslots[cls]) {
      char *b = (char *)c + BLOCKS_OFF + (size_t)c->next_idx * bsize;
      SLOT_AT(b) = block_slot((uintptr_t)c, c->next_idx++);
      NEXT(b) = head;
      head = b;
      n++;
    }
    if (c->next_idx * bsize > c->touched) c->touched = c->next_idx * bsize;
  }
  c->used += n;
  if (!c->free && c->next_idx == ta_nslots[cls]) {
    list_remove(&k->partial, c);
    c->where = CH_FULL;
    partial_note(k, cls);
  }
  *got = n;
  return head;
}

/* With k's lock held, c the first chunk of its list, which has no free
** block (only blocks never handed out): the first of the next few that
** has free blocks, moved to the front, else c. A chunk whose blocks are
** all handed out goes back on a list at its end and a new or adopted one
** at its front, so the list has few chunks with blocks never handed out,
** and those at its front: a short walk. */
#define PARTIAL_SCAN 8
static struct chunk *partial_with_free(struct klass *k, struct chunk *c) {
  struct chunk *d = c->next;
  unsigned n;
  for (n = 0; d && n < PARTIAL_SCAN; d = d->next, n++) {
    if (d->nfree) {
      list_remove(&k->partial, d);
      list_push_front(&k->partial, d);
      return d;
    }
  }
  return c;
}

/* What adopt takes: from a live thread's shard, a chunk with free blocks
** that thread is not allocating from; from an ended thread's (one no live
** thread holds), a chunk with free blocks, or else any chunk. */
enum { ADOPT_IDLE, ADOPT_ENDED };

/* With no lock held: moves to shard sh's list of class cls one chunk
** from the first shard in mask that has one of the kind `how` asks for
** (the lowest first; of ended threads' shards, the highest first).
** ADOPT_IDLE (shards of live threads): a chunk with free blocks; the
** first of that shard's list (the one its thread allocates from) is taken
** only if its thread took no blocks of the class since this shard last
** looked: an idle thread's chunk. A chunk with no free block, only blocks
** never handed out, is left: its memory would be as new as that of a
** chunk from the pool, and the pool's may have its pages.
** ADOPT_ENDED (shards no live thread holds): one of the first few chunks
** of its list with free blocks; when no shard in mask has one, the first
** chunk of the last one looked at (the lowest), whatever it holds, so that the next refills do
** not look there again (one trip to each shard in mask either way).
** No thread allocates from an ended thread's chunk but the one that took
** it over. Both shards' locks are held meanwhile, the lower shard's first
** (fork takes them in that order too). Whether one was moved. */
static int adopt(unsigned sh, uint32_t mask, unsigned cls, int how) {
  struct klass *k = &g_cls[sh][cls];
  while (mask) {
    unsigned v = how == ADOPT_IDLE ? (unsigned)__builtin_ctz(mask)
                                   : 31u - (unsigned)__builtin_clz(mask);
    struct klass *kv = &g_cls[v][cls];
    pthread_mutex_t *first = v < sh ? klass_lock(kv) : klass_lock(k);
    pthread_mutex_t *second = v < sh ? klass_lock(k) : klass_lock(kv);
    struct chunk *c;
    mask &= ~(1u << v);
    pthread_mutex_lock(first);
    pthread_mutex_lock(second);
    c = kv->partial.head;
    if (how != ADOPT_IDLE) {  /* unless a thread took the shard meanwhile */
      if (atomic_load_explicit(&ta_shards, RLX) & (1u << v)) c = NULL;
      if (c && !c->nfree) {
        c = partial_with_free(kv, c);
        if (!c->nfree && mask) c = NULL;  /* the last shard: any */
      }
    } else if (c && !c->next && k->seen[v] != kv->takes) {
      c = NULL;
    } else {
      if (c && c->next) c = c->next;
      if (c && !c->nfree) c = NULL;
    }
    if (how == ADOPT_IDLE) k->seen[v] = kv->takes;
    if (c) {
      list_remove(&kv->partial, c);
      partial_note(kv, cls);
      atomic_store_explicit(&c->shard, sh, RLX);
      /* Its leaf exists (the entry names the chunk): cannot fail. */
      (void)ta_table_set((uintptr_t)c, chunk_entry(c, cls, sh));
      list_push_front(&k->partial, c);
      partial_note(k, cls);
    }
    pthread_mutex_unlock(second);
    pthread_mutex_unlock(first);
    if (c) return 1;
  }
  return 0;
}

/* Up to `want` blocks of class cls for a thread of shard sh, as a
** NULL-terminated list (*got of them), from one chunk; NULL when no memory
** can be had. First, a chunk of a shard no live thread holds (its thread
** ended) is taken over, one with free blocks first (adopt): the thread
** allocates from it from then on, and no other live thread does.
** Then the shard's own chunks, one with free blocks before one with blocks
** never handed out; when it has none, it adopts one with free blocks from
** another live thread that thread is not allocating from (one that freed
** much and allocates no more, as larson's first thread, would otherwise
** strand its free blocks); a chunk new to the shard is taken only when
** neither can be had. So two busy threads allocate from no common chunk. */
void *ta_class_take(unsigned sh, unsigned cls, uint32_t want,
                    uint32_t *got) {
  struct klass *k = &g_cls[sh][cls];
  struct chunk *c;
  void *head;
  uint32_t others = atomic_load_explicit(&g_partial[cls], RLX) & ~(1u << sh);
  uint32_t orphans = others & ~atomic_load_explicit(&ta_shards, RLX);
  if (orphans) adopt(sh, orphans, cls, ADOPT_ENDED);
  pthread_mutex_lock(klass_lock(k));
  c = k->partial.head;
  if (!c && (others & ~orphans)) {  /* never two locks out of order */
    pthread_mutex_unlock(klass_lock(k));
    adopt(sh, others & ~orphans, cls, ADOPT_IDLE);
    pthread_mutex_lock(klass_lock(k));
    c = k->partial.head;
  }
  if (!c) {
    c = chunk_get(sh, cls);
    if (!c) {
      pthread_mutex_unlock(klass_lock(k));
      return NULL;
    }
    list_push_front(&k->partial, c);
    partial_note(k, cls);
  } else if (!c->nfree && c->next) {
    c = partial_with_free(k, c);
  }
  head = chunk_take(k, c, cls, want, got);
  k->takes++;
  pthread_mutex_unlock(klass_lock(k));
  return head;
}

/* Hands a NULL-terminated list of free blocks of class cls back to their
** chunks; the chunks that become empty go to the pool. The list is cut
** into runs of one chunk before a lock is taken, so that a lock is held
** for a few stores per run; consecutive runs of one shard share a lock. A
** chunk's shard is read before its lock is taken, and again after: it
** changes only under that lock (adopt), so once the two agree the chunk
** is that shard's for as long as the lock is held. */
void ta_class_give(unsigned cls, void *head) {
  while (head) {
    struct run {
      struct chunk *c;
      void *head, *tail;
      uint32_t n;
    } runs[16];
    struct chunk *empties = NULL, *c;
    struct klass *k = NULL;
    unsigned nrun = 0, i;
    while (head && nrun < 16) {
      struct run *r = &runs[nrun++];
      void *t = head;
      r->c = (struct chunk *)((uintptr_t)head & ~(CHUNK_SIZE - 1));
      r->n = 1;
      while (NEXT(t) &&
             ((uintptr_t)NEXT(t) & ~(CHUNK_SIZE - 1)) == (uintptr_t)r->c) {
        t = NEXT(t);
        r->n++;
      }
      r->head = head;
      r->tail = t;
      head = NEXT(t);
    }
    for (i = 0; i < nrun; i++) {
      c = runs[i].c;
      for (;;) {  /* the lock of the shard c names, still named once held */
        unsigned s = atomic_load_explicit(&c->shard, RLX);
        if (k != &g_cls[s][cls]) {
          if (k) pthread_mutex_unlock(klass_lock(k));
          k = &g_cls[s][cls];
          pthread_mutex_lock(klass_lock(k));
        }
        if (atomic_load_explicit(&c->shard, RLX) == s) break;
      }
      NEXT(runs[i].tail) = c->free;
      c->free = runs[i].head;
      c->nfree += runs[i].n;
      if (c->where == CH_FULL) {  /* behind the chunks already partial */
        c->where = CH_PARTIAL;
        list_push_back(&k->partial, c);
      }
      c->used -= runs[i].n;
      if (c->used == 0) {
        list_remove(&k->partial, c);
        c->next = empties;
        empties = c;
      }
      partial_note(k, cls);
    }
    pthread_mutex_unlock(klass_lock(k));
    while (empties) {
      c = empties;
      empties = c->next;
      chunk_empty(c);
    }
  }
}

/* Fork: every shard's lock, then the pool's (the order they nest in;
** ta_class_give holds one shard's lock at a time). */
void ta_chunk_lock_all(void) {
  unsigned sh;
  for (sh = 0; sh < NSHARD; sh++) pthread_mutex_lock(&g_shard[sh].lock);
  pthread_mutex_lock(&g_pool.lock);
}

void ta_chunk_unlock_all(void) {
  unsigned sh;
  pthread_mutex_unlock(&g_pool.lock);
  for (sh = NSHARD; sh-- > 0;) pthread_mutex_unlock(&g_shard[sh].lock);
}

void ta_chunk_reinit_locks(void) {
  unsigned sh;
  for (sh = 0; sh < NSHARD; sh++) pthread_mutex_init(&g_shard[sh].lock, NULL);
  pthread_mutex_init(&g_pool.lock, NULL);
}
