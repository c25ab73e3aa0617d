/*
** taskalloc_os.c: what the built-in allocator asks of the system, seen
** from the system's side. This program defines mmap, munmap and mremap
** itself (calling the C library's through dlsym) and keeps its own count
** of the bytes the allocator holds; it can refuse the next mmaps, the
** mapping of a lookup table leaf (the only mmap of LEAF bytes) or every
** mremap, or answer an mmap with a 1 MiB aligned range, or with an address
** of its choice where nothing is mapped (where the table cannot cover it,
** or a range that ends where the table's reach does).
**
**   taskalloc_os accounting    mapped_bytes is what the system counts, after
**                              every kind of call; nothing is unmapped that
**                              was not mapped, and no munmap is of 0 bytes
**                              (which the system refuses); a refused mremap
**                              is copied; an aligned answer used as it is
**   taskalloc_os top           a block that ends at 2^48, the table's end
**   taskalloc_os max           the largest block asked of the system (by
**                              Alloc and by a small block's Realloc)
**   taskalloc_os no-mremap     (the program taskalloc_os_no_mremap, whose
**                              allocator is built as for a POSIX system
**                              without mremap) growth is a copy
**   taskalloc_os leaf-once     the first leaf refused once
**   taskalloc_os leaf-small    the same for the first chunk: the chunk
**                              goes to the pool, and serves the next Alloc
**   taskalloc_os leaf-always   every leaf refused
**   taskalloc_os leaf-race     two threads map the first leaf at once
**   taskalloc_os leaf-grow     a block grown into a range whose leaf is
**                              refused
**   taskalloc_os leaf-grow-in-place   the same, grown in place (mapped by
**                              this program where it ends at a 16 GiB
**                              boundary)
**   taskalloc_os neighbours    blocks side by side (mapped by this program):
**                              a Free, move or shrink clears its own entries
**   taskalloc_os pool-array    the pool's array of empty chunks grown
**                              (a page, then two) and its chunks taken again
**   taskalloc_os pool-refused  that array refused: the chunks stay in the
**                              pool with their pages, and are taken again
**   taskalloc_os interior      a Free of a pointer inside a large block
**                              mapped low (by this program) leaves it be
**   taskalloc_os remote-reuse  a thread's array of remote words (its
**                              cache's) taken again by the next thread
**                              after it ended; a page holds several
**   taskalloc_os remote-refused   the page for them refused: no cache,
**                              every call still right; then given
**
** The leaf cases need a process whose table has no leaf yet: one each.
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _GNU_SOURCE  /* RTLD_NEXT, mremap */
#include "check.h"
#include "client.h"
#include "fake_com.h"
#include "interpose.h"
#include "taskalloc/internal.h"  /* CHUNK_SIZE, CHUNK_HDR */

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)
#define LEAF ((size_t)131072)   /* a table leaf: 2^14 entries of 8 bytes */
#define REGION(p) ((uintptr_t)(p) >> 34)  /* the 16 GiB a leaf covers */

/* ---- the system, counted ------------------------------------------------ */

static _Atomic long held;        /* bytes mapped minus bytes unmapped */
static _Atomic int bad_unmaps;   /* munmap of pages that were not mapped,
                                 ** or a call the system refuses as
                                 ** invalid (EINVAL) */
static _Atomic int leaf_refusals;   /* leaf mmaps to refuse; -1: all */
static _Atomic int mmap_refusals;   /* the next mmaps to refuse */
static _Atomic int mmap_passes;     /* ... after letting this many through */
static _Atomic int page_refusals;   /* mmaps of one page to refuse; -1: all */
static _Atomic int pages_refused;   /* ... refused so far */
/* The next mmap answers with the address answer_at, where nothing is
** mapped: HIGH, above which no table entry can be, or a range that ends
** there; an unmapping at or above HIGH is counted apart. */
#define HIGH ((uintptr_t)1 << 48)
static _Atomic uintptr_t answer_at;
static _Atomic size_t high_unmapped;
/* The last range answered so below HIGH: its unmapping is counted apart
** too. */
static _Atomic uintptr_t fake_lo, fake_hi;
/* The next mmap maps its range at map_at (MAP_FIXED_NOREPLACE). */
static _Atomic uintptr_t map_at;
/* The next mmap answers with a range of its length at a 1 MiB aligned
** address (mapped by this program, where it found one), kept here. */
static _Atomic int answer_aligned;
static _Atomic uintptr_t aligned_at;
static _Atomic int refuse_mremap;   /* 1: every mremap; 2: in place only */
static _Atomic uintptr_t refused_move_to;  /* target of a refused move */
/* pieces: a kernel that cannot move a range spanning several of its
** mappings in one mremap (before Linux 6.17). 1: a move (MREMAP_FIXED) of
** more than a MiB fails with EFAULT, as such a range's would; 2: every
** move fails with EFAULT; 3: a move that resizes fails with EFAULT, one
** that does not with ENOMEM. */
static _Atomic int old_kernel;
static _Atomic int moves_done, moves_failed;  /* while old_kernel */
static long page;
/* Mappings of less than a MiB but leaves (the pool's array), their
** lengths in turn. */
static _Atomic size_t small_maps[4];
static _Atomic int nsmall;

/* leaf-race: the thread that stops inside its leaf's mmap, and where */
static _Thread_local int stop_in_leaf;
static sem_t in_leaf, leaf_done;
static _Atomic uintptr_t held_leaf, unmapped_leaf;
/* a shrinking Realloc: the thread that stops inside its munmap */
static _Thread_local int stop_in_munmap;
static sem_t in_munmap, munmap_go;
/* a Realloc that moves pages: the thread that stops inside that mremap,
** and where they go */
static _Thread_local int stop_in_move;
static sem_t in_move, move_go;
static _Atomic uintptr_t moving_to;

/* The bytes mapped for the threads' caches' arrays of remote words (a
** page at the thread's first call, for several threads' arrays), and how
** many of those pages: mappings of less than a MiB too. */
static size_t remote_bytes(void) {
  size_t arrays, spare, bytes;
  ta_remote_pool_counts(&arrays, &spare, &bytes);
  return bytes;
}

static int remote_pages(void) { return (int)(remote_bytes() / (size_t)page); }

/* The mappings of less than a MiB but leaves, but for those pages. */
static int nsmall_other(void) {
  return atomic_load(&nsmall) - remote_pages();
}

static int mapped_page(void *p) {
  unsigned char v;
  return mincore(p, (size_t)page, &v) == 0;
}

/* [p, p + len) of the mapping [r, r + total) that holds it unmapped
** around it, by the C library's munmap (not counted: never held). */
static void trim_to(char *r, size_t total, uintptr_t p, size_t len) {
  static int (*real_munmap)(void *, size_t);
  INTERPOSE_NEXT(real_munmap, "munmap");
  if (p > (uintptr_t)r) real_munmap(r, p - (uintptr_t)r);
  if ((uintptr_t)r + total > p + len)
    real_munmap((void *)(p + len), (uintptr_t)r + total - (p + len));
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  static void *(*real)(void *, size_t, int, int, int, off_t);
  void *r;
  uintptr_t at;
  INTERPOSE_NEXT(real, "mmap");
  if ((at = atomic_exchange(&answer_at, 0)) != 0) {
    if (at < HIGH) {
      atomic_store(&fake_lo, at);
      atomic_store(&fake_hi, at + len);
    }
    return (void *)at;
  }
  if ((at = atomic_exchange(&map_at, 0)) != 0) {
    r = real((void *)at, len, prot, flags | MAP_FIXED_NOREPLACE, fd, off);
    if (r != MAP_FAILED) atomic_fetch_add(&held, (long)len);
    return r;
  }
  if (atomic_exchange(&answer_aligned, 0)) {
    r = real(addr, len + MiB, prot, flags, fd, off);
    if (r == MAP_FAILED) return r;
    at = ((uintptr_t)r + MiB - 1) & ~(uintptr_t)(MiB - 1);
    trim_to(r, len + MiB, at, len);
    atomic_fetch_add(&held, (long)len);
    atomic_store(&aligned_at, at);
    return (void *)at;
  }
  if (atomic_load(&mmap_refusals) > 0 && atomic_load(&mmap_passes) > 0) {
    atomic_fetch_sub(&mmap_passes, 1);
  } else if (atomic_load(&mmap_refusals) > 0) {
    atomic_fetch_sub(&mmap_refusals, 1);
    errno = ENOMEM;
    return MAP_FAILED;
  }
  if (len == (size_t)page) {
    int n = atomic_load(&page_refusals);
    if (n < 0 || (n > 0 && atomic_compare_exchange_strong(&page_refusals,
                                                          &n, n - 1))) {
      atomic_fetch_add(&pages_refused, 1);
      errno = ENOMEM;
      return MAP_FAILED;
    }
  }
  if (len == LEAF) {
    int n = atomic_load(&leaf_refusals);
    if (n < 0 || (n > 0 && atomic_compare_exchange_strong(&leaf_refusals,
                                                          &n, n - 1))) {
      errno = ENOMEM;
      return MAP_FAILED;
    }
  }
  r = real(addr, len, prot, flags, fd, off);
  if (r != MAP_FAILED) atomic_fetch_add(&held, (long)len);
  if (r != MAP_FAILED && len < MiB && len != LEAF) {
    int i = atomic_fetch_add(&nsmall, 1);
    if (i < 4) atomic_store(&small_maps[i], len);
  }
  if (r != MAP_FAILED && len == LEAF && stop_in_leaf) {
    stop_in_leaf = 0;
    atomic_store(&held_leaf, (uintptr_t)r);
    sem_post(&in_leaf);
    sem_wait(&leaf_done);  /* the other thread maps and installs its own */
  }
  return r;
}

int munmap(void *addr, size_t len) {
  static int (*real)(void *, size_t);
  size_t off;
  INTERPOSE_NEXT(real, "munmap");
  if ((uintptr_t)addr >= HIGH ||
      ((uintptr_t)addr >= atomic_load(&fake_lo) &&
       (uintptr_t)addr < atomic_load(&fake_hi))) {
    atomic_fetch_add(&high_unmapped, len);
    return 0;
  }
  if (len == 0) atomic_fetch_add(&bad_unmaps, 1);  /* EINVAL */
  for (off = 0; off < len; off += (size_t)page) {
    if (mapped_page((char *)addr + off))
      atomic_fetch_sub(&held, page);
    else
      atomic_fetch_add(&bad_unmaps, 1);
  }
  if (len == LEAF) atomic_store(&unmapped_leaf, (uintptr_t)addr);
  if (stop_in_munmap) {
    stop_in_munmap = 0;
    sem_post(&in_munmap);
    sem_wait(&munmap_go);  /* the other thread tries to free the block */
  }
  return real(addr, len);
}

void *mremap(void *old, size_t oldlen, size_t newlen, int flags, ...) {
  static mremap_fn real;
  void *to, *r;
  INTERPOSE_NEXT(real, "mremap");
  MREMAP_TARGET(flags, to);
  if (atomic_load(&refuse_mremap) == 1 ||
      (atomic_load(&refuse_mremap) == 2 && !(flags & MREMAP_FIXED))) {
    if (to) atomic_store(&refused_move_to, (uintptr_t)to);
    errno = ENOMEM;
    return MAP_FAILED;
  }
  if (to && ((atomic_load(&old_kernel) == 1 && oldlen > MiB) ||
             atomic_load(&old_kernel) >= 2)) {
    errno = atomic_load(&old_kernel) == 3 && oldlen == newlen ? ENOMEM : EFAULT;
    atomic_fetch_add(&moves_failed, 1);
    return MAP_FAILED;
  }
  if (to && stop_in_move) {
    stop_in_move = 0;
    atomic_store(&moving_to, (uintptr_t)to);
    sem_post(&in_move);
    sem_wait(&move_go);  /* the other thread looks at both blocks */
  }
  r = interpose_mremap(real, old, oldlen, newlen, flags, to);
  if (r == MAP_FAILED && errno == EINVAL)  /* arguments no system takes */
    atomic_fetch_add(&bad_unmaps, 1);
  if (r != MAP_FAILED && to && atomic_load(&old_kernel))
    atomic_fetch_add(&moves_done, 1);
  if (r != MAP_FAILED) {
    /* a move replaces the mapping at `to`: only the old range goes */
    if (flags & MREMAP_FIXED) atomic_fetch_sub(&held, (long)oldlen);
    else atomic_fetch_add(&held, (long)newlen - (long)oldlen);
  }
  return r;
}

/* The system's count and the allocator's agree, and nothing was unmapped
** that was not mapped (nor 0 bytes), nor an mremap refused as invalid
** (EINVAL; bad_unmaps counts all three). */
static int agrees(void) {
  size_t mapped = stats().mapped_bytes;
  long h = atomic_load(&held);
  if ((long)mapped != h || atomic_load(&bad_unmaps))
    printf("# mapped_bytes %zu, the system's count %ld, %d bad unmaps\n",
           mapped, h, atomic_load(&bad_unmaps));
  return (long)mapped == h && atomic_load(&bad_unmaps) == 0;
}

/* ---- a spy, for fSpyed ---------------------------------------------------- */

/* What a C IMallocSpy's PreDidAlloc is told: fSpyed, TRUE for a pointer
** inside a live block allocated under the spy, found through the block's
** table entries (a large block's further MiB through their own). */
static int spy_told;
static void *STDMETHODCALLTYPE tell_pre(IMallocSpy *This, void *p, BOOL f) {
  (void)This;
  spy_told = f;
  return p;
}
static const IMallocSpyVtbl tell_vtbl =
    FAKE_SPY_VTBL(pass_prealloc, pass_pre, pass_prerealloc, pass_pre, tell_pre);
static IMallocSpy tell = { &tell_vtbl };

/* fSpyed for p (-1: PreDidAlloc not called). */
static int spyed_at(const void *p) {
  spy_told = -1;
  DIDALLOC((void *)p);
  return spy_told;
}

/* ---- accounting -------------------------------------------------------- */

static void *shrink(void *arg) {
  stop_in_munmap = 1;
  *(void **)arg = REALLOC(*(void **)arg, 2 * MiB);
  return NULL;
}

/* A Realloc that shrinks a block in place marks it BUSY while it gives
** the tail back: a Free of it from another thread meanwhile does nothing.
** The shrinking thread stops inside the tail's munmap. */
static void busy_shrink(void) {
  unsigned char *p = ALLOC(6 * MiB);
  void *r = p;
  size_t live;
  pthread_t t;
  CHECK(p != NULL);
  if (!p) return;
  fill(p, 2 * MiB, 5);
  live = stats().live_blocks;
  sem_init(&in_munmap, 0, 0);
  sem_init(&munmap_go, 0, 0);
  if (pthread_create(&t, NULL, shrink, &r) != 0) {
    CHECK(!"pthread_create");
    FREE(p);
    return;
  }
  sem_wait(&in_munmap);
  CHECK(DIDALLOC(p) == 1);
  FREE(p);
  sem_post(&munmap_go);
  pthread_join(t, NULL);
  CHECK(r == p);
  CHECK(stats().live_blocks == live);
  CHECK(DIDALLOC(p) == 1 && GETSIZE(p) == 2 * MiB && is_pattern(p, 2 * MiB, 5));
  CHECK(agrees());
  FREE(p);
  CHECK(stats().live_blocks == live - 1);
  sem_destroy(&in_munmap);
  sem_destroy(&munmap_go);
}

static void *grow(void *arg) {
  stop_in_move = 1;
  *(void **)arg = REALLOC(*(void **)arg, 6 * MiB);
  return NULL;
}

/* A Realloc that moves a block's pages to a new range publishes the new
** block, BUSY, before it moves them: while they move, the new address is a
** block of the new size that a Free from another thread leaves alone, and
** the old one is no block. The growing thread stops inside that mremap
** (growth in place refused). */
static void busy_move(void) {
  unsigned char *p = ALLOC(2 * MiB + 1);
  void *r = p, *q;
  pthread_t t;
  CHECK(p != NULL);
  if (!p) return;
  fill(p, 2 * MiB + 1, 6);
  sem_init(&in_move, 0, 0);
  sem_init(&move_go, 0, 0);
  atomic_store(&refuse_mremap, 2);
  if (pthread_create(&t, NULL, grow, &r) != 0) {
    CHECK(!"pthread_create");
    atomic_store(&refuse_mremap, 0);
    FREE(p);
    return;
  }
  sem_wait(&in_move);
  q = (void *)atomic_load(&moving_to);
  CHECK(DIDALLOC(p) == 0);
  CHECK(DIDALLOC(q) == 1 && GETSIZE(q) == 6 * MiB);
  FREE(q);  /* BUSY: nothing */
  sem_post(&move_go);
  pthread_join(t, NULL);
  atomic_store(&refuse_mremap, 0);
  CHECK(r == q);
  CHECK(DIDALLOC(q) == 1 && GETSIZE(q) == 6 * MiB && is_pattern(q, 2 * MiB + 1, 6));
  CHECK(agrees());
  FREE(r);
  CHECK(agrees());
  sem_destroy(&in_move);
  sem_destroy(&move_go);
}

static void accounting(void) {
  enum { NS = 3000 };
  static void *small[NS];
  unsigned char *p, *q, *cached;
  size_t i;
  int ok = 1;

  /* chunks, the pool's array, leaves */
  for (i = 0; i < NS; i++) {
    small[i] = ALLOC(16 + (i % 40) * 200);
    if (!small[i]) ok = 0;
  }
  CHECK(ok);
  CHECK(agrees());
  for (i = 0; i < NS; i++) FREE(small[i]);
  m->lpVtbl->HeapMinimize(m);
  CHECK(agrees());

  /* large blocks of sizes that are, and are not, whole MiB: aligned
  ** mappings whose ends are trimmed */
  {
    static const size_t sizes[] = { 65537, 200000, MiB, MiB + 1,
                                    3 * MiB + 5, 5 * MiB, 7 * MiB + 4096 };
    void *v[sizeof sizes / sizeof sizes[0]];
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      v[i] = ALLOC(sizes[i]);
      CHECK(v[i] != NULL && GETSIZE(v[i]) == sizes[i]);
      CHECK(agrees());
    }
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) FREE(v[i]);
    CHECK(agrees());
  }

  /* the system's answer aligned already: the block is its start, and only
  ** the slack after it goes back (there is none before it) */
  m->lpVtbl->HeapMinimize(m);  /* no kept mapping to serve it */
  atomic_store(&answer_aligned, 1);
  p = ALLOC(3 * MiB);
  CHECK(atomic_load(&answer_aligned) == 0);
  CHECK(p != NULL && (uintptr_t)p == atomic_load(&aligned_at));
  CHECK(agrees());
  FREE(p);
  m->lpVtbl->HeapMinimize(m);
  CHECK(agrees());

  /* a cached mapping reused for a smaller block, its tail given back */
  p = ALLOC(6 * MiB);
  FREE(p);
  q = ALLOC(4 * MiB);
  CHECK(q != NULL);
  CHECK(agrees());

  /* grown, then shrunk, by mremap and munmap */
  q = REALLOC(q, 9 * MiB + 1);
  CHECK(q != NULL && GETSIZE(q) == 9 * MiB + 1);
  CHECK(agrees());
  q = REALLOC(q, 2 * MiB + 3);
  CHECK(q != NULL && GETSIZE(q) == 2 * MiB + 3);
  CHECK(agrees());
  q = REALLOC(q, 2 * MiB + 100000);  /* grown within its last MiB */
  CHECK(q != NULL && GETSIZE(q) == 2 * MiB + 100000);
  q = REALLOC(q, 2 * MiB + 5);  /* and shrunk there: no entry to clear */
  CHECK(q != NULL && GETSIZE(q) == 2 * MiB + 5);
  CHECK(agrees());
  FREE(q);
  m->lpVtbl->HeapMinimize(m);  /* the cache unmapped */
  CHECK(agrees());

  /* mremap refused: the growth is a copy, and the range it was to move
  ** into is neither ours nor mapped any more. A cached mapping of the new
  ** size serves the copy, so the refused range is not taken again. */
  p = ALLOC(2 * MiB + 1);  /* before: the cached one serves only the copy */
  cached = ALLOC(6 * MiB);
  FREE(cached);
  CHECK(p != NULL);
  if (p) {
    fill(p, 2 * MiB + 1, 3);
    atomic_store(&refuse_mremap, 1);
    q = REALLOC(p, 6 * MiB);
    atomic_store(&refuse_mremap, 0);
    CHECK(q != NULL);
    if (q) {
      uintptr_t to = atomic_load(&refused_move_to);
      CHECK(q == cached);
      CHECK(is_pattern(q, 2 * MiB + 1, 3) && GETSIZE(q) == 6 * MiB);
      CHECK(DIDALLOC(p) == 0);
      CHECK(to != 0);
      CHECK(DIDALLOC((void *)to) == 0 && GETSIZE((void *)to) == (SIZE_T)-1);
      CHECK(!mapped_page((void *)to));
      CHECK(agrees());
      FREE(q);
    }
  }

  /* a large block's mapping refused: NULL, and nothing unmapped that was
  ** not mapped */
  m->lpVtbl->HeapMinimize(m);  /* no kept mapping to serve it */
  /* a mapping above what the table covers: refused, all of it given back */
  atomic_store(&answer_at, HIGH);
  p = ALLOC(3 * MiB);
  CHECK(p == NULL);
  CHECK(atomic_load(&answer_at) == 0);
  CHECK(atomic_load(&high_unmapped) == 4 * MiB);  /* 3 MiB and the slack */
  CHECK(agrees());

  {
    long before = atomic_load(&held);
    atomic_store(&mmap_refusals, 1);
    p = ALLOC(3 * MiB);
    CHECK(p == NULL);
    CHECK(atomic_load(&mmap_refusals) == 0);
    CHECK(atomic_load(&held) == before);
    CHECK(agrees());
  }
  busy_shrink();
  busy_move();
  /* the range a growth would move to refused: copied instead */
  m->lpVtbl->HeapMinimize(m);
  p = ALLOC(2 * MiB + 1);
  CHECK(p != NULL);
  if (p) {
    fill(p, 2 * MiB + 1, 2);
    atomic_store(&refuse_mremap, 2);
    atomic_store(&mmap_refusals, 1);
    q = REALLOC(p, 5 * MiB);
    atomic_store(&refuse_mremap, 0);
    CHECK(atomic_load(&mmap_refusals) == 0);
    CHECK(q != NULL && is_pattern(q, 2 * MiB + 1, 2) && GETSIZE(q) == 5 * MiB);
    CHECK(agrees());
    FREE(q ? q : p);
  }
  /* a kept mapping that needs a new aligned range (a tail not aligned; one
  ** too short that cannot grow where it is), that range refused: the kept
  ** pages go back, and the block is mapped afresh */
  m->lpVtbl->HeapMinimize(m);
  FREE(ALLOC(6 * MiB));
  p = ALLOC(5 * MiB / 2);  /* its last 3.5 MiB stay kept, not aligned */
  atomic_store(&mmap_refusals, 1);
  q = ALLOC(3 * MiB);
  CHECK(atomic_load(&mmap_refusals) == 0);
  CHECK(p != NULL && q != NULL && q != p + 5 * MiB / 2);
  CHECK(agrees());
  FREE(p);
  FREE(q);
  m->lpVtbl->HeapMinimize(m);
  /* a kept mapping whose every page another took is no longer kept: an
  ** Alloc that finds the cache empty maps afresh, asking nothing odd */
  p = ALLOC(3 * MiB);
  q = ALLOC(MiB);
  FREE(p);
  FREE(q);
  p = ALLOC(4 * MiB);  /* the 3 MiB, and the 1 MiB's pages */
  q = ALLOC(2 * MiB);
  CHECK(p != NULL && q != NULL);
  CHECK(agrees());
  FREE(p);
  FREE(q);
  m->lpVtbl->HeapMinimize(m);
  FREE(ALLOC(2 * MiB));  /* kept: 2 MiB */
  atomic_store(&refuse_mremap, 2);
  atomic_store(&mmap_refusals, 1);
  q = ALLOC(3 * MiB);
  atomic_store(&refuse_mremap, 0);
  CHECK(atomic_load(&mmap_refusals) == 0);
  CHECK(q != NULL);
  CHECK(agrees());
  FREE(q);
  m->lpVtbl->HeapMinimize(m);
  CHECK(agrees());
}

/* ---- the pool's array ---------------------------------------------------- */

/* The pool keeps the addresses of the empty chunks whose pages it gave
** back in an array of its own, a page at first (512 chunks), doubled when
** full. Blocks of 64 KiB, a dozen to a chunk, are never written: the
** chunks cost little (a page each: the header). */
enum { NCHUNKS = 600, MAXB = NCHUNKS * 16 };
static void *pool_v[MAXB];
static uintptr_t pool_c[NCHUNKS];

/* Blocks of 64 KiB into pool_v until they span nchunks chunks (their
** addresses into pool_c): how many blocks, or 0 if one did not come. */
static int fill_chunks(int nchunks) {
  int n = 0, chunks = 0;
  while (chunks < nchunks && n < MAXB) {
    uintptr_t c;
    if (!(pool_v[n] = ALLOC(65536))) return 0;
    c = (uintptr_t)pool_v[n++] & ~(MiB - 1);
    if (!chunks || c != pool_c[chunks - 1]) pool_c[chunks++] = c;
  }
  return chunks == nchunks ? n : 0;
}

/* Whether the header page of the chunk at c is resident. */
static int headers_resident_at(uintptr_t c) {
  unsigned char v;
  return mincore((void *)c, (size_t)page, &v) == 0 && (v & 1);
}

/* Of the first n chunks of pool_c, those whose header page is resident. */
static int headers_resident(int n) {
  int i, r = 0;
  for (i = 0; i < n; i++) r += headers_resident_at(pool_c[i]);
  return r;
}

/* Over 600 chunks emptied and given back: the array is mapped (a page),
** then moved to a mapping of two, and mapped_bytes follows both, and so
** does metadata_bytes: of what the 600 chunks (new: this process had
** none) and the array added, all is bookkeeping but the chunks' blocks.
** The same blocks again are carved from those chunks, all 600 found in
** the array: not one chunk mapped. */
static void pool_array(void) {
  struct imalloc_taskstats st0 = stats(), st1;
  int n = fill_chunks(NCHUNKS), i;
  size_t mapped;
  CHECK(n > 0);
  CHECK(agrees());
  for (i = 0; i < n; i++) FREE(pool_v[i]);
  m->lpVtbl->HeapMinimize(m);  /* every empty chunk's pages given back */
  CHECK(agrees());
  st1 = stats();
  CHECK(st1.live_blocks == 0);
  CHECK((st1.mapped_bytes - st0.mapped_bytes) -
            (st1.metadata_bytes - st0.metadata_bytes) ==
        (size_t)NCHUNKS * (CHUNK_SIZE - CHUNK_HDR));
  CHECK(remote_pages() == 1);  /* this thread's, at its first call */
  CHECK(nsmall_other() == 2);
  CHECK(atomic_load(&small_maps[1]) == (size_t)page);
  CHECK(atomic_load(&small_maps[2]) == 2 * (size_t)page);
  mapped = stats().mapped_bytes;
  n = fill_chunks(NCHUNKS);
  CHECK(n > 0);
  CHECK(stats().mapped_bytes == mapped);
  CHECK(agrees());
  for (i = 0; i < n; i++) FREE(pool_v[i]);
  CHECK(stats().live_blocks == 0);
}

/* 40 chunks emptied with every mmap refused: the pool keeps 32 (MiB, the
** bound) with their pages; the pages of the others are given back, but
** the array that would hold them cannot be mapped: they stay in the pool
** as if they had their pages, and trimming stops. The same blocks again
** take those 40 chunks from the pool, no chunk mapped. With mmap allowed
** again, 33 of them emptied: the pool keeps 32 with their pages, the
** 33rd's go back to the system (the array is mapped), the 7 in use keep
** theirs. */
enum { REFUSED_N = 40, REFUSED_KEPT = 32 };
static size_t refused_mapped;  /* mapped_bytes after the second fill */
static int refused_n;          /* its blocks */

/* The second fill, in a thread whose exit gives its cache back: the
** blocks of the first REFUSED_KEPT + 1 chunks freed. */
static void *refill_chunks(void *arg) {
  int i, j;
  (void)arg;
  refused_n = fill_chunks(REFUSED_N);
  refused_mapped = refused_n > 0 ? stats().mapped_bytes : 0;
  for (i = 0; i < refused_n; i++) {
    for (j = 0; j <= REFUSED_KEPT; j++)
      if (((uintptr_t)pool_v[i] & ~(MiB - 1)) == pool_c[j]) break;
    if (j <= REFUSED_KEPT) {
      FREE(pool_v[i]);
      pool_v[i] = NULL;
    }
  }
  return NULL;
}

static void pool_refused(void) {
  int n = fill_chunks(REFUSED_N), i;
  size_t mapped;
  pthread_t t;
  CHECK(n > 0);
  atomic_store(&mmap_refusals, 1000);
  for (i = 0; i < n; i++) FREE(pool_v[i]);
  m->lpVtbl->HeapMinimize(m);
  atomic_store(&mmap_refusals, 0);
  CHECK(nsmall_other() == 0);
  CHECK(agrees());
  CHECK(stats().live_blocks == 0);
  mapped = stats().mapped_bytes;
  CHECK(pthread_create(&t, NULL, refill_chunks, NULL) == 0 &&
        pthread_join(t, NULL) == 0);
  CHECK(refused_n > 0);
  CHECK(refused_mapped == mapped);
  CHECK(nsmall_other() == 1);
  i = headers_resident(REFUSED_N);
  if (i != REFUSED_N - 1)
    printf("# %d of %d chunks kept their pages\n", i, REFUSED_N);
  CHECK(i == REFUSED_N - 1);
  for (i = 0; i < refused_n; i++) FREE(pool_v[i]);
  m->lpVtbl->HeapMinimize(m);
  CHECK(stats().live_blocks == 0);
  CHECK(agrees());
}

/* ---- leaves -------------------------------------------------------------- */

/* The first large block needs the first leaf; refused once, the block is
** refused, and nothing stays mapped for it: not even a leaf to clear its
** entries (a region without a leaf already reads 0). */
/* The first small block needs the first chunk, and the chunk's entry the
** first leaf: refused once, the block is refused, and the chunk is kept
** in the pool, empty, as if it had had blocks: the next block (from a
** thread, which gives its cache back when it ends) comes from it (no
** other chunk mapped), and once it is empty again the pool keeps it with
** its pages (nothing to give back: no array of such chunks mapped). Then
** 40 chunks (it first) emptied: the pool keeps 32 with their pages. */
static uintptr_t small_chunk;

static void *small_block(void *arg) {
  void *p = ALLOC(100);
  (void)arg;
  small_chunk = (uintptr_t)p & ~(MiB - 1);
  FREE(p);
  return NULL;
}

static void *fill_and_free(void *arg) {
  int n = fill_chunks(REFUSED_N), i;
  (void)arg;
  for (i = 0; i < n; i++) FREE(pool_v[i]);
  return NULL;
}

static void leaf_small(void) {
  size_t mapped;
  pthread_t t;
  atomic_store(&leaf_refusals, 1);
  CHECK(ALLOC(100) == NULL);
  CHECK(atomic_load(&leaf_refusals) == 0);
  CHECK(agrees());
  mapped = stats().mapped_bytes;
  CHECK(pthread_create(&t, NULL, small_block, NULL) == 0 &&
        pthread_join(t, NULL) == 0);
  CHECK(small_chunk != 0);
  CHECK(stats().mapped_bytes == mapped + LEAF);
  CHECK(nsmall_other() == 0);
  CHECK(agrees());
  CHECK(pthread_create(&t, NULL, fill_and_free, NULL) == 0 &&
        pthread_join(t, NULL) == 0);
  CHECK(pool_c[0] == small_chunk);  /* the pool's only chunk, taken first */
  CHECK(headers_resident(REFUSED_N) == REFUSED_KEPT);
}

static void leaf_once(void) {
  struct imalloc_taskstats st0 = stats(), st1;
  void *p;
  atomic_store(&leaf_refusals, 1);
  p = ALLOC(3 * MiB);
  CHECK(p == NULL);
  st1 = stats();
  CHECK(st1.mapped_bytes == st0.mapped_bytes);
  CHECK(st1.metadata_bytes == st0.metadata_bytes);
  CHECK(st1.live_blocks == st0.live_blocks);
  CHECK(agrees());
  p = ALLOC(3 * MiB);  /* and once the system gives it */
  CHECK(p != NULL && DIDALLOC(p) == 1 && GETSIZE(p) == 3 * MiB);
  st1 = stats();
  if (p)  /* one leaf, or two for a block across a 16 GiB boundary; and
          ** the page of this thread's remote words, at its first call that
          ** got memory */
    CHECK(st1.metadata_bytes ==
          st0.metadata_bytes + remote_bytes() +
              LEAF * (1 + (REGION(p) != REGION((char *)p + 3 * MiB - 1))));
  CHECK(agrees());
  FREE(p);
}

/* No leaf can be had: no block is handed out that the table cannot
** find, small or large. */
static void leaf_always(void) {
  struct imalloc_taskstats st0 = stats(), st1;
  void *p, *s;
  atomic_store(&leaf_refusals, -1);
  p = ALLOC(3 * MiB);
  CHECK(p == NULL);
  st1 = stats();
  CHECK(st1.mapped_bytes == st0.mapped_bytes);
  CHECK(st1.metadata_bytes == st0.metadata_bytes);
  s = ALLOC(100);  /* its new chunk goes to the pool, mapped */
  CHECK(s == NULL);
  CHECK(stats().live_blocks == st0.live_blocks);
  CHECK(agrees());
  atomic_store(&leaf_refusals, 0);
  p = ALLOC(3 * MiB);
  s = ALLOC(100);
  CHECK(p != NULL && DIDALLOC(p) == 1);
  CHECK(s != NULL && DIDALLOC(s) == 1);
  CHECK(agrees());
  FREE(p);
  FREE(s);
}

/* Two threads need the same new leaf: the one that maps it second
** unmaps its own, and the count stays exact. Thread A stops inside its
** leaf's mmap until thread B has allocated (and installed its leaf). */
static void *race_a(void *arg) {
  stop_in_leaf = 1;
  *(void **)arg = ALLOC(3 * MiB);
  return NULL;
}

static void leaf_race(void) {
  pthread_t a;
  void *pa = NULL, *pb;
  sem_init(&in_leaf, 0, 0);
  sem_init(&leaf_done, 0, 0);
  if (pthread_create(&a, NULL, race_a, &pa) != 0) {
    CHECK(!"pthread_create");
    return;
  }
  sem_wait(&in_leaf);
  pb = ALLOC(3 * MiB);   /* maps and installs the same leaf */
  sem_post(&leaf_done);
  pthread_join(a, NULL);
  CHECK(pa != NULL && pb != NULL);
  if (!pa || !pb) return;
  if (REGION(pa) != REGION(pb)) {  /* then there was no race to lose */
    printf("# not tested: the two blocks are 16 GiB apart (%p, %p)\n", pa,
           pb);
  } else {
    CHECK(atomic_load(&unmapped_leaf) == atomic_load(&held_leaf));
  }
  CHECK(DIDALLOC(pa) == 1 && DIDALLOC(pb) == 1);
  CHECK(agrees());
  FREE(pa);
  FREE(pb);
  CHECK(agrees());
  sem_destroy(&in_leaf);
  sem_destroy(&leaf_done);
}

/* Every free range of the 16 GiB that p lies in, taken by an inaccessible
** mapping of the test's own (made by the system call itself, so that the
** counts above do not see it): the allocator's next mapping then lies in
** a range whose table leaf was never mapped. */
static int fill_region_of(void *p) {
  uintptr_t lo = REGION(p) << 34, hi = lo + ((uintptr_t)1 << 34), at = lo;
  unsigned long start, end;
  char line[512];
  FILE *f = fopen("/proc/self/maps", "r");
  int ok = f != NULL;
  while (ok) {
    int last = !fgets(line, sizeof line, f) ||
               sscanf(line, "%lx-%lx", &start, &end) != 2;
    if (last) start = end = hi;
    if (start > at && at < hi) {
      uintptr_t to = start < hi ? start : hi;
      long r = syscall(SYS_mmap, at, to - at, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                           MAP_FIXED_NOREPLACE, -1, 0);
      if (r < 0 && r > -4096) ok = 0;
    }
    if (end > at) at = end;
    if (last) break;
  }
  if (f) fclose(f);
  return ok;
}

/* A block grown where it cannot grow in place, into a range whose leaf
** cannot be mapped: the range is given back, and the block is copied
** into one whose leaf can. */
static void leaf_grow(void) {
  unsigned char *p = ALLOC(2 * MiB + 1), *q;
  CHECK(p != NULL);
  if (!p) return;
  fill(p, 2 * MiB + 1, 7);
  if (!fill_region_of(p)) {
    CHECK(!"filling the block's 16 GiB");
    return;
  }
  atomic_store(&refuse_mremap, 2);
  atomic_store(&leaf_refusals, 1);
  q = REALLOC(p, 6 * MiB);
  atomic_store(&refuse_mremap, 0);
  CHECK(q != NULL);
  if (!q) return;
  CHECK(atomic_load(&leaf_refusals) == 0);
  CHECK(REGION(q) != REGION(p));
  CHECK(is_pattern(q, 2 * MiB + 1, 7) && GETSIZE(q) == 6 * MiB);
  CHECK(DIDALLOC(p) == 0 && DIDALLOC(q) == 1);
  CHECK(agrees());
  FREE(q);
  CHECK(agrees());
}

/* ---- the threads' remote words ------------------------------------------ */

/* A thread's cache keeps the blocks it frees of other threads' chunks on
** per-class lists whose words (an array, struct tcache's remote) are not
** in the thread's TLS but in pages mapped for them. */
enum { RN = 64, RW = 12, RSEQ = 50 };
static void *main_blocks[RN];
static struct remote_seen {
  uintptr_t *remote;           /* the array its cache got */
  int state;                   /* its cache's state */
  size_t arrays, spare;        /* the pool's counts then */
} seen[RW];
static _Atomic int remote_bad; /* a block wrong in a thread */
static sem_t remote_started, remote_go;

static void main_alloc(void) {
  int i;
  for (i = 0; i < RN; i++) {
    main_blocks[i] = ALLOC(48);
    if (main_blocks[i]) memset(main_blocks[i], i, 48);
  }
}

/* Frees main's blocks (another thread's chunk: its remote path when its
** cache is active), allocates and frees its own; notes what its cache got
** in seen[i]. */
static void remote_work(int i) {
  size_t bytes;
  void *own[RN];
  int j;
  for (j = 0; j < RN; j++) {
    own[j] = ALLOC(48);
    if (!own[j] || DIDALLOC(own[j]) != 1 || GETSIZE(own[j]) != 48)
      atomic_store(&remote_bad, 1);
  }
  seen[i].remote = ta_self->remote;
  seen[i].state = ta_self->state;
  ta_remote_pool_counts(&seen[i].arrays, &seen[i].spare, &bytes);
  for (j = 0; j < RN; j++) {
    unsigned char *q = main_blocks[j];
    if (!q || q[0] != (unsigned char)j || q[47] != (unsigned char)j)
      atomic_store(&remote_bad, 1);
    FREE(q);
    FREE(own[j]);
  }
}

static void *remote_one(void *arg) {
  remote_work((int)(intptr_t)arg);
  return NULL;
}

/* Holds its cache (and array) until main says go. */
static void *remote_held(void *arg) {
  int i = (int)(intptr_t)arg;
  size_t bytes;
  FREE(ALLOC(48));
  seen[i].remote = ta_self->remote;
  seen[i].state = ta_self->state;
  ta_remote_pool_counts(&seen[i].arrays, &seen[i].spare, &bytes);
  sem_post(&remote_started);
  sem_wait(&remote_go);
  return NULL;
}

static int run_thread(void *(*f)(void *), int i) {
  pthread_t t;
  return pthread_create(&t, NULL, f, (void *)(intptr_t)i) == 0 &&
         pthread_join(t, NULL) == 0;
}

/* A thread's array goes back to the pool at its exit and the next thread
** takes it: 1 + RSEQ threads one after another use one array (main has
** another), and map nothing for it. RW threads alive at once take RW
** arrays (and main's 1), from as many pages as those hold; at their exit
** all RW are spare. Every thread frees main's blocks through its remote
** lists: all are freed. */
static void remote_reuse(void) {
  size_t arrays, spare, bytes, per;
  uintptr_t *first;
  int i, k, distinct;
  pthread_t t[RW];
  FREE(ALLOC(48));  /* this thread's cache: an array, a page for it */
  ta_remote_pool_counts(&arrays, &spare, &bytes);
  CHECK(arrays == 1 && spare == 0 && bytes == (size_t)page);
  CHECK(ta_self->state == TC_ACTIVE);
  CHECK(ta_self->remote != ta_noremote);
  main_alloc();
  CHECK(run_thread(remote_one, 0));
  CHECK(seen[0].state == TC_ACTIVE);
  CHECK(seen[0].arrays == 2 && seen[0].spare == 0);
  CHECK(seen[0].remote != ta_self->remote);
  first = seen[0].remote;
  ta_remote_pool_counts(&arrays, &spare, &bytes);
  CHECK(arrays == 2 && spare == 1);  /* given back at its exit */
  CHECK(stats().live_blocks == 0);   /* main's blocks, freed there */
  for (i = 0; i < RSEQ; i++) {
    main_alloc();
    memset(&seen[1], 0, sizeof seen[1]);
    CHECK(run_thread(remote_one, 1));
    if (seen[1].remote != first || seen[1].arrays != 2 ||
        seen[1].spare != 0 || seen[1].state != TC_ACTIVE) {
      printf("# thread %d: array %p (first %p), %zu arrays, %zu spare\n",
             i + 1, (void *)seen[1].remote, (void *)first, seen[1].arrays,
             seen[1].spare);
      CHECK(0);
      break;
    }
    CHECK(stats().live_blocks == 0);
  }
  ta_remote_pool_counts(&arrays, &spare, &bytes);
  CHECK(arrays == 2 && spare == 1 && bytes == (size_t)page);
  CHECK(atomic_load(&remote_bad) == 0);
  sem_init(&remote_started, 0, 0);
  sem_init(&remote_go, 0, 0);
  for (i = 0; i < RW; i++)
    CHECK(pthread_create(&t[i], NULL, remote_held, (void *)(intptr_t)i) == 0);
  for (i = 0; i < RW; i++) sem_wait(&remote_started);
  ta_remote_pool_counts(&arrays, &spare, &bytes);
  per = (size_t)page / (NCLASS * sizeof(uintptr_t));
  CHECK(arrays == 1 + RW && spare == 0);
  CHECK(bytes == (1 + RW + per - 1) / per * (size_t)page);
  distinct = 1;
  for (i = 0; i < RW; i++) {
    if (seen[i].state != TC_ACTIVE || seen[i].remote == ta_self->remote)
      distinct = 0;
    for (k = 0; k < i; k++)
      if (seen[k].remote == seen[i].remote) distinct = 0;
  }
  CHECK(distinct);
  for (i = 0; i < RW; i++) sem_post(&remote_go);
  for (i = 0; i < RW; i++) CHECK(pthread_join(t[i], NULL) == 0);
  ta_remote_pool_counts(&arrays, &spare, &bytes);
  CHECK(arrays == 1 + RW && spare == RW);
  CHECK(stats().live_blocks == 0);
  CHECK(agrees());
}

/* Every page for remote words refused: no thread's cache is set up (each
** call tries again), and Alloc, Free, DidAlloc and GetSize work without
** it, a block freed by another thread included. Once pages are given,
** the next call sets this thread's cache up. */
static void remote_refused(void) {
  size_t arrays, spare, bytes;
  void *p;
  atomic_store(&page_refusals, -1);
  p = ALLOC(100);
  CHECK(p != NULL && DIDALLOC(p) == 1 && GETSIZE(p) == 100);
  CHECK(atomic_load(&pages_refused) >= 1);
  CHECK(ta_self->state == TC_NONE);
  CHECK(ta_self->remote == ta_noremote);
  main_alloc();
  CHECK(run_thread(remote_one, 0));
  CHECK(seen[0].state == TC_NONE);
  CHECK(seen[0].remote == ta_noremote);
  CHECK(atomic_load(&remote_bad) == 0);
  FREE(p);
  CHECK(DIDALLOC(p) == 0);
  CHECK(stats().live_blocks == 0);
  ta_remote_pool_counts(&arrays, &spare, &bytes);
  CHECK(arrays == 0 && bytes == 0);
  CHECK(agrees());
  atomic_store(&page_refusals, 0);
  FREE(ALLOC(48));
  CHECK(ta_self->state == TC_ACTIVE);
  ta_remote_pool_counts(&arrays, &spare, &bytes);
  CHECK(arrays == 1 && bytes == (size_t)page);
  main_alloc();
  CHECK(run_thread(remote_one, 0));
  CHECK(seen[0].state == TC_ACTIVE);
  CHECK(atomic_load(&remote_bad) == 0);
  CHECK(stats().live_blocks == 0);
  CHECK(agrees());
}

/* ---- the table's end ---------------------------------------------------- */

/* A mapping that ends exactly at 2^48, the end of what the table covers
** (user addresses reach 2^48 on arm64 with 48-bit addresses): the block is
** handed out. The system's answer is an address where nothing is mapped:
** the block is never touched, nor freed, and the count of the system's
** side leaves it out. */
static void top(void) {
  uintptr_t at = HIGH - 3 * MiB;
  void *p;
  FREE(ALLOC(100));  /* the thread's cache and the first chunk, before */
  atomic_store(&answer_at, at);
  p = ALLOC(3 * MiB);
  CHECK(atomic_load(&answer_at) == 0);
  CHECK(p == (void *)at);
  CHECK(atomic_load(&high_unmapped) == MiB);  /* the slack past 2^48 */
  CHECK(DIDALLOC(p) == 1 && GETSIZE(p) == 3 * MiB);
  CHECK((long)stats().mapped_bytes == atomic_load(&held) + (long)(3 * MiB));
  CHECK(atomic_load(&bad_unmaps) == 0);
}

/* The largest block, MAX_ALLOC (2^40) bytes, is asked of the system (the
** answer: an address where nothing is mapped, 2^47, above x86-64's user
** addresses; the block is never touched); one byte more is refused without
** asking. */
/* A block grown by a move on a kernel that moves a range of several
** mappings (a block made of pages from several kept mappings) only a
** piece at a time: the pieces, found by halving, land where they belong,
** and a piece that cannot move at all is copied; the bytes, the block's
** answers and the system's count of mapped bytes come out the same. */
static void pieces(void) {
  /* mremaps that fail, per mode: the resizing move, then 1: the 4 MiB and
  ** the two 2 MiB pieces; 2: every piece down to single pages (each page
  ** then copied); 3: the whole range once, then copied */
  const int pages = (int)(4 * MiB / (size_t)page);
  const int failed[4] = { 0, 1 + 3, 1 + 2 * pages - 1, 1 + 1 };
  int mode;
  for (mode = 1; mode <= 3; mode++) {
    unsigned char *b = ALLOC(4 * MiB), *q;
    size_t i;
    int same = 1;
    CHECK(b != NULL);
    if (!b) return;
    for (i = 0; i < 4 * MiB; i += (size_t)page) b[i] = (unsigned char)(i / (size_t)page);
    atomic_store(&moves_done, 0);
    atomic_store(&moves_failed, 0);
    atomic_store(&refuse_mremap, 2);  /* not in place: grown by a move */
    atomic_store(&old_kernel, mode);
    q = REALLOC(b, 8 * MiB);
    atomic_store(&old_kernel, 0);
    atomic_store(&refuse_mremap, 0);
    CHECK(q != NULL && q != b);
    if (!q) return;
    for (i = 0; i < 4 * MiB; i += (size_t)page)
      same &= q[i] == (unsigned char)(i / (size_t)page);
    CHECK(same);
    CHECK(DIDALLOC(q) == 1 && GETSIZE(q) == 8 * MiB && DIDALLOC(b) == 0);
    /* 1: four pieces of a MiB (4 -> 2 + 2 -> 1 + 1 + 1 + 1); else copied */
    CHECK(atomic_load(&moves_done) == (mode == 1 ? 4 : 0));
    CHECK(atomic_load(&moves_failed) == failed[mode]);
    CHECK(agrees());
    memset(q, 1, 8 * MiB);
    FREE(q);
    m->lpVtbl->HeapMinimize(m);
    CHECK(agrees());
  }
}

static void max_block(void) {
  const size_t max = (size_t)1 << 40;
  const uintptr_t at = (uintptr_t)1 << 47;
  void *p;
  void *q = ALLOC(100);  /* the thread's cache and the first chunk, before */
  /* a Realloc as far: beyond it, not asked of the system; to it, asked
  ** (and refused here: the block stays) */
  CHECK(q != NULL);
  atomic_store(&mmap_refusals, 1);
  CHECK(REALLOC(q, max + 1) == NULL);
  CHECK(atomic_load(&mmap_refusals) == 1);
  CHECK(REALLOC(q, max) == NULL);
  CHECK(atomic_load(&mmap_refusals) == 0);
  atomic_store(&mmap_refusals, 0);
  CHECK(GETSIZE(q) == 100 && DIDALLOC(q) == 1);
  FREE(q);
  atomic_store(&answer_at, at);
  errno = 0;
  p = ALLOC(max + 1);
  CHECK(p == NULL && errno == ENOMEM);
  CHECK(atomic_load(&answer_at) == at);  /* not asked */
  p = ALLOC(max);
  CHECK(atomic_load(&answer_at) == 0);
  CHECK(p == (void *)at);
  CHECK(DIDALLOC(p) == 1 && GETSIZE(p) == max);
  CHECK(atomic_load(&high_unmapped) == MiB);  /* the slack */
  CHECK((long)stats().mapped_bytes == atomic_load(&held) + (long)max);
  CHECK(atomic_load(&bad_unmaps) == 0);
}

/* ---- without mremap ------------------------------------------------------ */

/* The allocator as built for a POSIX system without mremap (in the program
** taskalloc_os_no_mremap, whose os.c is compiled without __linux__): its
** pages never move, so a large block grows by a copy, a kept mapping
** serves only a block that starts where it does, and what the system
** holds is what the allocator counts throughout. */
static size_t data_bytes(void) {
  struct imalloc_taskstats st = stats();
  return st.mapped_bytes - st.metadata_bytes;
}

static void no_mremap(void) {
  unsigned char *p, *q, *r, *s;
  size_t base;
  FREE(ALLOC(100));  /* the first chunk, which stays */
  m->lpVtbl->HeapMinimize(m);
  base = data_bytes();
  p = ALLOC(2 * MiB + 1);
  CHECK(p != NULL);
  if (!p) return;
  fill(p, 2 * MiB + 1, 3);
  q = REALLOC(p, 6 * MiB);
  CHECK(q != NULL);
  if (!q) {
    FREE(p);
    return;
  }
  CHECK(is_pattern(q, 2 * MiB + 1, 3) && GETSIZE(q) == 6 * MiB);
  CHECK(DIDALLOC(q) == 1 && (q == p || DIDALLOC(p) == 0));
  CHECK(agrees());
  memset(q, 1, 6 * MiB);  /* every page of it is there */
  FREE(q);                /* kept */
  CHECK(agrees());
  r = ALLOC(5 * MiB / 2);  /* its start; its last 3.5 MiB stay kept */
  CHECK(r == q);
  CHECK(agrees());
  s = ALLOC(3 * MiB);  /* not at the kept tail, which is not aligned */
  CHECK(s != NULL && s != q + 5 * MiB / 2 && ((uintptr_t)s & (MiB - 1)) == 0);
  CHECK(agrees());
  if (s) memset(s, 2, 3 * MiB);
  FREE(r);
  FREE(s);
  r = ALLOC(4 * MiB);  /* a kept mapping of 2.5 or 3 MiB cannot grow to it */
  CHECK(r != NULL);
  CHECK(agrees());
  if (r) memset(r, 3, 4 * MiB);
  FREE(r);
  m->lpVtbl->HeapMinimize(m);
  CHECK(agrees());
  CHECK(data_bytes() == base);  /* every mapping given back */
}

/* A 16 GiB boundary with nothing mapped in the 16 GiB below it nor in the
** 16 GiB above (so no table leaf of either region): 0 if none. */
static uintptr_t free_boundary(void) {
  const uintptr_t region = (uintptr_t)1 << 34;
  unsigned long start, end, prev_end = 0;
  char line[512];
  uintptr_t found = 0;
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return 0;
  for (;;) {
    int last = !fgets(line, sizeof line, f) ||
               sscanf(line, "%lx-%lx", &start, &end) != 2;
    if (last || start > (unsigned long)(HIGH >> 1))
      start = (unsigned long)(HIGH >> 1);  /* x86-64's user top */
    if (start > prev_end) {  /* the gap [prev_end, start) */
      uintptr_t b = ((uintptr_t)prev_end + 2 * region - 1) & ~(region - 1);
      if (b - region >= (uintptr_t)prev_end && b + region <= start) found = b;
    }
    if (last || end >= (unsigned long)(HIGH >> 1)) break;
    prev_end = end;
  }
  fclose(f);
  return found;
}

/* A large block mapped by this program at `at` (the allocator's mmap
** answered there; no kept mapping may serve it), or NULL. */
static unsigned char *alloc_at(uintptr_t at, size_t n) {
  unsigned char *p;
  atomic_store(&map_at, at);
  p = ALLOC(n);
  atomic_store(&map_at, 0);
  if (p == (unsigned char *)at) return p;
  FREE(p);
  return NULL;
}

/* Blocks side by side (A: 1 MiB, B: 3 MiB, C: 1 MiB, each where the one
** before ends): what B's Free, its move and a shrink clear of the table
** is B's alone. And a spied block shrunk to 2.5 MiB is still found
** whole under the spy, up to its new end. */
static void neighbours(void) {
  uintptr_t x = free_boundary();
  unsigned char *a, *b, *c, *d, *q;
  CHECK(x != 0);
  if (!x) return;
  x -= 64 * MiB;
  a = alloc_at(x, MiB);
  b = alloc_at(x + MiB, 3 * MiB);
  c = alloc_at(x + 4 * MiB, MiB);
  CHECK(a && b && c);
  if (!a || !b || !c) return;
  FREE(b);  /* kept */
  CHECK(DIDALLOC(a) == 1 && GETSIZE(a) == MiB);
  CHECK(DIDALLOC(c) == 1 && GETSIZE(c) == MiB);
  b = ALLOC(3 * MiB);  /* the kept one */
  CHECK(b == a + MiB);
  atomic_store(&refuse_mremap, 2);  /* grown by a move */
  q = REALLOC(b, 6 * MiB);
  atomic_store(&refuse_mremap, 0);
  CHECK(q != NULL && q != b);
  CHECK(DIDALLOC(a) == 1 && GETSIZE(a) == MiB);
  CHECK(DIDALLOC(c) == 1 && GETSIZE(c) == MiB);
  CHECK(agrees());
  FREE(q);
  FREE(a);
  FREE(c);
  m->lpVtbl->HeapMinimize(m);  /* no kept mapping to serve d */
  CHECK(imalloc_CoRegisterMallocSpy(&tell) == S_OK);
  d = alloc_at(x + 8 * MiB, 6 * MiB);
  CHECK(d != NULL);
  if (d) {
    CHECK(REALLOC(d, 5 * MiB / 2) == d);
    CHECK(spyed_at(d + 2 * MiB + 4096) == 1);
    CHECK(spyed_at(d + 5 * MiB / 2) == 0);
    FREE(d);
  }
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK);
  m->lpVtbl->HeapMinimize(m);
  CHECK(agrees());
}

/* A pointer inside a large block that is not its start is no block:
** Free leaves the block alone. The block is mapped low (by this program,
** at k x 256 MiB, the first such address where nothing is mapped) and is
** k MiB + 4 bytes long, so that its head entry (size << 8 | flags), read
** as a chunk's entry, would name the block's own region and a 16-byte
** class: the block is filled with the slot word of a live 16-byte block
** (internal.h: LIVE | size 16), and a Free that went on to treat the
** pointer as a small block would claim one of those words and give the
** pointer out again. */
static void interior(void) {
  const uint32_t live16 = 0x80000010u;
  unsigned char *p = NULL, *q;
  size_t n = 0, i;
  uintptr_t k;
  int ok = 1;
  for (k = 1; k <= 64 && !p; k++) {
    n = (size_t)k * MiB + 4;
    p = alloc_at(k * 256 * MiB, n);
  }
  CHECK(p != NULL);
  if (!p) return;
  for (i = 0; i + 4 <= n; i += 4) memcpy(p + i, &live16, 4);
  FREE(p + MiB / 2);
  imalloc_CoTaskMemFree(p + MiB / 2 + 16);
  CHECK(DIDALLOC(p) == 1 && GETSIZE(p) == n);
  for (i = 0; i + 4 <= n; i += 4)
    if (memcmp(p + i, &live16, 4) != 0) ok = 0;
  CHECK(ok);  /* not a byte of it written */
  q = ALLOC(16);
  CHECK(q != NULL && (q < p || q >= p + n));
  FREE(q);
  FREE(p);
  CHECK(DIDALLOC(p) == 0);
  CHECK(agrees());
}

/* A spied block whose growth is undone, and then whose copy is refused
** too (the copy's mmap): Realloc answers NULL and the block is as it was,
** every MiB of it found under the spy again. Grown in place across b
** (as below), then grown where growth in place and moves are refused. */
static void refused_copies(uintptr_t b) {
  unsigned char *p, *q;
  CHECK(imalloc_CoRegisterMallocSpy(&tell) == S_OK);
  atomic_store(&map_at, b - 2 * MiB);
  p = ALLOC(2 * MiB);
  CHECK(p == (unsigned char *)(b - 2 * MiB));
  if (p == (unsigned char *)(b - 2 * MiB)) {
    fill(p, 2 * MiB, 4);
    atomic_store(&mmap_refusals, 2);  /* the region's leaf, the copy */
    q = REALLOC(p, 4 * MiB);
    CHECK(q == NULL && atomic_load(&mmap_refusals) == 0);
    CHECK(GETSIZE(p) == 2 * MiB && is_pattern(p, 2 * MiB, 4));
    CHECK(spyed_at(p) == 1 && spyed_at(p + 3 * MiB / 2) == 1);
    CHECK(agrees());
    FREE(p);
  }
  p = ALLOC(3 * MiB);
  CHECK(p != NULL);
  if (p) {
    fill(p, 3 * MiB, 5);
    atomic_store(&refuse_mremap, 1);
    atomic_store(&mmap_passes, 1);     /* the range to move to */
    atomic_store(&mmap_refusals, 1);   /* the copy */
    q = REALLOC(p, 6 * MiB);
    atomic_store(&refuse_mremap, 0);
    CHECK(q == NULL && atomic_load(&mmap_refusals) == 0);
    atomic_store(&mmap_refusals, 0);
    atomic_store(&mmap_passes, 0);
    CHECK(GETSIZE(p) == 3 * MiB && is_pattern(p, 3 * MiB, 5));
    CHECK(spyed_at(p + 3 * MiB / 2) == 1 && spyed_at(p + 5 * MiB / 2) == 1);
    CHECK(agrees());
    FREE(p);
  }
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK);
  m->lpVtbl->HeapMinimize(m);
  CHECK(agrees());
}

/* A block that ends at a 16 GiB boundary grows in place across it, but
** the leaf of the region above is refused: the growth is undone (the pages
** it added given back) and the block copied to a new one. */
static void leaf_grow_in_place(void) {
  uintptr_t b = free_boundary();
  unsigned char *p, *q;
  CHECK(b != 0);
  if (!b) return;
  atomic_store(&map_at, b - 2 * MiB);  /* the block, and 1 MiB past b */
  p = ALLOC(2 * MiB);
  CHECK(p == (unsigned char *)(b - 2 * MiB));
  if (p != (unsigned char *)(b - 2 * MiB)) return;
  fill(p, 2 * MiB, 9);
  CHECK(agrees());
  atomic_store(&leaf_refusals, 1);
  q = REALLOC(p, 4 * MiB);
  CHECK(atomic_load(&leaf_refusals) == 0);
  CHECK(q != NULL && q != p);
  if (!q || q == p) return;
  CHECK(is_pattern(q, 2 * MiB, 9) && GETSIZE(q) == 4 * MiB);
  CHECK(DIDALLOC(p) == 0 && DIDALLOC(q) == 1);
  CHECK(!mapped_page((void *)b));  /* the pages the growth added */
  CHECK(agrees());
  memset(q, 1, 4 * MiB);
  FREE(q);
  m->lpVtbl->HeapMinimize(m);
  CHECK(agrees());
  refused_copies(b);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  page = sysconf(_SC_PAGESIZE);
  if (!client_open()) return 1;
  if (!strcmp(mode, "accounting")) accounting();
  else if (!strcmp(mode, "leaf-once")) leaf_once();
  else if (!strcmp(mode, "leaf-small")) leaf_small();
  else if (!strcmp(mode, "leaf-always")) leaf_always();
  else if (!strcmp(mode, "leaf-race")) leaf_race();
  else if (!strcmp(mode, "leaf-grow")) leaf_grow();
  else if (!strcmp(mode, "leaf-grow-in-place")) leaf_grow_in_place();
  else if (!strcmp(mode, "neighbours")) neighbours();
  else if (!strcmp(mode, "pool-array")) pool_array();
  else if (!strcmp(mode, "pool-refused")) pool_refused();
  else if (!strcmp(mode, "top")) top();
  else if (!strcmp(mode, "max")) max_block();
  else if (!strcmp(mode, "no-mremap")) no_mremap();
  else if (!strcmp(mode, "pieces")) pieces();
  else if (!strcmp(mode, "interior")) interior();
  else if (!strcmp(mode, "remote-reuse")) remote_reuse();
  else if (!strcmp(mode, "remote-refused")) remote_refused();
  else {
    printf("usage: taskalloc_os accounting|leaf-once|leaf-small|leaf-always|"
           "leaf-race|leaf-grow|leaf-grow-in-place|neighbours|pool-array|"
           "pool-refused|top|max|no-mremap|pieces|interior|remote-reuse|"
           "remote-refused\n");
    return 2;
  }
  return check_report();
}
