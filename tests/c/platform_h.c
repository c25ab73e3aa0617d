/*
** platform_h.c: src/platform.h, the binding's atomics and spin lock: its C11
** half natively (c-platform-h), its Windows half (the Interlocked calls)
** under Wine (wine-c-platform-h, .ci/win/selftest/c-test.sh).
**
** A wait for the spin lock is seen without timing it: IMALLOC_SPIN_PAUSE,
** what the lock does on each turn it finds the lock taken, is the test's
** own here. It counts the turns, tells the main thread at the first turn of
** a wait, and gives the processor up (the main thread needs it to let go).
**
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#include "check.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#endif

static void paused(void);
#define IMALLOC_SPIN_PAUSE() paused()
#include "platform.h"

/* {=== a thread and a semaphore, on either system ===} */
static void (*thread_fn)(void);  /* what the one thread runs */
#ifdef _WIN32
typedef HANDLE thread_t;
typedef HANDLE signal_t;
static void signal_init(signal_t *s) { *s = CreateSemaphoreA(NULL, 0, 64, NULL); }
static void signal_post(signal_t *s) { ReleaseSemaphore(*s, 1, NULL); }
static void signal_wait(signal_t *s) { WaitForSingleObject(*s, INFINITE); }
static void give_up_processor(void) { SwitchToThread(); }
static DWORD WINAPI thread_main(LPVOID unused) {
  (void)unused;
  thread_fn();
  return 0;
}
static int thread_start(thread_t *t, void (*f)(void)) {
  thread_fn = f;
  *t = CreateThread(NULL, 0, thread_main, NULL, 0, NULL);
  return *t != NULL;
}
static void thread_join(thread_t t) {
  WaitForSingleObject(t, INFINITE);
  CloseHandle(t);
}
#else
typedef pthread_t thread_t;
typedef sem_t signal_t;
static void signal_init(signal_t *s) { sem_init(s, 0, 0); }
static void signal_post(signal_t *s) { sem_post(s); }
static void signal_wait(signal_t *s) {
  while (sem_wait(s) != 0) {}
}
static void give_up_processor(void) { sched_yield(); }
static void *thread_main(void *unused) {
  (void)unused;
  thread_fn();
  return NULL;
}
static int thread_start(thread_t *t, void (*f)(void)) {
  thread_fn = f;
  return pthread_create(t, NULL, thread_main, NULL) == 0;
}
static void thread_join(thread_t t) { pthread_join(t, NULL); }
#endif

/* {=== the spin lock ===} */
static imalloc_spinlock lock = IMALLOC_SPINLOCK_INIT;
static imalloc_atomic_int pauses;  /* turns that found the lock taken */
/* What happened first in the other thread, &waited (a turn that found
** the lock taken) or &took (it returned from imalloc_spin_lock); `news` is
** posted for each. */
static imalloc_atomic_ptr first;
static signal_t news;
static char waited, took;

static void paused(void) {
  if (imalloc_atomic_add(&pauses, 1) == 1) {
    imalloc_atomic_replaceptr(&first, NULL, &waited);
    signal_post(&news);
  }
  give_up_processor();
}

static void contender(void) {
  imalloc_spin_lock(&lock);
  imalloc_atomic_replaceptr(&first, NULL, &took);
  signal_post(&news);
  imalloc_spin_unlock(&lock);
}

static void test_spinlock(void) {
  thread_t t;
  /* a free lock is taken at once, again after it is let go */
  imalloc_spin_lock(&lock);
  CHECK(imalloc_atomic_get(&pauses) == 0);
  imalloc_spin_unlock(&lock);
  imalloc_spin_lock(&lock);
  CHECK(imalloc_atomic_get(&pauses) == 0);
  /* held here: another thread waits for it, and takes it once let go */
  signal_init(&news);
  if (!thread_start(&t, contender)) {
    CHECK(!"a thread");
    return;
  }
  signal_wait(&news);
  CHECK(imalloc_atomic_getptr(&first) == &waited);
  imalloc_spin_unlock(&lock);
  thread_join(t);
  CHECK(imalloc_atomic_get(&pauses) >= 1);
  /* and let it go: taken here at once */
  imalloc_atomic_set(&pauses, 0);
  imalloc_spin_lock(&lock);
  CHECK(imalloc_atomic_get(&pauses) == 0);
  imalloc_spin_unlock(&lock);
}

/* {=== the atomics ===} */
static void test_atomics(void) {
  static imalloc_atomic_int n;
  static imalloc_atomic_ptr p;
  int x, y;
  imalloc_atomic_set(&n, 5);
  CHECK(imalloc_atomic_get(&n) == 5);
  CHECK(imalloc_atomic_add(&n, 3) == 8);  /* the new value */
  CHECK(imalloc_atomic_add(&n, -10) == -2);
  CHECK(imalloc_atomic_get(&n) == -2);
  imalloc_atomic_setptr(&p, &x);
  CHECK(imalloc_atomic_getptr(&p) == &x);
  imalloc_atomic_replaceptr(&p, &y, NULL);  /* holds &x, not &y: kept */
  CHECK(imalloc_atomic_getptr(&p) == &x);
  imalloc_atomic_replaceptr(&p, &x, &y);
  CHECK(imalloc_atomic_getptr(&p) == &y);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  test_atomics();
  test_spinlock();
  return check_report();
}
