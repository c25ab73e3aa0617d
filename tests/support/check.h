/*
** check.h: the C tests' tally. CHECK(cond) counts a pass, or prints the
** failing line; check_report() prints "N passed, N failed", the line CI
** reads, and returns the process's exit status.
*/
#ifndef IMALLOC_TESTS_CHECK_H
#define IMALLOC_TESTS_CHECK_H

#include <stdio.h>

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

static inline int check_report(void) {
  printf("%d passed, %d failed\n", check_passed, check_failed);
  return check_failed != 0;
}

#endif
