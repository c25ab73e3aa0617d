/*
** cbench.c: the POSIX task allocator against the process's malloc, from C
** (docs/performance.md).
**
**   imalloc_cbench [NAME]   times every loop (median of REPS runs) and
**                           prints "key value" lines; NAME (default
**                           "glibc") names the malloc rows, which measure
**                           whatever malloc the process has: glibc's, or
**                           one put first with LD_PRELOAD.
**   under valgrind --tool=callgrind, the same loops are run once each
**   between a zero and a dump of callgrind's counters (bench.h).
**
** The allocator is called through its IMalloc vtable, malloc through
** function pointers read from volatile variables: both are indirect calls
** the compiler cannot see through, so it can neither inline nor elide them.
*/
#define _GNU_SOURCE  /* malloc_usable_size, mallinfo2 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taskalloc.h"
#include "bench.h"

static IMalloc *g_m;
static void *(*volatile g_malloc)(size_t) = malloc;
static void (*volatile g_free)(void *) = free;
static void *(*volatile g_realloc)(void *, size_t) = realloc;
static size_t (*volatile g_usable)(void *) = malloc_usable_size;

static const char *g_name = "glibc";
static int g_reps = 9;
static int g_cg;  /* under callgrind: count instead of timing */

/* ---- the loops ------------------------------------------------------------ */

typedef void (*loop_fn)(long n);

static void ta_pair(long n) {
  IMalloc *m = g_m;
  long i;
  for (i = 0; i < n; i++) m->lpVtbl->Free(m, m->lpVtbl->Alloc(m, 64));
}

static void ma_pair(long n) {
  long i;
  for (i = 0; i < n; i++) g_free(g_malloc(64));
}

static volatile size_t g_sink;

static void ta_getsize(long n) {
  IMalloc *m = g_m;
  void *p = m->lpVtbl->Alloc(m, 64);
  size_t sum = 0;
  long i;
  for (i = 0; i < n; i++) sum += m->lpVtbl->GetSize(m, p);
  m->lpVtbl->Free(m, p);
  g_sink = sum;
}

static void ma_usable(long n) {
  void *p = g_malloc(64);
  size_t sum = 0;
  long i;
  for (i = 0; i < n; i++) sum += g_usable(p);
  g_free(p);
  g_sink = sum;
}

static void ta_didalloc(long n) {
  IMalloc *m = g_m;
  void *p = m->lpVtbl->Alloc(m, 64);
  size_t sum = 0;
  long i;
  for (i = 0; i < n; i++) sum += (size_t)m->lpVtbl->DidAlloc(m, p);
  m->lpVtbl->Free(m, p);
  g_sink = sum;
}

/* One growth sequence: 64 bytes, then 128, 256, ... 4096, then freed. */
static void ta_realloc(long n) {
  IMalloc *m = g_m;
  long i;
  for (i = 0; i < n; i++) {
    void *p = m->lpVtbl->Alloc(m, 64);
    size_t size;
    for (size = 128; size <= 4096; size *= 2)
      p = m->lpVtbl->Realloc(m, p, size);
    m->lpVtbl->Free(m, p);
  }
}

static void ma_realloc(long n) {
  long i;
  for (i = 0; i < n; i++) {
    void *p = g_malloc(64);
    size_t size;
    for (size = 128; size <= 4096; size *= 2) p = g_realloc(p, size);
    g_free(p);
  }
}

/* Arithmetic only, no memory: what the machine itself gives two threads. */
static void spin(long n) {
  uint64_t x = 88172645463325252u;
  long i;
  for (i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  g_sink = (size_t)x;
}

/* ---- timing ------------------------------------------------------------- */

/* Iterations for about 20 ms of `f`. */
static long calibrate(loop_fn f) {
  long n = 1000;
  for (;;) {
    uint64_t t0 = bench_now_ns();
    f(n);
    if (bench_now_ns() - t0 >= 20000000u || n >= (1L << 30)) return n;
    n *= 2;
  }
}

#define MAXREPS 64

/* Times the loops of `fs` round-robin, REPS times, and prints the median
** nanoseconds per iteration of each as "<key> <ns>", after every run's
** figure in order as "<key>@ <ns> <ns> ...". Under callgrind, runs
** each once for `cgn` iterations between a zero and a dump labelled
** "<key>/<cgn>". */
static void measure(int count, const char *const *keys, const loop_fn *fs,
                    long cgn) {
  double ns[8][MAXREPS];
  long iters[8];
  int i, r;
  if (g_cg) {
    for (i = 0; i < count; i++) {
      char label[128];
      fs[i](cgn / 10 + 1);  /* warm: caches, lazy binding */
      snprintf(label, sizeof label, "%s/%ld", keys[i], cgn);
      bench_cg_zero();
      fs[i](cgn);
      bench_cg_dump(label);
    }
    return;
  }
  for (i = 0; i < count; i++) iters[i] = calibrate(fs[i]);
  for (r = 0; r < g_reps; r++) {
    for (i = 0; i < count; i++) {
      uint64_t t0 = bench_now_ns();
      fs[i](iters[i]);
      ns[i][r] = (double)(bench_now_ns() - t0) / (double)iters[i];
    }
  }
  for (i = 0; i < count; i++) {  /* each run's figure in order, then the median */
    printf("%s@", keys[i]);
    for (r = 0; r < g_reps; r++) printf(" %.2f", ns[i][r]);
    printf("\n%s %.2f\n", keys[i], bench_median(ns[i], g_reps));
  }
  fflush(stdout);
}

/* ---- threads -------------------------------------------------------------- */

struct worker {
  loop_fn f;
  long n;
  pthread_barrier_t *start;
  uint64_t cpu_ns;  /* the thread's own CPU time for f(n) */
};

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *worker_main(void *arg) {
  struct worker *w = (struct worker *)arg;
  uint64_t c0;
  w->f(1000);  /* the thread's cache is set up before the clock starts */
  pthread_barrier_wait(w->start);
  c0 = thread_cpu_ns();
  w->f(w->n);
  w->cpu_ns = thread_cpu_ns() - c0;
  return NULL;
}

/* Runs f(n) in `nthreads` threads at once. Returns the wall nanoseconds;
** *cpu is the largest CPU time of one thread: the wall time it would have
** taken had each thread had a core of its own all along. */
static double run_threads(loop_fn f, long n, int nthreads, double *cpu) {
  pthread_t th[2];
  struct worker w[2];
  pthread_barrier_t start;
  uint64_t t0;
  int i;
  pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1);
  for (i = 0; i < nthreads; i++) {
    w[i].f = f;
    w[i].n = n;
    w[i].start = &start;
    w[i].cpu_ns = 0;
    if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0) abort();
  }
  pthread_barrier_wait(&start);
  t0 = bench_now_ns();
  for (i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&start);
  *cpu = 0;
  for (i = 0; i < nthreads; i++)
    if ((double)w[i].cpu_ns > *cpu) *cpu = (double)w[i].cpu_ns;
  return (double)(bench_now_ns() - t0);
}

/* For one and for two threads running `f` at once, the median nanoseconds
** per iteration of all threads together, from the wall clock
** ("<key>.t1", "<key>.t2") and from the threads' CPU times ("<key>.cpu1",
** "<key>.cpu2"). Throughput(2) / throughput(1) is t1 / t2. On a machine
** where something else holds a core, t2 cannot show the scaling; cpu2
** still shows whether the threads slow each other down (a lock, a shared
** cache line), as far as they ran at the same time. */
static void measure_threads(const char *key, loop_fn f) {
  double t1[MAXREPS], t2[MAXREPS], c1[MAXREPS], c2[MAXREPS];
  long n = calibrate(f) * 2;
  int r;
  if (g_cg) return;  /* callgrind runs one thread at a time */
  for (r = 0; r < g_reps; r++) {
    t1[r] = run_threads(f, n, 1, &c1[r]) / (double)n;
    c1[r] /= (double)n;
    t2[r] = run_threads(f, n, 2, &c2[r]) / (double)(2 * n);
    c2[r] /= (double)(2 * n);
  }
  printf("%s.t1 %.2f\n%s.t2 %.2f\n", key, bench_median(t1, g_reps), key,
         bench_median(t2, g_reps));
  printf("%s.cpu1 %.2f\n%s.cpu2 %.2f\n", key, bench_median(c1, g_reps), key,
         bench_median(c2, g_reps));
  fflush(stdout);
}

/* ---- memory --------------------------------------------------------------- */

#define NSMALL 1000000
#define NLARGE 4096
#define NBATCH 4

/* Bookkeeping bytes per live block, from the allocator's own statistics:
** what its metadata grows by, over many live blocks, per block. */
static void memory(void) {
  struct imalloc_taskstats a, b;
  void **v = (void **)malloc(NSMALL * sizeof *v);
  struct mallinfo2 ma, mb;
  long i;
  if (!v) abort();
  imalloc_taskalloc_stats(&a);
  for (i = 0; i < NSMALL; i++) v[i] = imalloc_CoTaskMemAlloc(64);
  imalloc_taskalloc_stats(&b);
  printf("mem.small.meta %.3f\n",
         (double)(b.metadata_bytes - a.metadata_bytes) / NSMALL);
  printf("mem.small.mapped %.3f\n",
         (double)(b.mapped_bytes - a.mapped_bytes) / NSMALL);
  printf("mem.slot %zu\n", b.bookkeeping_bytes_per_block);
  for (i = 0; i < NSMALL; i++) imalloc_CoTaskMemFree(v[i]);
  /* Blocks above 64 KiB, in batches. A batch costs its blocks' descriptors
  ** and, when its blocks reach a new 16 GiB of address space, a leaf of the
  ** lookup table (128 KiB, one 8-byte entry per MiB): the least batch shows
  ** the descriptor alone, the whole the amortised cost. */
  {
    double least = -1;
    int batch;
    struct imalloc_taskstats first;
    imalloc_taskalloc_stats(&first);
    for (batch = 0; batch < NBATCH; batch++) {
      double per;
      imalloc_taskalloc_stats(&a);
      for (i = batch * NLARGE; i < (batch + 1) * NLARGE; i++)
        v[i] = imalloc_CoTaskMemAlloc(65537);
      imalloc_taskalloc_stats(&b);
      per = (double)(b.metadata_bytes - a.metadata_bytes) / NLARGE;
      if (least < 0 || per < least) least = per;
    }
    printf("mem.large.desc %.3f\n", least);
    printf("mem.large.meta %.3f\n",
           (double)(b.metadata_bytes - first.metadata_bytes) /
               (NBATCH * NLARGE));
    for (i = 0; i < NBATCH * NLARGE; i++) imalloc_CoTaskMemFree(v[i]);
  }
  /* malloc's, for comparison: the heap in use grows by this per 64 bytes */
  ma = mallinfo2();
  for (i = 0; i < NSMALL; i++) v[i] = g_malloc(64);
  mb = mallinfo2();
  printf("mem.malloc.small %.3f\n",
         (double)(mb.uordblks - ma.uordblks) / NSMALL - 64.0);
  for (i = 0; i < NSMALL; i++) g_free(v[i]);
  free(v);
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv) {
  char k[6][64];
  const char *keys[6];
  loop_fn fs[6];
  const char *reps = getenv("BENCH_REPS");
  int i;
  if (argc > 1) g_name = argv[1];
  if (reps && atoi(reps) > 0) g_reps = atoi(reps) > MAXREPS ? MAXREPS : atoi(reps);
  g_cg = bench_under_valgrind();
  if (imalloc_CoGetMalloc(MEMCTX_TASK, &g_m) != S_OK) return 1;
  for (i = 0; i < 6; i++) keys[i] = k[i];

  if (strcmp(g_name, "glibc") == 0) {  /* the allocator once, malloc each time */
    snprintf(k[0], sizeof k[0], "c.ta.pair");
    snprintf(k[1], sizeof k[1], "c.%s.pair", g_name);
    fs[0] = ta_pair;
    fs[1] = ma_pair;
    measure(2, keys, fs, 100000);
    snprintf(k[0], sizeof k[0], "c.ta.getsize");
    snprintf(k[1], sizeof k[1], "c.ta.didalloc");
    snprintf(k[2], sizeof k[2], "c.%s.usable", g_name);
    fs[0] = ta_getsize;
    fs[1] = ta_didalloc;
    fs[2] = ma_usable;
    measure(3, keys, fs, 100000);
    snprintf(k[0], sizeof k[0], "c.ta.realloc");
    snprintf(k[1], sizeof k[1], "c.%s.realloc", g_name);
    fs[0] = ta_realloc;
    fs[1] = ma_realloc;
    measure(2, keys, fs, 10000);
    measure_threads("c.ta.pair", ta_pair);
    measure_threads("c.glibc.pair", ma_pair);
    measure_threads("c.spin", spin);
    if (!g_cg) memory();
  } else {
    snprintf(k[0], sizeof k[0], "c.%s.pair", g_name);
    snprintf(k[1], sizeof k[1], "c.%s.realloc", g_name);
    fs[0] = ma_pair;
    fs[1] = ma_realloc;
    measure(1, keys, fs, 100000);
    measure(1, keys + 1, fs + 1, 10000);
  }
  return 0;
}
