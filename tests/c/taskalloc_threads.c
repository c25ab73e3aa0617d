/*
** taskalloc_threads.c: several threads allocate, reallocate and free blocks
** of random sizes and trade them through a shared exchange, so that most
** blocks are freed by a thread that did not allocate them. Every step checks
** GetSize, DidAlloc and the block's byte pattern. Then threads race to free
** the same blocks, and query blocks that others are freeing. At the end
** live_blocks must be back at its start value. Meanwhile the main thread
** forks: each child must be able to allocate (no lock left held).
**
** Usage: taskalloc_threads [seconds]   (default 2; the run is bounded)
*/
#define _POSIX_C_SOURCE 200809L

#include "taskalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { NTHREADS = 4, HELD = 128, XSLOTS = 64, RACE_ROUNDS = 2000 };

struct item {
  unsigned char *p;
  size_t n;
  unsigned seed;
};

static IMalloc *m;
static double g_seconds = 2.0;
static _Atomic int g_errors;
static _Atomic long g_ops;

static pthread_mutex_t x_lock = PTHREAD_MUTEX_INITIALIZER;
static struct item x_slots[XSLOTS];  /* the exchange, under x_lock */

static void error(const char *what, const struct item *it, size_t got) {
  if (atomic_fetch_add(&g_errors, 1) < 10)
    printf("ERROR %s: block %p size %zu seed %u (got %zu)\n", what,
           (void *)it->p, it->n, it->seed, got);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rnd(uint64_t *s) {  /* xorshift64* */
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

static size_t rnd_size(uint64_t *s) {
  unsigned r = (unsigned)(rnd(s) % 1000);
  if (r < 600) return (size_t)(rnd(s) % 129);          /* 0..128 */
  if (r < 950) return (size_t)(rnd(s) % 4096);
  if (r < 995) return (size_t)(rnd(s) % 65537);
  return 65537 + (size_t)(rnd(s) % 400000);            /* own mapping */
}

static unsigned char pat(unsigned seed, size_t i) {
  return (unsigned char)(seed + i * 131u + (i >> 8));
}

static void fill(struct item *it) {
  size_t i;
  for (i = 0; i < it->n; i++) it->p[i] = pat(it->seed, i);
}

/* Checks the first and last 64 bytes and a stride in between. */
static void verify(const struct item *it) {
  size_t i, got;
  if (!it->p) return;
  got = m->lpVtbl->GetSize(m, it->p);
  if (got != it->n) error("GetSize", it, got);
  if (m->lpVtbl->DidAlloc(m, it->p) != 1) error("DidAlloc", it, 0);
  if (it->n > 8 && m->lpVtbl->DidAlloc(m, it->p + 8) != 0)
    error("DidAlloc(interior)", it, 0);
  for (i = 0; i < it->n; i = (i < 64 || i + 64 >= it->n) ? i + 1 : i + 61)
    if (it->p[i] != pat(it->seed, i)) {
      error("pattern", it, i);
      return;
    }
}

static void release(struct item *it) {
  if (!it->p) return;
  verify(it);
  m->lpVtbl->Free(m, it->p);
  it->p = NULL;
}

static void *worker(void *arg) {
  uint64_t s = 0x9E3779B97F4A7C15ull * ((uintptr_t)arg + 1);
  struct item held[HELD];
  double end = now() + g_seconds;
  long ops = 0;
  int i;
  memset(held, 0, sizeof held);
  while ((ops & 255) || now() < end) {
    struct item *it = &held[rnd(&s) % HELD];
    unsigned op = (unsigned)(rnd(&s) % 10);
    ops++;
    verify(it);
    if (!it->p || op < 3) {  /* (re)allocate */
      release(it);
      it->n = rnd_size(&s);
      it->seed = (unsigned)rnd(&s);
      it->p = (rnd(&s) & 1) ? m->lpVtbl->Alloc(m, it->n)
                            : imalloc_CoTaskMemAlloc(it->n);
      if (!it->p) {
        error("Alloc", it, 0);
        continue;
      }
      fill(it);
    } else if (op < 6) {  /* Realloc keeps the common prefix */
      size_t n = rnd_size(&s), keep = n < it->n ? n : it->n, j;
      unsigned char *q = m->lpVtbl->Realloc(m, it->p, n);
      if (!q) {
        if (n) error("Realloc", it, n);
        if (!n) it->p = NULL;
        continue;
      }
      it->p = q;
      for (j = 0; j < keep; j = (j < 64 || j + 64 >= keep) ? j + 1 : j + 61)
        if (q[j] != pat(it->seed, j)) {
          error("Realloc pattern", it, j);
          break;
        }
      it->n = n;
      fill(it);
    } else if (op < 9) {  /* trade with the exchange */
      size_t k = rnd(&s) % XSLOTS;
      struct item tmp;
      pthread_mutex_lock(&x_lock);
      tmp = x_slots[k];
      x_slots[k] = *it;
      pthread_mutex_unlock(&x_lock);
      *it = tmp;
    } else {
      release(it);
    }
    if ((ops & 4095) == 0) m->lpVtbl->HeapMinimize(m);
  }
  for (i = 0; i < HELD; i++) release(&held[i]);
  atomic_fetch_add(&g_ops, ops);
  return NULL;
}

/* A child forked while other threads are inside the allocator. */
static int fork_check(void) {
  int status, i;
  pid_t pid = fork();
  if (pid < 0) return 0;
  if (pid == 0) {
    void *v[100];
    alarm(20);  /* a deadlock kills the child */
    for (i = 0; i < 100; i++) {
      v[i] = m->lpVtbl->Alloc(m, (size_t)i * 100);
      if (!v[i] || m->lpVtbl->GetSize(m, v[i]) != (SIZE_T)i * 100) _exit(2);
    }
    for (i = 0; i < 100; i++) m->lpVtbl->Free(m, v[i]);
    m->lpVtbl->HeapMinimize(m);
    /* The other threads' blocks are unreachable here: ending by exec
    ** spares the child valgrind's leak check (and its exit code). */
    execl("/bin/true", "true", (char *)NULL);
    _exit(0);
  }
  if (waitpid(pid, &status, 0) != pid) return 0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- racing frees ---------------------------------------------------- */

static pthread_barrier_t r_bar;
static void *_Atomic r_block;
static _Atomic size_t r_size;

#define MiB ((size_t)1 << 20)

/* The size of the block of race round i: small ones, a large one of one
** MiB region and one of four (its size and state in the table entry of the
** first, continuation entries in the others). */
static size_t race_size(size_t i) {
  if (i % 16 == 15) return 3 * MiB + 4096 + 5;
  if (i % 8 == 7) return 100000;
  return (i * 37) % 2000;
}

static void *racer(void *arg) {
  size_t who = (size_t)(uintptr_t)arg;
  int i;
  for (i = 0; i < RACE_ROUNDS; i++) {
    unsigned char *p, *q;
    size_t n;
    pthread_barrier_wait(&r_bar);  /* main has published a block */
    p = atomic_load(&r_block);
    n = atomic_load(&r_size);
    m->lpVtbl->DidAlloc(m, p);
    m->lpVtbl->GetSize(m, p);
    if (n > MiB) {  /* interior regions: never a block, whatever happens */
      if (m->lpVtbl->DidAlloc(m, p + MiB) != 0 ||
          m->lpVtbl->DidAlloc(m, p + 3 * MiB) != 0 ||
          m->lpVtbl->GetSize(m, p + 2 * MiB) != (SIZE_T)-1) {
        struct item it = {p, n, 0};
        error("DidAlloc/GetSize(interior region)", &it, 0);
      }
      m->lpVtbl->Free(m, p + MiB);
    }
    if (who == 0 && n > 65536 && (i & 16)) {
      /* Realloc in place (the tail unmapped) racing with the Frees: either
      ** wins, nothing breaks; main frees what is left */
      q = m->lpVtbl->Realloc(m, p, n > MiB ? MiB + 3 : 70000);
      if (q && q != p) m->lpVtbl->Free(m, q);  /* never expected */
    } else {
      m->lpVtbl->Free(m, p);
      m->lpVtbl->Free(m, p);
    }
    pthread_barrier_wait(&r_bar);  /* everyone is done with it */
  }
  return NULL;
}

static size_t live_blocks(void) {
  struct imalloc_taskstats st;
  imalloc_taskalloc_stats(&st);
  return st.live_blocks;
}

int main(int argc, char **argv) {
  pthread_t t[NTHREADS];
  size_t base, i;
  int failed = 0, passed = 0, errors0;
  setvbuf(stdout, NULL, _IOLBF, 0);  /* a crash loses no report line */
  if (argc > 1) g_seconds = atof(argv[1]);
  if (imalloc_CoGetMalloc(1, &m) != S_OK) return 1;
  base = live_blocks();

  for (i = 0; i < NTHREADS; i++)
    pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
  {
    int forks = 0, forks_ok = 0;
    double end = now() + g_seconds * 0.8;
    while (now() < end && forks < 20) {
      struct timespec ts = {0, 50000000};
      forks++;
      forks_ok += fork_check();
      nanosleep(&ts, NULL);
    }
    if (forks_ok != forks) {
      printf("FAIL: %d of %d forked children failed\n", forks - forks_ok,
             forks);
      failed++;
    } else {
      passed++;
    }
  }
  for (i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
  for (i = 0; i < XSLOTS; i++) release(&x_slots[i]);
  if (atomic_load(&g_errors)) failed++; else passed++;
  if (live_blocks() != base) {
    printf("FAIL: live_blocks %zu, expected %zu\n", live_blocks(), base);
    failed++;
  } else {
    passed++;
  }

  /* NTHREADS threads free the same block at once; one of them wins. */
  errors0 = atomic_load(&g_errors);
  pthread_barrier_init(&r_bar, NULL, NTHREADS + 1);
  for (i = 0; i < NTHREADS; i++)
    pthread_create(&t[i], NULL, racer, (void *)(uintptr_t)i);
  for (i = 0; i < RACE_ROUNDS; i++) {
    size_t n = race_size(i);
    void *p = m->lpVtbl->Alloc(m, n);
    atomic_store(&r_size, n);
    atomic_store(&r_block, p);
    pthread_barrier_wait(&r_bar);
    pthread_barrier_wait(&r_bar);
    if (n > 65536 && (i & 16) && m->lpVtbl->DidAlloc(m, p) == 1) {
      /* the Realloc won the race: the Frees found it BUSY */
      m->lpVtbl->Free(m, p);
      m->lpVtbl->Free(m, p);
    }
    if (m->lpVtbl->DidAlloc(m, p) != 0) {
      failed++;
      printf("FAIL: raced block still live\n");
      break;
    }
  }
  if (atomic_load(&g_errors) != errors0) {
    printf("FAIL: errors in the racing frees\n");
    failed++;
  }
  for (i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&r_bar);
  if (live_blocks() != base) {
    printf("FAIL: after racing frees live_blocks %zu, expected %zu\n",
           live_blocks(), base);
    failed++;
  } else {
    passed++;
  }
  printf("%ld operations in %d threads\n", atomic_load(&g_ops), NTHREADS);
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
