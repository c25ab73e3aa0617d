/*
** taskalloc_large_cache.c: what the built-in allocator keeps of freed
** blocks above 64 KiB, and how it grows one. Everything is an address,
** a byte count from imalloc_taskalloc_stats or a page's presence
** (mincore): never a time. Runs with IMALLOC_RETAIN=16M, set before the
** allocator's first use.
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _DEFAULT_SOURCE  /* mincore */
#include "check.h"
#include "client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)
#define KEPT_MAX 16  /* freed mappings kept at most */

static size_t page;

static size_t mapped(void) { return stats().mapped_bytes; }

/* Pages of [p, p + n) resident. */
static size_t resident(const void *p, size_t n) {
  unsigned char v[1024];
  size_t i, k = 0, np = n / page;
  if (np > sizeof v || mincore((void *)p, n, v) != 0) return 0;
  for (i = 0; i < np; i++) k += v[i] & 1;
  return k;
}

/* Whether the page at p is mapped at all (resident or not). */
static int mapped_page(const void *p) {
  unsigned char v;
  return mincore((void *)((uintptr_t)p & ~(page - 1)), page, &v) == 0;
}

/* A block grown in place to end exactly where a chunk of ours starts
** leaves the chunk's table entry alone, and so does its Free. Arranged in
** a process whose allocator has mapped little yet: a block of 4 MiB
** shrunk to 68 KiB usually leaves the highest free range, where the next
** new chunk (a size class not used yet) then goes, a whole number of MiB
** after the block's start; the block then grows to there. Where the
** address space's layout puts the chunk elsewhere, another block and
** another class are tried, up to ATTEMPTS times. */
enum { ATTEMPTS = 8 };

static void test_grow_to_a_neighbour(void) {
  static const size_t classes[ATTEMPTS] = { 100, 300, 700, 1500, 3000,
                                            6000, 12000, 24000 };
  unsigned char *x[ATTEMPTS], *s[ATTEMPTS], *q;
  int n, i, arranged = 0;
  for (n = 0; n < ATTEMPTS && !arranged; n++) {
    uintptr_t c;
    x[n] = ALLOC(4 * MiB);
    CHECK(x[n] != NULL);
    if (!x[n]) return;
    CHECK(REALLOC(x[n], 65537) == x[n]);
    s[n] = ALLOC(classes[n]);
    CHECK(s[n] != NULL);
    if (!s[n]) return;
    c = (uintptr_t)s[n] & ~(MiB - 1);
    if (c <= (uintptr_t)x[n] || c - (uintptr_t)x[n] > 4 * MiB) continue;
    arranged = 1;
    q = REALLOC(x[n], c - (uintptr_t)x[n]);
    CHECK(q == x[n]);
    CHECK(DIDALLOC(s[n]) == 1 && GETSIZE(s[n]) == classes[n]);
    x[n] = q ? q : x[n];
    FREE(x[n]);  /* and freed, it clears its own entries only */
    CHECK(DIDALLOC(s[n]) == 1 && GETSIZE(s[n]) == classes[n]);
  }
  if (!arranged)
    printf("# not arranged: no new chunk came just after its block in %d "
           "tries; growth next to a chunk not tested\n", ATTEMPTS);
  for (i = 0; i < n; i++) {
    if (!arranged || i < n - 1) FREE(x[i]);
    FREE(s[i]);
    CHECK(DIDALLOC(s[i]) == 0 && DIDALLOC(x[i]) == 0);
  }
  m->lpVtbl->HeapMinimize(m);
}

/* A freed mapping serves a smaller block and keeps the part that block
** does not need, its pages resident, for the next one; a larger block
** grows from it, taking the pages it lacks from the other kept mappings:
** nothing is unmapped while the kept bytes can serve. */
static void test_smaller_block(void) {
  unsigned char *p = ALLOC(4 * MiB), *q, *r;
  size_t before;
  CHECK(p != NULL);
  if (!p) return;
  memset(p, 7, 4 * MiB);
  FREE(p);
  before = mapped();
  q = ALLOC(3 * MiB);
  CHECK(q == p);
  CHECK(mapped() == before);  /* the last MiB kept */
  CHECK(mapped_page(q + 3 * MiB) && mapped_page(q + 4 * MiB - 1));
  FREE(q);
  CHECK(mapped() == before);
  r = ALLOC(4 * MiB);  /* q's 3 MiB and the kept MiB, no new page */
  CHECK(r != NULL && mapped() == before);
  if (!r) return;
  CHECK(resident(r, 4 * MiB) == 4 * MiB / page);
  FREE(r);
  m->lpVtbl->HeapMinimize(m);
}

/* The smallest mapping that fits is taken, and taken once. */
static void test_best_fit(void) {
  unsigned char *a = ALLOC(4 * MiB), *b = ALLOC(8 * MiB), *x, *y;
  CHECK(a && b);
  if (!a || !b) return;
  FREE(a);   /* kept: a, then b */
  FREE(b);
  x = ALLOC(4 * MiB);
  y = ALLOC(4 * MiB);
  CHECK(x == a);
  CHECK(y == b);
  FREE(x);
  FREE(y);
  m->lpVtbl->HeapMinimize(m);
}

/* Kept mappings freed in the order given (sizes in MiB), then an Alloc of
** `want` MiB; the mappings as they were. */
static void keep_then_take(const size_t *mib, int n, unsigned char **v,
                           size_t want, unsigned char **got) {
  int i;
  m->lpVtbl->HeapMinimize(m);
  for (i = 0; i < n; i++) v[i] = ALLOC(mib[i] * MiB);
  for (i = 0; i < n; i++) FREE(v[i]);
  *got = ALLOC(want * MiB);
}

/* A kept mapping too short for an Alloc grows where it is when the pages
** after it are free (here, the ones a shrinking Realloc gave back). */
static void test_kept_grows_in_place(void) {
  unsigned char *a, *r;
  m->lpVtbl->HeapMinimize(m);
  a = ALLOC(8 * MiB);
  CHECK(a != NULL);
  if (!a) return;
  CHECK(REALLOC(a, 2 * MiB) == a);
  FREE(a);  /* kept: 2 MiB, nothing mapped after it */
  r = ALLOC(4 * MiB);
  CHECK(r == a);
  FREE(r);
  m->lpVtbl->HeapMinimize(m);
}

/* Which kept mapping an Alloc takes: the smallest that holds it, the
** oldest of equal ones; when none holds it, the largest (then the oldest
** of equal ones), grown by the last pages of the others (the first MiB
** of the donor stays kept). */
static void test_fit_order(void) {
  static const size_t exact_newer[] = { 8, 4 }, equal[] = { 4, 4 },
                      none_fits[] = { 2, 3 }, none_equal[] = { 3, 3 };
  unsigned char *v[2], *r;
  keep_then_take(exact_newer, 2, v, 4, &r);
  CHECK(r == v[1]);
  FREE(r);
  keep_then_take(equal, 2, v, 4, &r);
  CHECK(r == v[0]);
  FREE(r);
  keep_then_take(none_fits, 2, v, 4, &r);  /* the 3 MiB, and 1 of the 2 */
  CHECK(r != NULL && r != v[0] && mapped_page(v[0]));
  CHECK(r == v[1] || !mapped_page(v[1]));
  FREE(r);
  keep_then_take(none_equal, 2, v, 4, &r);  /* the first, 1 of the other */
  CHECK(r != NULL && r != v[1] && mapped_page(v[1]));
  CHECK(r == v[0] || !mapped_page(v[0]));
  FREE(r);
  m->lpVtbl->HeapMinimize(m);
}

/* At most KEPT_MAX mappings are kept, the most recently freed. */
static void test_count_bound(void) {
  enum { N = KEPT_MAX + 4 };
  const size_t n = 100 * 1024;  /* 25 pages, far below the byte bound */
  void *v[N], *w[N];
  size_t live, i, j, reused = 0;
  int ok = 1;
  for (i = 0; i < N; i++) {
    v[i] = ALLOC(n);
    if (!v[i]) ok = 0;
  }
  CHECK(ok);
  if (!ok) return;
  live = mapped();
  for (i = 0; i < N; i++) FREE(v[i]);
  CHECK(mapped() == live - (N - KEPT_MAX) * n);
  for (i = 0; i < N; i++) {
    w[i] = ALLOC(n);
    for (j = N - KEPT_MAX; j < N; j++)
      if (w[i] == v[j]) reused++;
  }
  CHECK(reused == KEPT_MAX);
  for (i = 0; i < N; i++) FREE(w[i]);
  m->lpVtbl->HeapMinimize(m);
}

/* A kept mapping taken from the middle of a full cache (the smallest that
** fits is the second of 16): the others stay kept, each taken once. */
static void test_take_from_middle(void) {
  enum { N = KEPT_MAX };
  void *v[N], *w[N];
  size_t i, j, reused = 0, live;
  int ok = 1;
  m->lpVtbl->HeapMinimize(m);
  for (i = 0; i < N; i++) {
    v[i] = ALLOC(i == 1 ? 100 * 1024 : 200 * 1024);
    if (!v[i]) ok = 0;
  }
  CHECK(ok);
  if (!ok) return;
  live = mapped();
  for (i = 0; i < N; i++) FREE(v[i]);
  CHECK(mapped() == live);  /* all kept */
  w[0] = ALLOC(100 * 1024);
  CHECK(w[0] == v[1]);
  for (i = 1; i < N; i++) {
    w[i] = ALLOC(200 * 1024);
    for (j = 0; j < N; j++)
      if (j != 1 && w[i] == v[j]) reused++;
  }
  CHECK(reused == N - 1);
  CHECK(mapped() == live);
  for (i = 0; i < N; i++) FREE(w[i]);
  m->lpVtbl->HeapMinimize(m);
}

/* At most IMALLOC_RETAIN bytes are kept, the oldest go first; and the
** bound counts what is kept now, not what was ever kept. */
static void test_byte_bound(void) {
  unsigned char *v[3], *p;
  size_t live, i;
  int same = 1;
  for (i = 0; i < 3; i++) v[i] = ALLOC(6 * MiB);
  CHECK(v[0] && v[1] && v[2]);
  if (!v[0] || !v[1] || !v[2]) return;
  live = mapped();
  for (i = 0; i < 3; i++) FREE(v[i]);  /* 18 MiB: the first one goes */
  CHECK(mapped() == live - 6 * MiB);
  for (i = 0; i < 8; i++) {  /* taken and freed again: kept each time */
    p = ALLOC(6 * MiB);
    if (p != v[1] && p != v[2]) same = 0;
    FREE(p);
  }
  CHECK(same);
  CHECK(mapped() == live - 6 * MiB);
}

/* The byte bound is inclusive: two mappings of 8 MiB fill IMALLOC_RETAIN
** (16 MiB) exactly, and both are kept. */
static void test_byte_bound_full(void) {
  unsigned char *a, *b;
  size_t live;
  m->lpVtbl->HeapMinimize(m);
  a = ALLOC(8 * MiB);
  b = ALLOC(8 * MiB);
  CHECK(a && b);
  if (!a || !b) return;
  live = mapped();
  FREE(a);
  FREE(b);
  CHECK(mapped() == live);
  m->lpVtbl->HeapMinimize(m);
  CHECK(mapped() == live - 16 * MiB);
}

/* HeapMinimize unmaps every kept mapping, and what is freed after it is
** kept again. */
static void test_minimize(void) {
  unsigned char *p, *q;
  size_t kept = 12 * MiB, before = mapped();  /* test_byte_bound's two */
  m->lpVtbl->HeapMinimize(m);
  CHECK(mapped() == before - kept);
  p = ALLOC(6 * MiB);
  CHECK(p != NULL);
  if (!p) return;
  before = mapped();
  FREE(p);
  CHECK(mapped() == before);
  q = ALLOC(6 * MiB);
  CHECK(q == p);
  FREE(q);
  m->lpVtbl->HeapMinimize(m);
}

/* A large block shrunk to 64 KiB or less moves into a chunk (whose
** blocks are never 1 MiB aligned): its mapping goes. */
static void test_shrink_to_small(void) {
  unsigned char *p = ALLOC(3 * MiB), *q;
  CHECK(p != NULL);
  if (!p) return;
  fill(p, 1000, 4);
  q = REALLOC(p, 1000);
  CHECK(q != NULL && q != p && ((uintptr_t)q & (MiB - 1)) != 0);
  CHECK(q && is_pattern(q, 1000, 4) && GETSIZE(q) == 1000);
  CHECK(DIDALLOC(p) == 0);
  FREE(q ? q : p);
  p = ALLOC(3 * MiB);  /* and to exactly 64 KiB, the largest small block */
  CHECK(p != NULL);
  if (!p) return;
  fill(p, 65536, 8);
  q = REALLOC(p, 65536);
  CHECK(q != NULL && q != p && ((uintptr_t)q & (MiB - 1)) != 0);
  CHECK(q && is_pattern(q, 65536, 8) && GETSIZE(q) == 65536);
  FREE(q ? q : p);
  m->lpVtbl->HeapMinimize(m);
}

/* Realloc grows a block where it is when the pages after it are free:
** here, the pages a shrinking Realloc just gave back. */
static void test_grow_in_place(void) {
  unsigned char *p = ALLOC(16 * MiB), *q;
  CHECK(p != NULL);
  if (!p) return;
  fill(p, 2 * MiB, 9);
  q = REALLOC(p, 2 * MiB);
  CHECK(q == p);
  CHECK(!mapped_page(p + 2 * MiB));
  q = REALLOC(p, 8 * MiB);
  CHECK(q == p);
  CHECK(q && is_pattern(q, 2 * MiB, 9) && GETSIZE(q) == 8 * MiB);
  FREE(q ? q : p);
  m->lpVtbl->HeapMinimize(m);
}

int main(void) {
  long ps = sysconf(_SC_PAGESIZE);
  page = ps > 0 ? (size_t)ps : 4096;
  setenv("IMALLOC_RETAIN", "16M", 1);  /* read at the allocator's first use */
  if (!client_open()) return 1;
  test_grow_to_a_neighbour();  /* first: it needs a fresh address space */
  test_smaller_block();
  test_best_fit();
  test_fit_order();
  test_kept_grows_in_place();
  test_count_bound();
  test_take_from_middle();
  test_byte_bound();
  test_minimize();
  test_byte_bound_full();
  test_shrink_to_small();
  test_grow_in_place();
  return check_report();
}
