/*
** scenarios.c: what an allocator does with memory over a process's life,
** measured with the kernel's counts (RSS, peak RSS, page faults) and, where
** only time tells, the clock (docs/performance.md, "Allocators side by side").
**
** Linked with one peer_*.c into bench/alloc-<allocator>; each invocation
** runs one scenario in a fresh process and prints "key value" lines:
**
**   live N        N live blocks of 16..4096 B, each written whole: RSS
**                 after the allocations, after freeing them all, and after
**                 the allocator's minimize on top
**   decay         100,000 live blocks of 16..4096 B freed, then light use
**                 (100 small blocks allocated and freed every 10 ms) and no
**                 minimize: RSS right after the frees, 1 s and 5 s later
**   phases        peak RSS of three phases of 512 MiB of blocks (64 B, then
**                 1000 B, then 4000 B), each phase freed before the next
**   large MIB     cycles of alloc + write every page + free of a MIB MiB
**                 block: time and minor page faults per cycle after the first
**   realloc       one block grown from 16 B to 256 MiB by doubling: time, and
**                 how many times its address changed (copies)
**   churn         RSS with 1,000 live blocks of 16..1024 B left after a
**                 million frees and allocations among 10,000
**   pc            one thread allocates blocks, another frees them: blocks
**                 per second, and the threads' CPU time in the allocator
**
** Sizes come from a fixed-seed generator: every allocator gets the same
** requests in the same order. The driver's own arrays are mapped with mmap,
** apart from every allocator, and count alike in every process's RSS.
*/
#define _GNU_SOURCE  /* MAP_ANONYMOUS */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "peer.h"

#define MIB (1024.0 * 1024.0)

static void fail(const char *what) {
  fprintf(stderr, "%s: %s\n", peer_name, what);
  exit(1);
}

/* ---- what the kernel says -------------------------------------------------- */

/* A field of /proc/self/status in kB ("VmRSS:", "VmHWM:"), in MiB. Read
** with open/read into the stack: stdio would allocate, and its buffers would
** sit among the measured blocks. */
static double status_mib(const char *field) {
  char text[8192];
  const char *at;
  ssize_t got, len = 0;
  int fd = open("/proc/self/status", O_RDONLY);
  if (fd < 0) fail("cannot read /proc/self/status");
  while (len < (ssize_t)sizeof text - 1 &&
         (got = read(fd, text + len, sizeof text - 1 - (size_t)len)) > 0)
    len += got;
  close(fd);
  text[len] = '\0';
  at = strstr(text, field);
  if (!at) fail("no such field in /proc/self/status");
  return strtod(at + strlen(field), NULL) / 1024.0;
}

static long minor_faults(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

/* ---- the driver's own memory, apart from the allocator --------------------- */

static void *map(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) fail("mmap of the driver's array failed");
  return p;
}

/* ---- sizes ------------------------------------------------------------------ */

static uint64_t g_seed = 0x9E3779B97F4A7C15u;

static uint64_t next_random(void) {  /* xorshift64* */
  g_seed ^= g_seed >> 12;
  g_seed ^= g_seed << 25;
  g_seed ^= g_seed >> 27;
  return g_seed * 0x2545F4914F6CDD1Du;
}

static size_t random_size(size_t lo, size_t hi) {
  return lo + (size_t)(next_random() % (hi - lo + 1));
}

static void *alloc_written(size_t size, int byte) {
  void *p = peer_alloc(size);
  if (!p) fail("out of memory");
  memset(p, byte, size);
  return p;
}

/* ---- (a) N live blocks ------------------------------------------------------- */

static void live(long n) {
  size_t bytes = (size_t)n * sizeof(void *);
  void **v = (void **)map(bytes);
  long i;
  printf("live.%ld.start_mib %.1f\n", n, status_mib("VmRSS:"));
  for (i = 0; i < n; i++) v[i] = alloc_written(random_size(16, 4096), (int)i);
  printf("live.%ld.alloc_mib %.1f\n", n, status_mib("VmRSS:"));
  for (i = 0; i < n; i++) peer_free(v[i]);
  munmap(v, bytes);
  printf("live.%ld.free_mib %.1f\n", n, status_mib("VmRSS:"));
  peer_minimize();
  printf("live.%ld.minimize_mib %.1f\n", n, status_mib("VmRSS:"));
}

/* ---- (a') what is kept without a minimize, over time ----------------------- */

#define DECAY_BLOCKS 100000

static void sleep_ms(long ms) {
  struct timespec ts = { 0, ms * 1000000L };
  nanosleep(&ts, NULL);
}

static void decay(void) {
  static const double marks[] = { 1, 5 };
  size_t bytes = DECAY_BLOCKS * sizeof(void *);
  void **v = (void **)map(bytes);
  uint64_t t0;
  long i;
  size_t m;
  for (i = 0; i < DECAY_BLOCKS; i++)
    v[i] = alloc_written(random_size(16, 4096), (int)i);
  printf("decay.alloc_mib %.1f\n", status_mib("VmRSS:"));
  for (i = 0; i < DECAY_BLOCKS; i++) peer_free(v[i]);
  munmap(v, bytes);
  printf("decay.0s_mib %.1f\n", status_mib("VmRSS:"));
  t0 = bench_now_ns();
  for (m = 0; m < sizeof marks / sizeof *marks; m++) {
    /* a process that goes on, lightly: what an allocator's decay or
    ** retention bound gives back without being asked */
    while ((double)(bench_now_ns() - t0) < marks[m] * 1e9) {
      for (i = 0; i < 100; i++) peer_free(alloc_written(random_size(16, 4096), 3));
      sleep_ms(10);
    }
    printf("decay.%.0fs_mib %.1f\n", marks[m], status_mib("VmRSS:"));
  }
}

/* ---- (b) three phases of 512 MiB ------------------------------------------- */

#define PHASE_BYTES ((size_t)512 << 20)

static void phases(void) {
  static const size_t sizes[] = { 64, 1000, 4000 };
  size_t most = PHASE_BYTES / sizes[0];
  void **v = (void **)map(most * sizeof *v);
  size_t s;
  printf("phases.array_mib %.1f\n", (double)(most * sizeof *v) / MIB);
  for (s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    size_t n = PHASE_BYTES / sizes[s], i;
    for (i = 0; i < n; i++) v[i] = alloc_written(sizes[s], (int)i);
    printf("phases.%zu.rss_mib %.1f\n", sizes[s], status_mib("VmRSS:"));
    for (i = 0; i < n; i++) peer_free(v[i]);
  }
  printf("phases.end_mib %.1f\n", status_mib("VmRSS:"));
  printf("phases.peak_mib %.1f\n", status_mib("VmHWM:"));
}

/* ---- (c) large-block cycles -------------------------------------------------- */

#define MAX_CYCLES 100

static void large_cycle(size_t size, size_t page) {
  char *p = (char *)peer_alloc(size);
  size_t off;
  if (!p) fail("out of memory");
  for (off = 0; off < size; off += page) p[off] = 1;
  peer_free(p);
}

static void large(long mib) {
  size_t size = (size_t)mib << 20, page = (size_t)sysconf(_SC_PAGESIZE);
  int cycles = mib >= 16 ? 20 : mib >= 4 ? 50 : MAX_CYCLES, c;
  double us[MAX_CYCLES];
  long f0 = minor_faults(), f1;
  uint64_t t0 = bench_now_ns();
  large_cycle(size, page);
  printf("large.%ld.first_us %.1f\n", mib, (double)(bench_now_ns() - t0) / 1e3);
  printf("large.%ld.first_faults %ld\n", mib, minor_faults() - f0);
  f1 = minor_faults();
  for (c = 0; c < cycles; c++) {
    t0 = bench_now_ns();
    large_cycle(size, page);
    us[c] = (double)(bench_now_ns() - t0) / 1e3;
  }
  printf("large.%ld.faults %.1f\n", mib,
         (double)(minor_faults() - f1) / cycles);
  printf("large.%ld.cycle_us %.1f\n", mib, bench_median(us, cycles));
}

/* ---- (d) realloc growth ------------------------------------------------------- */

#define GROW_REPS 5

static void realloc_growth(void) {
  static const char mark[16] = "imalloc bench 16";
  double ms[GROW_REPS];
  int copies = 0, r;
  for (r = 0; r < GROW_REPS; r++) {
    uint64_t t0 = bench_now_ns();
    char *p = (char *)peer_alloc(16);
    size_t size;
    int moved = 0;
    if (!p) fail("out of memory");
    memcpy(p, mark, sizeof mark);
    for (size = 32; size <= ((size_t)256 << 20); size *= 2) {
      char *q = (char *)peer_realloc(p, size);
      if (!q) fail("out of memory");
      moved += q != p;
      p = q;
    }
    if (memcmp(p, mark, sizeof mark) != 0) fail("realloc lost the contents");
    peer_free(p);
    ms[r] = (double)(bench_now_ns() - t0) / 1e6;
    if (moved > copies) copies = moved;
  }
  printf("realloc.ms %.3f\n", bench_median(ms, GROW_REPS));
  printf("realloc.copies %d\n", copies);
}

/* ---- (e) churn, then 1,000 live blocks ------------------------------------ */

#define CHURN_POOL 10000
#define CHURN_KEEP 1000
#define CHURN_OPS 1000000

static void churn(void) {
  static void *v[CHURN_POOL];
  long i;
  printf("churn.start_mib %.1f\n", status_mib("VmRSS:"));
  for (i = 0; i < CHURN_POOL; i++) v[i] = alloc_written(random_size(16, 1024), 1);
  for (i = 0; i < CHURN_OPS; i++) {
    size_t k = (size_t)(next_random() % CHURN_POOL);
    peer_free(v[k]);
    v[k] = alloc_written(random_size(16, 1024), 2);
  }
  for (i = CHURN_KEEP; i < CHURN_POOL; i++) peer_free(v[i]);
  printf("churn.rss_mib %.1f\n", status_mib("VmRSS:"));
  peer_minimize();
  printf("churn.minimize_mib %.1f\n", status_mib("VmRSS:"));
  for (i = 0; i < CHURN_KEEP; i++) peer_free(v[i]);
}

/* ---- (f) producer / consumer ---------------------------------------------- */

#define PC_BATCH 1024   /* blocks handed over at once */
#define PC_SLOTS 4      /* batches in flight */
#define PC_BATCHES 2048 /* 2,097,152 blocks a run; a quarter under valgrind */
#define PC_REPS 3

/* One producer, one consumer, batches of blocks between them; each index
** is written by one thread only. The CPU time each thread spends in the
** allocator (allocating a batch, freeing one) is counted apart from the
** time it waits: on a loaded machine the wall clock measures the load, the
** threads' CPU time still the allocator. */
struct pipe {
  _Alignas(64) atomic_size_t head;  /* batches filled by the producer */
  _Alignas(64) atomic_size_t tail;  /* batches emptied by the consumer */
  _Alignas(64) void *block[PC_SLOTS][PC_BATCH];
  uint64_t free_cpu_ns;             /* the consumer's, in peer_free */
};

static struct pipe g_pipe;
static size_t g_batches = PC_BATCHES;

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The allocator's work, in functions of their own: bench/alloc-run counts
** their instructions with callgrind (--toggle-collect), and nothing else. */
__attribute__((noinline)) static void pc_alloc_batch(void **batch) {
  int i;
  for (i = 0; i < PC_BATCH; i++) {
    char *p = (char *)peer_alloc(random_size(16, 256));
    if (!p) fail("out of memory");
    p[0] = (char)i;
    batch[i] = p;
  }
}

__attribute__((noinline)) static void pc_free_batch(void **batch) {
  int i;
  for (i = 0; i < PC_BATCH; i++) {
    if (*(char *)batch[i] != (char)i) fail("producer/consumer: wrong block");
    peer_free(batch[i]);
  }
}

static void *consumer(void *arg) {
  size_t tail;
  (void)arg;
  for (tail = 0; tail < g_batches; tail++) {
    void **batch = g_pipe.block[tail % PC_SLOTS];
    uint64_t c0;
    while (atomic_load_explicit(&g_pipe.head, memory_order_acquire) == tail)
      sched_yield();
    c0 = thread_cpu_ns();
    pc_free_batch(batch);
    g_pipe.free_cpu_ns += thread_cpu_ns() - c0;
    atomic_store_explicit(&g_pipe.tail, tail + 1, memory_order_release);
  }
  return NULL;
}

/* Blocks per second, and *cpu_ns: the CPU nanoseconds of one block's
** allocation on one thread plus its free on the other. */
static double producer_consumer_once(double *cpu_ns) {
  pthread_t th;
  size_t head;
  uint64_t alloc_cpu_ns = 0, t0 = bench_now_ns();
  atomic_store(&g_pipe.head, 0);
  atomic_store(&g_pipe.tail, 0);
  g_pipe.free_cpu_ns = 0;
  if (pthread_create(&th, NULL, consumer, NULL) != 0) fail("pthread_create");
  for (head = 0; head < g_batches; head++) {
    void **batch = g_pipe.block[head % PC_SLOTS];
    uint64_t c0;
    while (head - atomic_load_explicit(&g_pipe.tail, memory_order_acquire) ==
           PC_SLOTS)
      sched_yield();
    c0 = thread_cpu_ns();
    pc_alloc_batch(batch);
    alloc_cpu_ns += thread_cpu_ns() - c0;
    atomic_store_explicit(&g_pipe.head, head + 1, memory_order_release);
  }
  pthread_join(th, NULL);
  *cpu_ns = (double)(alloc_cpu_ns + g_pipe.free_cpu_ns) /
            ((double)g_batches * PC_BATCH);
  return (double)g_batches * PC_BATCH /
         ((double)(bench_now_ns() - t0) / 1e9);
}

static void producer_consumer(void) {
  double rate[PC_REPS], cpu[PC_REPS];
  int r, reps = bench_under_valgrind() ? 1 : PC_REPS;
  if (bench_under_valgrind()) g_batches = PC_BATCHES / 4;
  for (r = 0; r < reps; r++) rate[r] = producer_consumer_once(&cpu[r]);
  if (bench_under_valgrind()) {  /* callgrind counts; the clocks mean nothing */
    printf("pc.blocks %zu\n", g_batches * PC_BATCH);
    return;
  }
  printf("pc.mblocks_s %.2f\n", bench_median(rate, reps) / 1e6);
  printf("pc.cpu_ns %.1f\n", bench_median(cpu, reps));
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  long arg = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
  /* stdout's buffer is static: printf allocates nothing in the middle of
  ** the blocks measured (glibc would put it on top of its heap). */
  static char out[BUFSIZ];
  setvbuf(stdout, out, _IOFBF, sizeof out);
  if (peer_init() != 0) return 1;
  if (strcmp(what, "live") == 0 && arg > 0) live(arg);
  else if (strcmp(what, "decay") == 0) decay();
  else if (strcmp(what, "phases") == 0) phases();
  else if (strcmp(what, "large") == 0 && arg > 0) large(arg);
  else if (strcmp(what, "realloc") == 0) realloc_growth();
  else if (strcmp(what, "churn") == 0) churn();
  else if (strcmp(what, "pc") == 0) producer_consumer();
  else {
    fprintf(stderr,
            "usage: %s live N | decay | phases | large MIB | realloc | churn | pc\n",
            argv[0]);
    return 2;
  }
  return 0;
}
