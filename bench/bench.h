/*
** bench.h: what the benchmark drivers share (docs/performance.md).
**
** A monotonic clock in nanoseconds, and callgrind's client requests: a
** driver zeroes callgrind's counters before a loop and dumps them, under a
** label, after it, so one run under `valgrind --tool=callgrind` counts the
** instructions of every loop separately. Outside valgrind the requests are
** a few no-op instructions; without valgrind's headers (IMALLOC_BENCH_CG
** undefined) they are nothing, and the instruction columns stay empty.
*/
#ifndef IMALLOC_BENCH_H
#define IMALLOC_BENCH_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#ifdef IMALLOC_BENCH_CG
#include <valgrind/callgrind.h>
#include <valgrind/valgrind.h>
#endif

static inline uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The median of v[0..n-1] (n > 0); sorts v. */
static inline double bench_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* 1 under valgrind: the driver then counts instead of timing. */
static inline int bench_under_valgrind(void) {
#ifdef IMALLOC_BENCH_CG
  return RUNNING_ON_VALGRIND != 0;
#else
  return 0;
#endif
}

static inline void bench_cg_zero(void) {
#ifdef IMALLOC_BENCH_CG
  CALLGRIND_ZERO_STATS;
#endif
}

/* Dumps the counts since the last zero as "Client Request: <label>". */
static inline void bench_cg_dump(const char *label) {
#ifdef IMALLOC_BENCH_CG
  CALLGRIND_DUMP_STATS_AT(label);
#else
  (void)label;
#endif
}

#endif
