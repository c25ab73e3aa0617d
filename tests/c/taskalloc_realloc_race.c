/*
** taskalloc_realloc_race.c: a Realloc that moves a block while another
** thread frees the block, the free landing after the Realloc found the
** block live and before it claims it (while it takes the new block): a
** large block reallocated to a small size, and a small block to a larger
** class. The race is made deterministic: this program defines
** pthread_mutex_lock (calling the C library's), and the reallocating
** thread stops in the first one it takes after it was told to (its new
** class's lock, for the refill of the new block's bin) until the main
** thread has freed the block (and, in one case, its chunk has gone to
** another class).
**
** The Realloc then finds the block gone and gives back the new block: it
** returns NULL and nothing stays counted as live; the block freed is not
** handed out twice. Prints "N passed, N failed"; exits non-zero on a
** failure.
*/
#define _GNU_SOURCE  /* RTLD_NEXT */
#include "check.h"
#include "client.h"

#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>

typedef int (*mutex_fn)(pthread_mutex_t *);

static _Thread_local int stop_at_next_lock;
static sem_t at_lock, go_on;

int pthread_mutex_lock(pthread_mutex_t *mx) {
  static mutex_fn f;
  if (!f) *(void **)&f = dlsym(RTLD_NEXT, "pthread_mutex_lock");
  if (!f) abort();
  if (stop_at_next_lock) {
    stop_at_next_lock = 0;
    sem_post(&at_lock);
    while (sem_wait(&go_on) != 0) {
    }
  }
  return f(mx);
}

struct job {
  void *p, *got;
  size_t n;  /* the size it is reallocated to */
  int warm;  /* the thread's cache was set up */
};

static void *reallocator(void *arg) {
  struct job *j = arg;
  void *w = ALLOC(32);  /* the cache set up, another class than n's */
  j->warm = w != NULL;
  stop_at_next_lock = 1;
  j->got = REALLOC(j->p, j->n);
  stop_at_next_lock = 0;
  FREE(w);
  return NULL;
}

/* Starts the Realloc of p to n in a thread and waits until it stops
** while it takes the new block; 0 if the thread could not start. */
static int start(struct job *j, pthread_t *t, void *p, size_t n) {
  j->p = p;
  j->got = NULL;
  j->n = n;
  j->warm = 0;
  if (!p || pthread_create(t, NULL, reallocator, j) != 0) return 0;
  while (sem_wait(&at_lock) != 0) {
  }
  return 1;
}

/* Lets it go on and waits for its end: 1 if it gave up (NULL). */
static int gave_up(struct job *j, pthread_t t) {
  sem_post(&go_on);
  return pthread_join(t, NULL) == 0 && j->warm && j->got == NULL;
}

/* Reallocates p to n in a thread that stops while it takes the new
** block, frees p meanwhile; then checks that the Realloc gave up. */
static void race(void *p, size_t n) {
  pthread_t t;
  struct job j;
  size_t live = live_blocks();
  CHECK(start(&j, &t, p, n));
  if (!j.p) return;
  FREE(p);  /* while the Realloc takes its new block */
  CHECK(DIDALLOC(p) == 0);
  CHECK(gave_up(&j, t));  /* the block was gone: nothing moved */
  CHECK(live_blocks() == live - 1);
  /* the allocator still hands out and takes back blocks of that class */
  {
    void *q = ALLOC(n);
    CHECK(q != NULL && GETSIZE(q) == n && DIDALLOC(q) == 1);
    FREE(q);
    CHECK(live_blocks() == live - 1);
  }
}

/* The same, and meanwhile the block's chunk, empty once the block is
** freed and HeapMinimize has emptied this thread's cache, is taken by
** another class, whose blocks fill it: the slot the Realloc found for
** its block is now that of a live block of the other class, which the
** Realloc must leave alone (internal.h: a slot counts only when its class
** is the one the table gave). Runs first, while this thread holds no
** other chunk that the new class could take. */
enum { NZ = 300 };
static void race_class_change(void) {
  static unsigned char *z[NZ];
  pthread_t t;
  struct job j;
  unsigned char *p = ALLOC(640);
  uintptr_t chunk = (uintptr_t)p & ~(((uintptr_t)1 << 20) - 1);
  int i, in_chunk = 0, ok = 1;
  CHECK(start(&j, &t, p, 3000));
  if (!j.p) return;
  FREE(p);
  m->lpVtbl->HeapMinimize(m);  /* the chunk empty: to the pool */
  for (i = 0; i < NZ; i++) {
    z[i] = ALLOC(48);
    if (!z[i]) ok = 0;
    else in_chunk += ((uintptr_t)z[i] & ~(((uintptr_t)1 << 20) - 1)) == chunk;
  }
  CHECK(ok && in_chunk == NZ);  /* the other class took that chunk */
  CHECK(gave_up(&j, t));
  for (i = 0; i < NZ; i++) {
    if (z[i] && (DIDALLOC(z[i]) != 1 || GETSIZE(z[i]) != 48)) ok = 0;
    FREE(z[i]);
  }
  CHECK(ok);
  CHECK(live_blocks() == 0);
}

int main(void) {
  void *a, *b;
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (imalloc_CoGetMalloc(1, &m) != S_OK || sem_init(&at_lock, 0, 0) != 0 ||
      sem_init(&go_on, 0, 0) != 0) {
    printf("FAIL: no allocator\n0 passed, 1 failed\n");
    return 1;
  }
  race_class_change();
  race(ALLOC(200000), 100);  /* a large block */
  race(ALLOC(100), 3000);    /* a small one, to another class */
  /* the small block went back once: two blocks of its class are two */
  a = ALLOC(100);
  b = ALLOC(100);
  CHECK(a != NULL && b != NULL && a != b);
  FREE(a);
  FREE(b);
  return check_report();
}
