/*
** late_thread.h: calls made while a thread ends, after the allocator's own
** key destructor has given the thread's cache back. late_thread_run(fn)
** starts a thread that sets its cache up (an Alloc and a Free) and ends;
** a key destructor of this header sets its value again until its second
** round, which comes after the allocator's destructor, and calls fn then.
** late_thread_run_last(fn) calls fn in the last round there is
** (PTHREAD_DESTRUCTOR_ITERATIONS): no destructor runs after it. Both
** return 1 when the key and the thread were made and the thread joined.
** late_setup, if set, is called by the thread before it ends.
*/
#ifndef IMALLOC_TESTS_LATE_THREAD_H
#define IMALLOC_TESTS_LATE_THREAD_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "client.h"

static pthread_key_t late_key;
static void (*late_fn)(void);
/* Called by the thread while its cache is set up, before it ends (none
** if NULL). */
static void (*late_setup)(void);
static int late_round;  /* the round that calls late_fn */

static void late_destructor(void *arg) {
  int round = (int)(uintptr_t)arg;
  if (round < late_round) {  /* wait for that round */
    pthread_setspecific(late_key, (void *)(uintptr_t)(round + 1));
    return;
  }
  late_fn();
}

static void *late_thread(void *arg) {
  void *p = ALLOC(16);  /* sets the thread's cache up */
  (void)arg;
  FREE(p);
  if (late_setup) late_setup();
  pthread_setspecific(late_key, (void *)(uintptr_t)1);
  return NULL;
}

static int late_thread_run_in(void (*fn)(void), int round) {
  pthread_t t;
  int ok;
  late_fn = fn;
  late_round = round;
  if (pthread_key_create(&late_key, late_destructor) != 0) return 0;
  ok = pthread_create(&t, NULL, late_thread, NULL) == 0 &&
       pthread_join(t, NULL) == 0;
  pthread_key_delete(late_key);
  return ok;
}

/* In the second round: one after the allocator's destructor. */
static int late_thread_run(void (*fn)(void)) {
  return late_thread_run_in(fn, 2);
}

static inline int late_thread_run_last(void (*fn)(void)) {
  return late_thread_run_in(fn, PTHREAD_DESTRUCTOR_ITERATIONS);
}

#endif
