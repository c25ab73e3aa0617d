/*
** late_thread.h: calls made while a thread ends, after the allocator's own
** key destructor has given the thread's cache back. late_thread_run(fn)
** starts a thread that sets its cache up (an Alloc and a Free) and ends;
** a key destructor of this header sets its value again until its third
** round, which comes after the allocator's destructor, and calls fn then.
** Returns 1 when the key and the thread were made and the thread joined.
*/
#ifndef IMALLOC_TESTS_LATE_THREAD_H
#define IMALLOC_TESTS_LATE_THREAD_H

#include <pthread.h>
#include <stdint.h>

#include "client.h"

static pthread_key_t late_key;
static void (*late_fn)(void);

static void late_destructor(void *arg) {
  int round = (int)(uintptr_t)arg;
  if (round < 2) {  /* wait for a round after the allocator's destructor */
    pthread_setspecific(late_key, (void *)(uintptr_t)(round + 1));
    return;
  }
  late_fn();
}

static void *late_thread(void *arg) {
  void *p = ALLOC(16);  /* sets the thread's cache up */
  (void)arg;
  FREE(p);
  pthread_setspecific(late_key, (void *)(uintptr_t)1);
  return NULL;
}

static int late_thread_run(void (*fn)(void)) {
  pthread_t t;
  int ok;
  late_fn = fn;
  if (pthread_key_create(&late_key, late_destructor) != 0) return 0;
  ok = pthread_create(&t, NULL, late_thread, NULL) == 0 &&
       pthread_join(t, NULL) == 0;
  pthread_key_delete(late_key);
  return ok;
}

#endif
