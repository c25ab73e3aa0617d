/*
** taskalloc_locks.c: every lock the built-in allocator releases is one it
** holds. This program defines pthread_mutex_lock, _trylock, _unlock and
** _init itself (calling the C library's) and keeps a table of which thread
** holds which mutex; it then drives each of the allocator's locks from one
** thread at a time: the classes' and the pool's (small blocks, empty
** chunks given back, HeapMinimize, a chunk whose table leaf the system
** refused, mmap defined by the test too), the large-block cache's, the
** thread registry's (a thread's first call and its exit, statistics), two
** shards' (an ended thread's chunk taken over), the spy's, and all of
** them around fork.
**
** A lock the allocator forgot to take shows up as the release of a mutex
** this thread does not hold: no second thread and no timing are needed to
** see it, where a race on the data behind that lock would need both. A
** release it forgot shows up as a mutex still held once a call returned
** (or as the next lock's deadlock, which the test's timeout ends).
**
** It also defines pthread_mutexattr_init, _settype and _destroy: every
** mutex is made (pthread_mutex_init) before it is first taken, from an
** attribute object that was initialised and is destroyed afterwards (a
** mutex made after it was taken was taken before it was made: where a
** zeroed mutex is no unlocked one, that is a lock of garbage). The spy's
** lock, the one made recursive, is taken by nothing but the spy's calls:
** without a spy no call takes it, and HeapMinimize under a spy takes the
** locks it takes without one, once, and the spy's. The mode fork-first
** forks before any call of the spy's API (the fork handlers make the
** spy's lock); without it, the first such call is a revoke of no spy.
** And an Alloc and a Free that the thread's cache serves take no lock,
** also after another thread's HeapMinimize.
**
** Under ThreadSanitizer the table is left out: its runtime follows these
** same functions and checks every lock itself. Prints "N passed, N
** failed"; exits non-zero on a failure.
*/
#define _GNU_SOURCE  /* RTLD_NEXT */
#include "check.h"
#include "client.h"
#include "fake_com.h"
#include "interpose.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define LOCK_TABLE 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LOCK_TABLE 0
#endif
#endif
#ifndef LOCK_TABLE
#define LOCK_TABLE 1
#endif

#define MiB ((size_t)1 << 20)

static _Atomic int bad_unlocks;  /* releases of a mutex not held */

#if LOCK_TABLE
/* ---- who holds what ----------------------------------------------------- */

enum { HOLDS = 256 };
static struct { pthread_mutex_t *mx; pthread_t owner; } holds[HOLDS];
static atomic_flag table_busy = ATOMIC_FLAG_INIT;

static void table_lock(void) {
  while (atomic_flag_test_and_set_explicit(&table_busy, memory_order_acquire)) {
  }
}

static void table_unlock(void) {
  atomic_flag_clear_explicit(&table_busy, memory_order_release);
}

static void note_held(pthread_mutex_t *mx) {
  int i;
  table_lock();
  for (i = 0; i < HOLDS && holds[i].mx; i++) {
  }
  if (i < HOLDS) {
    holds[i].mx = mx;
    holds[i].owner = pthread_self();
  }
  table_unlock();
}

/* Forgets that this thread holds mx; 0 if it did not. */
static int note_released(pthread_mutex_t *mx) {
  int i, found = 0;
  table_lock();
  for (i = 0; i < HOLDS; i++) {
    if (holds[i].mx == mx && pthread_equal(holds[i].owner, pthread_self())) {
      holds[i].mx = NULL;
      found = 1;
      break;
    }
  }
  table_unlock();
  return found;
}

static void forget(pthread_mutex_t *mx) {
  int i;
  table_lock();
  for (i = 0; i < HOLDS; i++)
    if (holds[i].mx == mx) holds[i].mx = NULL;
  table_unlock();
}

/* ---- how the mutexes are made ------------------------------------------ */

enum { ATTRS = 8, SEEN = 4096 };
static pthread_mutexattr_t *attrs[ATTRS];  /* initialised, not destroyed */
static int attr_types[ATTRS];
static _Atomic int bad_attrs;   /* an attribute object used or destroyed
                                ** that was not initialised */
static pthread_mutex_t *seen[SEEN];  /* every mutex taken so far */
static _Atomic int late_inits;  /* pthread_mutex_init of a mutex taken
                                ** before */
static pthread_mutex_t *_Atomic spy_lock;  /* the recursive one */
static _Atomic long takes, spy_takes;      /* successful locks */

static size_t seen_at(pthread_mutex_t *mx) {
  size_t i = ((uintptr_t)mx >> 3) % SEEN;
  while (seen[i] && seen[i] != mx) i = (i + 1) % SEEN;
  return i;
}

static void note_taken(pthread_mutex_t *mx) {
  table_lock();
  seen[seen_at(mx)] = mx;
  table_unlock();
  atomic_fetch_add(&takes, 1);
  if (mx == atomic_load(&spy_lock)) atomic_fetch_add(&spy_takes, 1);
}

/* The slot of a in attrs (NULL: a free one), or -1. */
static int attr_at(const pthread_mutexattr_t *a) {
  int i;
  for (i = 0; i < ATTRS; i++)
    if (attrs[i] == a) return i;
  return -1;
}

/* Takes the table's lock (the caller lets it go) and returns the slot of
** the attribute object a, or -1, counted in bad_attrs, if a was not
** initialised. */
static int attr_use(const pthread_mutexattr_t *a) {
  int i;
  table_lock();
  i = attr_at(a);
  if (i < 0) atomic_fetch_add(&bad_attrs, 1);
  return i;
}

static int attrs_live(void) {
  int i, n = 0;
  table_lock();
  for (i = 0; i < ATTRS; i++) n += attrs[i] != NULL;
  table_unlock();
  return n;
}

/* How many mutexes this thread holds. */
static int held_here(void) {
  int i, n = 0;
  table_lock();
  for (i = 0; i < HOLDS; i++)
    if (holds[i].mx && pthread_equal(holds[i].owner, pthread_self())) n++;
  table_unlock();
  return n;
}

/* ---- the C library's functions, counted --------------------------------- */

typedef int (*mutex_fn)(pthread_mutex_t *);

static mutex_fn real(const char *name) {
  mutex_fn f;
  *(void **)&f = dlsym(RTLD_NEXT, name);
  if (!f) abort();
  return f;
}

/* lock and trylock: the C library's, then noted when it took the mutex. */
static int take(mutex_fn f, pthread_mutex_t *mx) {
  int r = f(mx);
  if (r == 0) {
    note_held(mx);
    note_taken(mx);
  }
  return r;
}

int pthread_mutex_lock(pthread_mutex_t *mx) {
  static mutex_fn f;
  if (!f) f = real("pthread_mutex_lock");
  return take(f, mx);
}

int pthread_mutex_trylock(pthread_mutex_t *mx) {
  static mutex_fn f;
  if (!f) f = real("pthread_mutex_trylock");
  return take(f, mx);
}

int pthread_mutex_unlock(pthread_mutex_t *mx) {
  static mutex_fn f;
  if (!f) f = real("pthread_mutex_unlock");
  if (!note_released(mx)) {
    atomic_fetch_add(&bad_unlocks, 1);
    return 0;  /* what a correct program never does: leave the mutex be */
  }
  return f(mx);
}

/* After fork the child makes its locks anew: none is held then (the
** child's are made after they were taken: only the parent counts
** late_inits). */
int pthread_mutex_init(pthread_mutex_t *mx, const pthread_mutexattr_t *a) {
  static int (*f)(pthread_mutex_t *, const pthread_mutexattr_t *);
  int i;
  INTERPOSE_NEXT(f, "pthread_mutex_init");
  forget(mx);
  if (a) {
    i = attr_use(a);
  } else {
    table_lock();
    i = -1;
  }
  if (seen[seen_at(mx)] == mx) atomic_fetch_add(&late_inits, 1);
  if (i >= 0 && attr_types[i] == PTHREAD_MUTEX_RECURSIVE)
    atomic_store(&spy_lock, mx);
  table_unlock();
  return f(mx, a);
}

int pthread_mutexattr_init(pthread_mutexattr_t *a) {
  static int (*f)(pthread_mutexattr_t *);
  int i;
  INTERPOSE_NEXT(f, "pthread_mutexattr_init");
  table_lock();
  i = attr_at(NULL);
  if (i >= 0) {
    attrs[i] = a;
    attr_types[i] = PTHREAD_MUTEX_DEFAULT;
  }
  table_unlock();
  return f(a);
}

int pthread_mutexattr_settype(pthread_mutexattr_t *a, int type) {
  static int (*f)(pthread_mutexattr_t *, int);
  int i;
  INTERPOSE_NEXT(f, "pthread_mutexattr_settype");
  i = attr_use(a);
  if (i >= 0) attr_types[i] = type;
  table_unlock();
  return f(a, type);
}

int pthread_mutexattr_destroy(pthread_mutexattr_t *a) {
  static int (*f)(pthread_mutexattr_t *);
  int i;
  INTERPOSE_NEXT(f, "pthread_mutexattr_destroy");
  i = attr_use(a);
  if (i >= 0) attrs[i] = NULL;
  table_unlock();
  return f(a);
}

/* Every mutex made before it was taken, from attributes initialised and
** destroyed: in the parent, after any call. */
static int locks_made_first(void) {
  return atomic_load(&late_inits) == 0 && atomic_load(&bad_attrs) == 0 &&
         attrs_live() == 0;
}
#else
static int held_here(void) { return 0; }
#endif

/* mmap refuses the next table leaf (its only mapping of 131072 bytes). */
static _Atomic int refuse_leaf;

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  static void *(*f)(void *, size_t, int, int, int, off_t);
  INTERPOSE_NEXT(f, "mmap");
  if (len == 131072 && atomic_exchange(&refuse_leaf, 0)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  return f(addr, len, prot, flags, fd, off);
}

/* After each call: nothing released that was not held, nothing held. */
static int locks_balanced(void) {
  return atomic_load(&bad_unlocks) == 0 && held_here() == 0;
}

/* ---- the allocator's locks, one thread at a time ------------------------ */

/* The first chunk's table leaf refused (so the first block too): the
** chunk goes to the pool under the pool's lock. */
static void leaf_refused(void) {
  atomic_store(&refuse_leaf, 1);
  CHECK(ALLOC(100) == NULL);
  CHECK(atomic_load(&refuse_leaf) == 0);
  CHECK(locks_balanced());
}

/* Small blocks of several classes: each class's lock (refills, flushes),
** the pool's when a chunk is taken and when an empty one comes back (with
** IMALLOC_RETAIN=0, given back to the system at once: the pool's lock is
** let go and taken again around that). */
static void small_blocks(void) {
  static void *p[3000];
  size_t sizes[] = {16, 48, 128, 1000, 4000, 60000};
  size_t i, k;
  for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t n = sizes[k] >= 4000 ? 300 : 3000;
    for (i = 0; i < n; i++) p[i] = ALLOC(sizes[k]);
    for (i = 0; i < n; i++) CHECK(p[i] != NULL && GETSIZE(p[i]) == sizes[k]);
    for (i = 0; i < n; i++) FREE(p[i]);
    CHECK(locks_balanced());
  }
  m->lpVtbl->HeapMinimize(m);
  CHECK(locks_balanced());
}

/* The large-block cache's lock: a block cached on Free and taken again,
** Realloc, HeapMinimize's drain, statistics. */
static void large_blocks(void) {
  void *a = ALLOC(3 * MiB), *b;
  CHECK(a != NULL);
  FREE(a);
  b = ALLOC(2 * MiB);
  CHECK(b != NULL);
  b = REALLOC(b, 5 * MiB);
  CHECK(b != NULL && GETSIZE(b) == 5 * MiB);
  b = REALLOC(b, MiB + 1);
  CHECK(b != NULL && DIDALLOC(b) == 1);
  FREE(b);
  CHECK(locks_balanced());
  (void)stats();
  m->lpVtbl->HeapMinimize(m);
  CHECK(locks_balanced());
}

/* The registry's lock: a thread's first call puts its cache in, its exit
** takes it out; statistics read it. */
static int worker_ok;

static void *worker(void *arg) {
  void *p[100];
  int i;
  (void)arg;
  for (i = 0; i < 100; i++) p[i] = ALLOC(32 + (size_t)i);
  for (i = 0; i < 100; i++) FREE(p[i]);
  p[0] = ALLOC(2 * MiB);
  FREE(p[0]);
  worker_ok = locks_balanced();
  return NULL;
}

static void registry(void) {
  pthread_t t;
  CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0 && worker_ok);
  CHECK(locks_balanced());
  CHECK(live_blocks() == 0);
  CHECK(locks_balanced());
}

/* Two shards' locks at once: a chunk of an ended thread, with no free
** block (its one block live), taken over by this thread's first block of
** the class. */
static void *one_block(void *arg) {
  (void)arg;
  return ALLOC(16000);
}

static void two_shards(void) {
  pthread_t t;
  void *theirs = NULL, *mine;
  CHECK(pthread_create(&t, NULL, one_block, NULL) == 0);
  CHECK(pthread_join(t, &theirs) == 0 && theirs != NULL);
  mine = ALLOC(16000);
  CHECK(mine != NULL);
  CHECK(((uintptr_t)mine & ~(MiB - 1)) == ((uintptr_t)theirs & ~(MiB - 1)));
  CHECK(locks_balanced());
  FREE(mine);
  FREE(theirs);
  CHECK(locks_balanced());
}

/* The spy's lock (under fake_pass_spy, which changes nothing): register, every call under the spy, a revoke left
** pending by a live block and completed by its Free, a revoke of none. */
static void spy(void) {
  void *p;
  CHECK(imalloc_CoRevokeMallocSpy() == CO_E_OBJNOTREG);
  CHECK(imalloc_CoRegisterMallocSpy(fake_pass_spy()) == S_OK);
  CHECK(locks_balanced());
  p = ALLOC(40);
  CHECK(p != NULL && GETSIZE(p) == 40 && DIDALLOC(p) == 1);
  p = REALLOC(p, 4000);
  CHECK(p != NULL);
  m->lpVtbl->HeapMinimize(m);
  CHECK(imalloc_CoRevokeMallocSpy() == E_ACCESSDENIED);
  CHECK(locks_balanced());
  FREE(p);
  CHECK(imalloc_CoRevokeMallocSpy() == CO_E_OBJNOTREG);
  CHECK(locks_balanced());
}

#if LOCK_TABLE
/* Without a spy no call takes the spy's lock; HeapMinimize under a spy
** takes what it takes without one, once, and the spy's lock. */
static void spy_lock_alone(void) {
  void *p, *q;
  long n, plain, spied;
  CHECK(atomic_load(&spy_lock) != NULL);
  n = atomic_load(&spy_takes);
  p = ALLOC(40);
  q = imalloc_CoTaskMemAlloc(3 * MiB);
  CHECK(p != NULL && q != NULL);
  p = REALLOC(p, 30);
  q = imalloc_CoTaskMemRealloc(q, 2 * MiB);
  CHECK(p != NULL && q != NULL && GETSIZE(p) == 30 && DIDALLOC(q) == 1);
  FREE(p);
  imalloc_CoTaskMemFree(q);
  m->lpVtbl->HeapMinimize(m);
  CHECK(atomic_load(&spy_takes) == n);
  n = atomic_load(&takes);
  m->lpVtbl->HeapMinimize(m);
  plain = atomic_load(&takes) - n;
  CHECK(imalloc_CoRegisterMallocSpy(fake_pass_spy()) == S_OK);
  n = atomic_load(&takes);
  m->lpVtbl->HeapMinimize(m);
  spied = atomic_load(&takes) - n;
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK);
  printf("HeapMinimize took %ld locks, %ld under a spy\n", plain, spied);
  CHECK(spied == plain + 1);
  CHECK(locks_balanced());
}

/* Another thread's HeapMinimize reaches this thread's cache on its next
** call that misses the cache (docs/windows.md): an Alloc and a Free that
** its bin serves take no lock. */
static void *minimize(void *arg) {
  (void)arg;
  m->lpVtbl->HeapMinimize(m);
  return NULL;
}

static void minimize_elsewhere(void) {
  void *p = ALLOC(40), *q;
  pthread_t t;
  long n;
  FREE(p);  /* into this thread's bin */
  CHECK(pthread_create(&t, NULL, minimize, NULL) == 0 &&
        pthread_join(t, NULL) == 0);
  n = atomic_load(&takes);
  q = ALLOC(40);
  FREE(q);
  CHECK(q == p && atomic_load(&takes) == n);
  CHECK(locks_balanced());
}
#endif

/* Fork takes every lock before and lets them go after, in both processes
** (the child makes them anew); the child must then allocate. */
static void around_fork(void) {
  int status = -1;
  pid_t pid = fork();
  if (pid == 0) {
    void *p = ALLOC(100), *q = ALLOC(2 * MiB);
    int ok = p && q && locks_balanced();
    FREE(p);
    FREE(q);
    check_child_exit(ok && locks_balanced() ? 0 : 1);
  }
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(locks_balanced());
}

int main(int argc, char **argv) {
  int fork_first = argc > 1 && !strcmp(argv[1], "fork-first");
  /* Before the allocator's first call, which reads it. */
  setenv("IMALLOC_RETAIN", "0", 1);
  CHECK(imalloc_CoGetMalloc(1, &m) == S_OK);
  CHECK(locks_balanced());
  leaf_refused();
  small_blocks();
  if (fork_first) around_fork();
  large_blocks();
  registry();
  two_shards();
  spy();
  if (!fork_first) around_fork();
#if LOCK_TABLE
  spy_lock_alone();
  minimize_elsewhere();
  CHECK(locks_made_first());
#else
  printf("lock table: left out under ThreadSanitizer, which checks the locks\n");
#endif
  m->lpVtbl->Release(m);
  return check_report();
}
