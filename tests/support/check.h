/*
** check.h: the C tests' tally. CHECK(cond) counts a pass, or prints the
** failing line; check_report() prints "N passed, N failed", the line CI
** reads, and returns the process's exit status: non-zero on a failure,
** or when nothing was checked at all.
*/
#ifndef IMALLOC_TESTS_CHECK_H
#define IMALLOC_TESTS_CHECK_H

#include <stdio.h>
#include <unistd.h>

static int check_passed, check_failed;

static inline void check_at(int ok, int line, const char *what) {
  if (ok) {
    check_passed++;
  } else {
    check_failed++;
    printf("FAIL line %d: %s\n", line, what);
  }
}

#define CHECK(cond) check_at((cond), __LINE__, #cond)

/* A run that checked nothing fails: a test that passes by doing nothing
** (a case skipped, an early return) is a hole, not a pass. */
static inline int check_report(void) {
  printf("%d passed, %d failed\n", check_passed, check_failed);
  if (check_passed + check_failed == 0) printf("FAIL: no check ran\n");
  return check_failed != 0 || check_passed == 0;
}

/* The end of a forked child: _exit(status), after writing the coverage
** counters in a coverage build (IMALLOC_COVERAGE, defined by
** tests/coverage/noreturn.h, which such a build forces into every file),
** which _exit alone would lose: the map of the lines each test reaches
** (tests/mutation/run) then counts the child's, such as the allocator's
** fork handlers. */
#ifdef IMALLOC_COVERAGE
extern void __gcov_dump(void);
#endif

static inline void check_child_exit(int status) {
#ifdef IMALLOC_COVERAGE
  __gcov_dump();
#endif
  _exit(status);
}

#endif
