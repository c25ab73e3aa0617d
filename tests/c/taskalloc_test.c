/*
** taskalloc_test.c: the built-in allocator against the reference table
** (docs/reference.md), called through the vtable as a COM
** client would. Prints "N passed, N failed"; exits non-zero on a failure.
*/
#include "check.h"
#include "client.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void test_getmalloc(void) {
  IMalloc *a = NULL, *b = NULL, *c = (IMalloc *)&a;
  CHECK(imalloc_CoGetMalloc(1, &a) == S_OK);
  CHECK(imalloc_CoGetMalloc(1, &b) == S_OK);
  CHECK(a != NULL && a == b);
  CHECK(imalloc_CoGetMalloc(0, &c) == E_INVALIDARG && c == NULL);
  c = (IMalloc *)&a;
  CHECK(imalloc_CoGetMalloc(2, &c) == E_INVALIDARG && c == NULL);
  CHECK(imalloc_CoGetMalloc(1, NULL) == E_POINTER);
  CHECK(imalloc_CoGetMalloc(0, NULL) == E_POINTER);
  m = a;
}

static void test_unknown(void) {
  static const IID iu = IMALLOC_IID_IUNKNOWN, im = IMALLOC_IID_IMALLOC,
                   is = IMALLOC_IID_IMALLOCSPY;
  void *pv = NULL;
  CHECK(m->lpVtbl->QueryInterface(m, &iu, &pv) == S_OK && pv == m);
  pv = NULL;
  CHECK(m->lpVtbl->QueryInterface(m, &im, &pv) == S_OK && pv == m);
  pv = &pv;
  CHECK(m->lpVtbl->QueryInterface(m, &is, &pv) == E_NOINTERFACE);
  CHECK(pv == NULL);
  CHECK(m->lpVtbl->QueryInterface(m, &iu, NULL) == E_POINTER);
  CHECK(m->lpVtbl->AddRef(m) == 2);
  CHECK(m->lpVtbl->AddRef(m) == 2);
  CHECK(m->lpVtbl->Release(m) == 1);
  CHECK(m->lpVtbl->Release(m) == 1);
}

static void test_alloc(void) {
  void *a, *b, *c;
  size_t base = live_blocks(), n;
  a = ALLOC(0);
  b = ALLOC(0);
  CHECK(a != NULL && b != NULL && a != b);
  CHECK(GETSIZE(a) == 0);
  CHECK(DIDALLOC(a) == 1);
  CHECK(live_blocks() == base + 2);
  FREE(a);
  FREE(b);
  CHECK(DIDALLOC(a) == 0);
  CHECK(live_blocks() == base);

  CHECK(ALLOC((SIZE_T)-1) == NULL);
  CHECK(ALLOC((SIZE_T)1 << 46) == NULL);
  CHECK(ALLOC(((SIZE_T)-1) - 4095) == NULL);
  CHECK(live_blocks() == base);

  /* every size class boundary and the large path: alignment, exact size,
  ** the bytes kept, DidAlloc */
  for (n = 1; n <= 300000; n = n < 300 ? n + 1 : n * 5 / 4) {
    unsigned char *p = ALLOC(n);
    if (!p) {
      CHECK(p != NULL);
      break;
    }
    if (((uintptr_t)p & 15) != 0 || GETSIZE(p) != n || DIDALLOC(p) != 1) {
      printf("size %zu: %p getsize %zu didalloc %d\n", n, (void *)p,
             (size_t)GETSIZE(p), DIDALLOC(p));
      CHECK(0);
    }
    fill(p, n, (unsigned)n);
    if (!is_pattern(p, n, (unsigned)n)) CHECK(0);
    FREE(p);
    if (DIDALLOC(p) != 0 || GETSIZE(p) != (SIZE_T)-1) CHECK(0);
  }
  CHECK(live_blocks() == base);

  /* distinct blocks do not overlap */
  a = ALLOC(64);
  b = ALLOC(64);
  c = ALLOC(64);
  CHECK(a && b && c && a != b && b != c && a != c);
  memset(a, 1, 64);
  memset(b, 2, 64);
  memset(c, 3, 64);
  CHECK(((unsigned char *)a)[63] == 1 && ((unsigned char *)b)[0] == 2);
  FREE(a);
  FREE(b);
  FREE(c);
}

static void test_realloc(void) {
  size_t base = live_blocks();
  unsigned char *p, *q;

  p = REALLOC(NULL, 40);
  CHECK(p != NULL && GETSIZE(p) == 40 && DIDALLOC(p) == 1);
  CHECK(REALLOC(p, 0) == NULL);
  CHECK(DIDALLOC(p) == 0);
  CHECK(live_blocks() == base);

  /* shrinking keeps the pointer; GetSize is the new size */
  p = ALLOC(100);
  fill(p, 100, 9);
  q = REALLOC(p, 50);
  CHECK(q == p && GETSIZE(q) == 50 && is_pattern(q, 50, 9));
  /* growing keeps the bytes */
  q = REALLOC(q, 5000);
  CHECK(q != NULL && GETSIZE(q) == 5000 && is_pattern(q, 50, 9));
  CHECK(q == p || DIDALLOC(p) == 0);
  /* a failing realloc leaves the block owned, with its bytes */
  p = REALLOC(q, (SIZE_T)1 << 46);
  CHECK(p == NULL && DIDALLOC(q) == 1 && GETSIZE(q) == 5000);
  CHECK(is_pattern(q, 50, 9));
  CHECK(REALLOC(q, (SIZE_T)-1) == NULL && DIDALLOC(q) == 1);
  FREE(q);
  CHECK(live_blocks() == base);

  /* small -> large -> larger -> smaller large -> small */
  p = ALLOC(1000);
  fill(p, 1000, 3);
  p = REALLOC(p, 200000);
  CHECK(p && GETSIZE(p) == 200000 && is_pattern(p, 1000, 3));
  fill(p, 200000, 4);
  q = REALLOC(p, 3000000);
  CHECK(q && GETSIZE(q) == 3000000 && is_pattern(q, 200000, 4));
  fill(q, 3000000, 5);
  p = REALLOC(q, 1500000);  /* in place, the tail unmapped */
  CHECK(p == q && GETSIZE(p) == 1500000 && is_pattern(p, 1500000, 5));
  q = REALLOC(p, 100);
  CHECK(q && GETSIZE(q) == 100 && is_pattern(q, 100, 5));
  CHECK(q == p || DIDALLOC(p) == 0);
  FREE(q);
  CHECK(live_blocks() == base);

  /* Realloc of something that is not a live block of ours */
  {
    static char stat[64];
    char stack[64];
    p = ALLOC(32);
    FREE(p);
    CHECK(REALLOC(p, 64) == NULL);
    CHECK(REALLOC(stat, 64) == NULL);
    CHECK(REALLOC(stack, 64) == NULL);
    CHECK(live_blocks() == base);
  }
}

/* Blocks above 64 KiB: their size and state live in the lookup table entry
** of their first MiB, the further MiB regions hold continuation entries. */
static void test_large(void) {
  const size_t MiB = (size_t)1 << 20;
  size_t base = live_blocks(), n = 3 * MiB + 4096 + 17, k;
  struct imalloc_taskstats st0, st1;
  enum { NV = 4200 };  /* more than a 64 KiB slab of 16-byte descriptors */
  unsigned char *p, *q, **v;
  int i, ok;

  m->lpVtbl->HeapMinimize(m);  /* a fresh mapping, not a kept one */
  imalloc_taskalloc_stats(&st0);
  p = ALLOC(n);
  CHECK(p != NULL && ((uintptr_t)p & (MiB - 1)) == 0);
  if (!p) return;
  CHECK(GETSIZE(p) == n && DIDALLOC(p) == 1);
  fill(p, n, 11);
  imalloc_taskalloc_stats(&st1);
  CHECK(st1.live_blocks == st0.live_blocks + 1);
  CHECK(st1.live_bytes == st0.live_bytes + n);
  CHECK(st1.mapped_bytes >= st0.mapped_bytes + n);

  /* interior addresses, in the first region and in every further one */
  ok = 1;
  for (k = 0; k < 4; k++) {
    unsigned char *r = p + k * MiB;
    size_t offs[] = {0, 8, 16, 4096, MiB - 16};
    size_t j;
    for (j = 0; j < sizeof offs / sizeof offs[0]; j++) {
      unsigned char *a = r + offs[j];
      if (a == p || a >= p + n) continue;
      if (DIDALLOC(a) != 0 || GETSIZE(a) != (SIZE_T)-1) ok = 0;
      if (REALLOC(a, 100) != NULL || REALLOC(a, 5 * MiB) != NULL) ok = 0;
      FREE(a);
    }
  }
  CHECK(ok);
  CHECK(DIDALLOC(p + n) == 0);  /* past its end, in its last region */
  CHECK(DIDALLOC(p) == 1 && GETSIZE(p) == n && is_pattern(p, n, 11));
  CHECK(live_blocks() == base + 1);

  /* Realloc in place: a larger size in the same pages, then smaller sizes
  ** (the tail unmapped, its regions no longer ours) */
  q = REALLOC(p, n + 100);
  CHECK(q == p && GETSIZE(p) == n + 100 && is_pattern(p, n, 11));
  q = REALLOC(p, n);
  CHECK(q == p && GETSIZE(p) == n);
  imalloc_taskalloc_stats(&st0);
  q = REALLOC(p, MiB + 100);
  CHECK(q == p && GETSIZE(p) == MiB + 100 && is_pattern(p, MiB + 100, 11));
  imalloc_taskalloc_stats(&st1);
  CHECK(st1.live_bytes + (n - (MiB + 100)) == st0.live_bytes);
  CHECK(st1.mapped_bytes < st0.mapped_bytes);
  CHECK(DIDALLOC(p + MiB) == 0 && GETSIZE(p + MiB) == (SIZE_T)-1);
  CHECK(DIDALLOC(p + 2 * MiB) == 0 && DIDALLOC(p + 3 * MiB) == 0);
  q = REALLOC(p, 70000);  /* one region */
  CHECK(q == p && GETSIZE(p) == 70000 && is_pattern(p, 70000, 11));
  CHECK(DIDALLOC(p + MiB) == 0);
  /* Realloc moving: larger than the mapping */
  q = REALLOC(p, 2 * MiB + 1);
  CHECK(q != NULL && GETSIZE(q) == 2 * MiB + 1 && is_pattern(q, 70000, 11));
  CHECK(q == p || (DIDALLOC(p) == 0 && GETSIZE(p) == (SIZE_T)-1));
  CHECK(DIDALLOC(q + MiB) == 0 && DIDALLOC(q) == 1);
  CHECK(live_blocks() == base + 1);
  /* a failing Realloc keeps it */
  CHECK(REALLOC(q, (SIZE_T)1 << 46) == NULL && DIDALLOC(q) == 1);
  CHECK(GETSIZE(q) == 2 * MiB + 1 && is_pattern(q, 70000, 11));

  /* Free, then a double free, of a multi-MiB block */
  FREE(q);
  CHECK(DIDALLOC(q) == 0 && GETSIZE(q) == (SIZE_T)-1);
  CHECK(DIDALLOC(q + MiB) == 0 && REALLOC(q, 10) == NULL);
  FREE(q);
  FREE(q + MiB);
  CHECK(live_blocks() == base);

  /* no descriptor: large blocks add at most table leaves (128 KiB each)
  ** to the metadata, never bytes per block */
  v = calloc(NV, sizeof *v);
  CHECK(v != NULL);
  if (!v) return;
  m->lpVtbl->HeapMinimize(m);  /* no freed mapping kept from before */
  imalloc_taskalloc_stats(&st0);
  ok = 1;
  for (i = 0; i < NV; i++) {
    v[i] = ALLOC(65537 + (size_t)(i % 64) * 4096);
    if (!v[i] || DIDALLOC(v[i]) != 1) ok = 0;
  }
  CHECK(ok);
  imalloc_taskalloc_stats(&st1);
  CHECK((st1.metadata_bytes - st0.metadata_bytes) % (16384 * 8) == 0);
  CHECK(st1.live_blocks == st0.live_blocks + NV);
  for (i = 0; i < NV; i++)
    if (v[i]) FREE(v[i]);
  free(v);
  imalloc_taskalloc_stats(&st1);
  CHECK(st1.live_blocks == st0.live_blocks && st1.live_bytes == st0.live_bytes);
  /* HeapMinimize unmaps the freed mappings the allocator kept for reuse:
  ** all unmapped again, but for table leaves mapped on the way */
  m->lpVtbl->HeapMinimize(m);
  imalloc_taskalloc_stats(&st1);
  CHECK(st1.mapped_bytes - st0.mapped_bytes ==
        st1.metadata_bytes - st0.metadata_bytes);
  CHECK(live_blocks() == base);
}

static char static_buf[256];

static void test_free_and_queries(void) {
  size_t base = live_blocks();
  char stack_buf[64];
  unsigned char *p, *big;
  void *glibc = malloc(64);
  FREE(NULL);
  CHECK(GETSIZE(NULL) == (SIZE_T)-1);
  CHECK(DIDALLOC(NULL) == -1);

  p = ALLOC(64);
  big = ALLOC(1 << 20);
  CHECK(DIDALLOC(p) == 1 && DIDALLOC(big) == 1);
  CHECK(DIDALLOC(p + 8) == 0 && DIDALLOC(p + 16) == 0 && DIDALLOC(p + 1) == 0);
  CHECK(DIDALLOC(big + 8) == 0 && DIDALLOC(big + 4096) == 0);
  CHECK(GETSIZE(p + 8) == (SIZE_T)-1 && GETSIZE(big + 8) == (SIZE_T)-1);
  CHECK(DIDALLOC(p - 16) == 0 || DIDALLOC(p - 16) == 1);  /* neighbour */
  CHECK(DIDALLOC(stack_buf) == 0);
  CHECK(DIDALLOC(static_buf) == 0);
  CHECK(DIDALLOC(glibc) == 0);
  CHECK(DIDALLOC((void *)(uintptr_t)&test_free_and_queries) == 0);
  CHECK(DIDALLOC((void *)(uintptr_t)0x1000) == 0);
  CHECK(DIDALLOC((void *)(uintptr_t)0xffff800000000000ull) == 0);
  CHECK(DIDALLOC((void *)(uintptr_t)0xfffffffffffffff0ull) == 0);
  {  /* addresses in our own chunk: its header and slot array */
    unsigned char *chunk = (unsigned char *)((uintptr_t)p & ~(uintptr_t)0xFFFFF);
    CHECK(DIDALLOC(chunk) == 0 && GETSIZE(chunk) == (SIZE_T)-1);
    CHECK(DIDALLOC(chunk + 64) == 0 && DIDALLOC(chunk + 4096) == 0);
    CHECK(DIDALLOC(chunk + 0xFFFF0) == 0 || chunk + 0xFFFF0 != p);
    FREE(chunk);
    FREE(chunk + 64);
    CHECK(REALLOC(chunk + 64, 10) == NULL);
    CHECK(DIDALLOC(p) == 1);
  }
  CHECK(GETSIZE(stack_buf) == (SIZE_T)-1);
  CHECK(GETSIZE(glibc) == (SIZE_T)-1);
  CHECK(GETSIZE((void *)(uintptr_t)0xffff800000000000ull) == (SIZE_T)-1);

  /* Free of foreign or interior pointers is ignored */
  FREE(stack_buf);
  FREE(static_buf);
  FREE(glibc);
  FREE(p + 8);
  FREE(big + 16);
  FREE((void *)(uintptr_t)0xffff800000000000ull);
  FREE((void *)(uintptr_t)0x1000);
  CHECK(DIDALLOC(p) == 1 && DIDALLOC(big) == 1);
  CHECK(live_blocks() == base + 2);
  free(glibc);  /* glibc's block was not touched */

  FREE(p);
  FREE(big);
  CHECK(DIDALLOC(p) == 0 && DIDALLOC(big) == 0);
  CHECK(live_blocks() == base);
  FREE(p);    /* double free: a no-op */
  FREE(big);
  CHECK(live_blocks() == base);
  /* the block is not handed out twice after the double free */
  {
    void *x = ALLOC(64), *y = ALLOC(64);
    CHECK(x != y);
    FREE(x);
    FREE(y);
  }
  CHECK(live_blocks() == base);
  m->lpVtbl->HeapMinimize(m);
  CHECK(live_blocks() == base);
}

static void test_cotaskmem(void) {
  size_t base = live_blocks();
  unsigned char *p = imalloc_CoTaskMemAlloc(24), *q;
  CHECK(p && DIDALLOC(p) == 1 && GETSIZE(p) == 24);
  fill(p, 24, 1);
  q = REALLOC(p, 300);
  CHECK(q && is_pattern(q, 24, 1) && GETSIZE(q) == 300);
  q = imalloc_CoTaskMemRealloc(q, 30);
  CHECK(q && is_pattern(q, 24, 1) && GETSIZE(q) == 30);
  imalloc_CoTaskMemFree(q);
  CHECK(DIDALLOC(q) == 0);
  p = ALLOC(10);
  imalloc_CoTaskMemFree(p);
  CHECK(DIDALLOC(p) == 0);
  p = imalloc_CoTaskMemRealloc(NULL, 7);
  CHECK(p && GETSIZE(p) == 7);
  CHECK(imalloc_CoTaskMemRealloc(p, 0) == NULL && DIDALLOC(p) == 0);
  imalloc_CoTaskMemFree(NULL);
  p = imalloc_CoTaskMemAlloc(0);
  CHECK(p != NULL && GETSIZE(p) == 0);
  imalloc_CoTaskMemFree(p);
  CHECK(live_blocks() == base);
}

static void test_stats(void) {
  struct imalloc_taskstats st0, st1;
  void *p[100];
  int i;
  imalloc_taskalloc_stats(&st0);
  for (i = 0; i < 100; i++) p[i] = ALLOC((size_t)i + 1);
  imalloc_taskalloc_stats(&st1);
  CHECK(st1.live_blocks == st0.live_blocks + 100);
  CHECK(st1.live_bytes == st0.live_bytes + 5050);
  CHECK(st1.mapped_bytes >= st1.live_bytes);
  CHECK(st1.bookkeeping_bytes_per_block <= 16);
  CHECK(st1.metadata_bytes < st1.mapped_bytes);
  for (i = 0; i < 100; i++) FREE(p[i]);
  imalloc_taskalloc_stats(&st1);
  CHECK(st1.live_blocks == st0.live_blocks);
  CHECK(st1.live_bytes == st0.live_bytes);
  imalloc_taskalloc_stats(NULL);
}

/* Many live blocks across several chunks of one class, freed in another
** order: no block is handed out twice, all are found again. */
static void test_many(void) {
  enum { N = 100000 };
  size_t base = live_blocks();
  unsigned char **v = malloc(N * sizeof *v);
  int i, ok = 1;
  for (i = 0; i < N; i++) {
    v[i] = ALLOC(48);
    if (!v[i]) { ok = 0; break; }
    memset(v[i], i & 0xff, 48);
  }
  CHECK(ok);
  CHECK(live_blocks() == base + N);
  for (i = 0; i < N && ok; i++)
    if (v[i][0] != (i & 0xff) || v[i][47] != (i & 0xff) ||
        DIDALLOC(v[i]) != 1)
      ok = 0;
  CHECK(ok);
  for (i = 0; i < N; i += 2) FREE(v[i]);
  for (i = 1; i < N; i += 2) FREE(v[i]);
  CHECK(live_blocks() == base);
  free(v);
}

/* Under AddressSanitizer (this test's asan-c-* run): what the allocator
** tells it. The bytes a caller may use are addressable; a freed block's
** are not, but for the two link words a free block keeps; nor is the tail
** that a Realloc in place gives up, nor a large mapping kept for reuse
** until it is handed out again. Natively there is nothing to ask. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>

static int usable(void *p, size_t n) {
  return __asan_region_is_poisoned(p, n) == NULL;
}

static void test_poisoned(void) {
  enum { BIG = 1 << 20 };
  char *p = ALLOC(100), *q;
  CHECK(p != NULL && usable(p, 100));
  q = REALLOC(p, 40);  /* a block of 112 bytes: kept in place */
  CHECK(q == p && usable(p, 40));
  CHECK(__asan_address_is_poisoned(p + 40) && __asan_address_is_poisoned(p + 99));
  q = REALLOC(p, 100);
  CHECK(q == p && usable(p, 100));
  FREE(p);
  CHECK(usable(p, 2 * sizeof(void *)));
  CHECK(__asan_address_is_poisoned(p + 2 * sizeof(void *)) &&
        __asan_address_is_poisoned(p + 99));
  p = ALLOC(BIG);
  CHECK(p != NULL && usable(p, BIG));
  FREE(p);  /* kept: under IMALLOC_RETAIN */
  CHECK(__asan_address_is_poisoned(p) && __asan_address_is_poisoned(p + BIG - 1));
  q = ALLOC(BIG);
  CHECK(q == p && usable(q, BIG));
  FREE(q);
}
#else
static void test_poisoned(void) {}
#endif

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);  /* a crash loses no report line */
  test_getmalloc();
  if (!m) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  test_unknown();
  test_alloc();
  test_realloc();
  test_large();
  test_free_and_queries();
  test_cotaskmem();
  test_stats();
  test_many();
  test_poisoned();
  return check_report();
}
