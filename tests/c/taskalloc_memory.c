/*
** taskalloc_memory.c: the built-in allocator gives memory back and keeps
** large blocks cheap. Everything here is counted (pages resident by
** mincore and /proc/self/statm, page faults by getrusage), never timed.
** Runs with IMALLOC_RETAIN=16M, set before the allocator's first use.
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _DEFAULT_SOURCE  /* mincore */
#include "check.h"
#include "client.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

/* ThreadSanitizer maps shadow memory beside every byte the program
** touches, and does not give it back on madvise: the process's RSS and
** page faults then count the shadow too. Those checks are skipped there,
** and say so; the per-page checks (mincore) still run. */
#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN 1
#endif
#endif
#ifdef TSAN
#define PROCESS_COUNTS 0
#else
#define PROCESS_COUNTS 1
#endif

#define MIB ((size_t)1 << 20)
#define CHUNK(p) ((uintptr_t)(p) & ~(MIB - 1))

static size_t page;

/* m, ALLOC, REALLOC, FREE, GETSIZE, DIDALLOC: client.h */
#define MINIMIZE() m->lpVtbl->HeapMinimize(m)

/* Resident bytes of [p, p + n), n rounded to pages. */
static size_t resident(const void *p, size_t n) {
  uintptr_t a = (uintptr_t)p & ~(page - 1);
  size_t len = ((uintptr_t)p + n - a + page - 1) & ~(page - 1), i, r = 0;
  unsigned char *vec = malloc(len / page);
  if (!vec || mincore((void *)a, len, vec) != 0) {
    free(vec);
    return (size_t)-1;
  }
  for (i = 0; i < len / page; i++) r += (vec[i] & 1) ? page : 0;
  free(vec);
  return r;
}

/* The process's resident set, from /proc/self/statm. */
static size_t rss(void) {
  unsigned long size = 0, res = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
  fclose(f);
  return (size_t)res * page;
}

static long minor_faults(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

/* The distinct chunks (1 MiB regions) of n blocks, sorted. */
static size_t chunks_of(void **v, size_t n, uintptr_t *out) {
  size_t i, j, k = 0;
  for (i = 0; i < n; i++) {
    uintptr_t c = CHUNK(v[i]);
    for (j = 0; j < k && out[j] != c; j++) {}
    if (j == k) out[k++] = c;
  }
  return k;
}

enum { NBLK = 65536, BSZ = 1000 };  /* 64 MiB of 1000-byte blocks */
static void *v[NBLK];
static uintptr_t chunks[NBLK / 100];

/* Free blocks beyond IMALLOC_RETAIN go back without any call; the rest
** on HeapMinimize. */
static void test_return(void) {
  size_t i, n, before, after, in_chunks;
  int ok = 1;
  for (i = 0; i < NBLK; i++) {
    v[i] = ALLOC(BSZ);
    if (!v[i]) { ok = 0; break; }
    memset(v[i], 0x5a, BSZ);
  }
  CHECK(ok);
  if (!ok) return;
  n = chunks_of(v, NBLK, chunks);
  CHECK(n >= 64 && n <= NBLK / 100);
  in_chunks = 0;
  for (i = 0; i < n; i++) in_chunks += resident((void *)chunks[i], MIB);
  before = rss();
  CHECK(in_chunks >= (size_t)NBLK * BSZ);
  printf("# %zu chunks, %zu MiB resident in them, RSS %zu MiB\n", n,
         in_chunks / MIB, before / MIB);

  for (i = 0; i < NBLK; i++) FREE(v[i]);
  in_chunks = 0;
  for (i = 0; i < n; i++) in_chunks += resident((void *)chunks[i], MIB);
  after = rss();
  printf("# freed, no call: %zu MiB resident in the chunks, RSS %zu MiB\n",
         in_chunks / MIB, after / MIB);
  /* kept: at most 16 MiB of empty chunks, the chunks still holding a
  ** block of this thread's cache, and a header page per chunk */
  CHECK(in_chunks <= 20 * MIB + n * page);
  if (PROCESS_COUNTS)
    CHECK(after + 40 * MIB <= before);
  else
    printf("# RSS not checked: ThreadSanitizer's shadow memory counts in it\n");

  MINIMIZE();
  in_chunks = 0;
  for (i = 0; i < n; i++) in_chunks += resident((void *)chunks[i], MIB);
  printf("# HeapMinimize: %zu KiB resident in the chunks, RSS %zu MiB\n",
         in_chunks >> 10, rss() / MIB);
  CHECK(in_chunks == 0);  /* every page, headers included */
}

/* Chunks emptied by one class serve another. */
static void test_reuse_across_classes(void) {
  size_t n, i, reused = 0;
  const size_t nb = 20000;  /* 2000-byte blocks: 40 MB, every old chunk */
  int ok = 1;
  n = chunks_of(v, NBLK, chunks);  /* test_return's chunks, empty now */
  for (i = 0; i < nb; i++) {
    size_t j;
    v[i] = ALLOC(2000);
    if (!v[i]) { ok = 0; break; }
    memset(v[i], 1, 2000);
    for (j = 0; j < n; j++)
      if (CHUNK(v[i]) == chunks[j]) { reused++; break; }
  }
  CHECK(ok);
  printf("# %zu of %zu blocks of 2000 bytes in chunks that held 1000\n",
         reused, nb);
  CHECK(reused >= nb / 2);
  for (i = 0; i < nb && v[i]; i++)
    if (DIDALLOC(v[i]) != 1 || GETSIZE(v[i]) != 2000) ok = 0;
  CHECK(ok);
  for (i = 0; i < nb && v[i]; i++) FREE(v[i]);
  MINIMIZE();
}

/* A freed large block's mapping is reused: the pages are not faulted in
** again. */
static void test_large_cache(void) {
  static const size_t sizes[] = { 1, 4, 16 };
  size_t s;
  for (s = 0; s < 3; s++) {
    size_t n = sizes[s] * MIB;
    long f0, f1;
    int k, same = 1;
    unsigned char *p = ALLOC(n), *first = p;
    CHECK(p != NULL);
    if (!p) return;
    memset(p, 1, n);
    FREE(p);
    f0 = minor_faults();
    for (k = 0; k < 10; k++) {
      p = ALLOC(n);
      if (p != first) same = 0;
      if (!p) break;
      memset(p, k, n);
      FREE(p);
    }
    f1 = minor_faults();
    printf("# %zu MiB: %ld page faults in 10 cycles (%zu pages each)\n",
           sizes[s], f1 - f0, n / page);
    CHECK(same);
    if (PROCESS_COUNTS)
      CHECK(f1 - f0 < 10);
    else
      printf("# faults not checked: ThreadSanitizer's shadow faults too\n");
  }
  MINIMIZE();
  {  /* HeapMinimize unmapped the cache: the pages come back fresh */
    unsigned char *p = ALLOC(4 * MIB);
    CHECK(p && resident(p, 4 * MIB) == 0);
    FREE(p);
  }
}

/* A huge block never touched costs no memory when freed, whether the
** cache unmaps it (the first Free) or keeps it (the second, after the
** program reused its size): under AddressSanitizer the allocator poisons
** what it keeps, and a shadow written for the whole range would be an
** eighth of it, 128 MiB here, resident for as long as it is kept. */
static void test_huge_free(void) {
  size_t n = (size_t)1 << 30, before, peak = 0;
  int k;
  before = rss();
  for (k = 0; k < 2; k++) {
    void *p = ALLOC(n);
    CHECK(p != NULL);
    if (!p) return;
    FREE(p);
    if (rss() > peak) peak = rss();
  }
  printf("# 1 GiB untouched, allocated and freed twice: RSS %zu -> %zu KiB\n",
         before >> 10, peak >> 10);
  if (PROCESS_COUNTS)
    CHECK(peak < before + 16 * MIB);
  else
    printf("# RSS not checked: ThreadSanitizer's shadow counts too\n");
  MINIMIZE();
}

/* A block made of the pages of two kept mappings (its first part moved
** in from one, the rest its own) spans two of the kernel's mappings, which
** one mremap cannot move: growing it still moves its pages, piece by
** piece, instead of copying them (a copy faults in every page again). */
static void test_grow_pieced_block(void) {
  size_t n = 4 * MIB, i;
  unsigned char *a = ALLOC(n), *c, *r;
  long f0, f1;
  int ok = 1;
  CHECK(a != NULL);
  if (!a) return;
  memset(a, 7, n);
  FREE(a);  /* kept */
  /* a page right after it, so that it cannot grow where it is */
  if (mmap(a + n, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
           -1, 0) == MAP_FAILED)
    printf("# the page after the kept mapping is taken already\n");
  c = ALLOC(2 * n);  /* a's pages moved to the front of a new mapping */
  CHECK(c != NULL);
  if (!c) return;
  memset(c, 9, 2 * n);
  f0 = minor_faults();
  r = REALLOC(c, 16 * n);
  f1 = minor_faults();
  CHECK(r != NULL);
  if (!r) return;
  for (i = 0; i < 2 * n; i += page) ok &= r[i] == 9;
  CHECK(ok);
  printf("# a block of two mappings grown from 8 to 64 MiB: %ld page faults\n",
         f1 - f0);
  if (PROCESS_COUNTS)
    CHECK(f1 - f0 < 64);
  FREE(r);
  MINIMIZE();
}

/* Realloc grows a large block without copying its pages (mremap): the
** bytes are kept, and the grown block costs no fault per page it had. */
static void test_realloc_growth(void) {
  size_t n = 200000, i;
  unsigned char *p = ALLOC(n), *q;
  int ok = 1;
  long f0, f1, most = 0;
  CHECK(p != NULL);
  if (!p) return;
  for (i = 0; i < n; i++) p[i] = (unsigned char)(i * 7);
  while (n < 64 * MIB) {
    size_t old = n;
    n *= 2;
    f0 = minor_faults();
    q = REALLOC(p, n);
    f1 = minor_faults();
    if (!q) { ok = 0; break; }
    if (f1 - f0 > most) most = f1 - f0;
    if (GETSIZE(q) != n || DIDALLOC(q) != 1) ok = 0;
    if (q != p && DIDALLOC(p) != 0) ok = 0;
    for (i = 0; i < 200000; i += 997)
      if (q[i] != (unsigned char)(i * 7)) ok = 0;
    memset(q + old, 0x11, n - old);  /* the new part is writable */
    if (q[old - 1] != (old - 1 < 200000 ? (unsigned char)((old - 1) * 7)
                                        : 0x11)) ok = 0;
    p = q;
  }
  CHECK(ok);
  printf("# growth to 64 MiB: at most %ld page faults in one Realloc\n", most);
  if (PROCESS_COUNTS)
    CHECK(most < 64);  /* a copy of 32 MiB would fault 8192 pages */
  else
    printf("# faults not checked: ThreadSanitizer's shadow faults too\n");
  FREE(p);
  CHECK(DIDALLOC(p) == 0);
  MINIMIZE();
}

/* HeapMinimize on one thread makes every other thread flush its cache on
** its next call that misses it: a chunk pinned only by blocks cached by an
** idle thread goes back once that thread allocates again. */
static sem_t to_worker, to_main;
static void *worker_blocks[100];
static uintptr_t worker_chunk;

static void *worker(void *arg) {
  void *q;
  int i;
  (void)arg;
  for (i = 0; i < 100; i++) worker_blocks[i] = ALLOC(1000);
  worker_chunk = CHUNK(worker_blocks[99]);
  for (i = 0; i < 100; i++) FREE(worker_blocks[i]);  /* some stay cached */
  sem_post(&to_main);
  sem_wait(&to_worker);   /* main calls HeapMinimize meanwhile */
  q = ALLOC(5000);        /* a class this thread never used: a miss */
  FREE(q);
  sem_post(&to_main);
  sem_wait(&to_worker);   /* stays alive until main has looked */
  return NULL;
}

static void test_other_threads(void) {
  pthread_t t;
  size_t held;
  /* A chunk of the worker's miss class already in use, so that its miss
  ** does not take back the chunk its flush is about to empty. */
  void *keep = ALLOC(5000);
  sem_init(&to_worker, 0, 0);
  sem_init(&to_main, 0, 0);
  if (pthread_create(&t, NULL, worker, NULL) != 0) {
    CHECK(!"pthread_create");
    FREE(keep);
    return;
  }
  sem_wait(&to_main);
  MINIMIZE();
  held = resident((void *)worker_chunk, MIB);
  printf("# another thread's cached blocks: %zu KiB of their chunk kept\n",
         held >> 10);
  CHECK(held > 0);        /* its cache still holds blocks of the chunk */
  sem_post(&to_worker);
  sem_wait(&to_main);     /* it has missed its cache once since */
  MINIMIZE();
  held = resident((void *)worker_chunk, MIB);
  printf("# after its next miss: %zu KiB kept\n", held >> 10);
  CHECK(held == 0);
  sem_post(&to_worker);
  pthread_join(t, NULL);
  FREE(keep);
  sem_destroy(&to_worker);
  sem_destroy(&to_main);
}

/* A size class costs what it serves: its first block takes one block
** from a chunk, not a batch of them (the chunk's header page and the
** block's page are all that is touched). */
static void test_small_class(void) {
  unsigned char *p;
  size_t r;
  MINIMIZE();  /* every empty chunk clean: the next one starts untouched */
  p = ALLOC(600);  /* a class no test here has used */
  CHECK(p != NULL);
  if (!p) return;
  p[0] = 1;
  r = resident((void *)CHUNK(p), MIB);
  printf("# one block of 600 bytes: %zu KiB of its chunk resident\n",
         r >> 10);
  CHECK(r <= 3 * page);
  FREE(p);
  MINIMIZE();
}

int main(void) {
  long ps = sysconf(_SC_PAGESIZE);
  page = ps > 0 ? (size_t)ps : 4096;
  setenv("IMALLOC_RETAIN", "16M", 1);  /* read at the allocator's first use */
  if (!client_open()) return 1;
  test_return();
  test_reuse_across_classes();
  test_large_cache();
  test_huge_free();
  test_grow_pieced_block();
  test_realloc_growth();
  test_other_threads();
  test_small_class();
  return check_report();
}
