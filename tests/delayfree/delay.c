/*
** tests/delayfree/delay.c: TEST-ONLY. A built-in allocator that delays
** frees as Wine's heap does under WINEDEBUG=warn+heap, so that the record
** of freed blocks (src/freed.c), which acts only on such heaps, runs and
** is tested natively (the delayfree-* tests, the mutation runner's
** delayfree configuration). Linked into the allocator, with
** -DIMALLOC_DELAY_FREES=N on src/taskalloc/alloc.c, only by a build
** configured with -DIMALLOC_DELAY_FREES=ON; never into the module users get.
**
** Free (and Realloc(p, 0), and the old block of a Realloc that moves it)
** of a small block keeps it aside, live in the allocator's books, with the
** spy's mark taken off (a spy sees a Free when it is called, as ole32's
** does; the delay sits under it, as the heap does under ole32): DidAlloc
** answers 1 for it, GetSize -1 (as Wine's HeapSize fails on it), Free and
** Realloc refuse it. The N-th free after it frees it for good. Blocks
** mapped on their own (above 64 KiB here) are freed at once, as Wine frees
** its large blocks.
*/
#include <pthread.h>

#include "taskalloc/internal.h"

TA_HIDDEN int ta_delay_free(void *p);
TA_HIDDEN int ta_delay_has(void *p);
TA_HIDDEN void ta_free_now(void *p);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *ring[IMALLOC_DELAY_FREES];
static size_t next;

static int has(const void *p) {
  size_t i;
  for (i = 0; i < IMALLOC_DELAY_FREES; i++)
    if (ring[i] == p) return 1;
  return 0;
}

int ta_delay_has(void *p) {
  int r;
  if (p == NULL) return 0;
  pthread_mutex_lock(&lock);
  r = has(p);
  pthread_mutex_unlock(&lock);
  return r;
}

/* Free(p): 1 when p is delayed (now, or already: a second free is
** ignored), 0 when the allocator is to free it at once. */
int ta_delay_free(void *p) {
  uintptr_t u = (uintptr_t)p, e = table_get(u);
  _Atomic uint32_t *slot;
  void *out;
  if (!e || (e & E_LARGE)) return 0;
  slot = small_slot(e, u);
  if (!slot) return 0;
  pthread_mutex_lock(&lock);
  if (has(p)) {
    pthread_mutex_unlock(&lock);
    return 1;
  }
  if (!slot_live(atomic_load_explicit(slot, RLX), e)) {
    pthread_mutex_unlock(&lock);
    return 0;
  }
  /* no longer a block of the spy's: a pending revoke may complete */
  if (atomic_fetch_and_explicit(slot, ~SLOT_SPY, RLX) & SLOT_SPY)
    atomic_fetch_sub_explicit(&ta_spied, 1, RLX);
  out = ring[next];
  ring[next] = p;
  next = (next + 1) % IMALLOC_DELAY_FREES;
  pthread_mutex_unlock(&lock);
  if (out != NULL) ta_free_now(out);
  return 1;
}
