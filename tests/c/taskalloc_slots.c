/*
** taskalloc_slots.c: two properties of the size slots that no answer of
** the allocator shows, only its speed across cores and per call:
**
** - where a block's slot lies (internal.h's slot_ix): the slots of 16
**   consecutive blocks of a chunk lie in 16 different cache lines, and a
**   block's slot stays within its group of 256 slots (a page of slots
**   for a page's worth of blocks), each slot of the group used once;
** - the one compare of Free's fast path (slot_mine, against the word of
**   this thread's bin of the entry's class): true for the slot of every
**   live block of every class this thread handed out when no spy is
**   registered, false for a spied block (Free must then tell the spy), a
**   freed block and a block read through another class's entry; slot_live,
**   the full check, true for a live block spied or not.
**
** A wrong layout or a compare that never matches leaves every answer the
** same (Free takes its slower path, which checks in full): these checks
** are what tells. Prints "N passed, N failed"; exits non-zero on a failure.
*/
#include "check.h"
#include "client.h"
#include "fake_com.h"
#include "taskalloc/internal.h"

/* 64 bytes: the cache line of the CPUs this allocator is tuned for. */
#define LINE_OF(a) ((uintptr_t)(a) >> 6)

/* How many groups of 16 consecutive blocks, in the first 4096 blocks of
** chunk c, have two slots in one cache line. */
static unsigned shared_lines(uintptr_t c) {
  uint64_t g, i, j;
  unsigned bad = 0;
  for (g = 0; g < 4096; g += 16) {
    int clash = 0;
    for (i = 0; i < 16 && !clash; i++)
      for (j = 0; j < i && !clash; j++)
        clash = LINE_OF(block_slot(c, g + i)) == LINE_OF(block_slot(c, g + j));
    bad += (unsigned)clash;
  }
  return bad;
}

/* How many of the first 16 groups of 256 blocks do not map onto their own
** 256 slots, each once. */
static unsigned bad_groups(void) {
  uint64_t g, i;
  unsigned bad = 0;
  for (g = 0; g < 16 * 256; g += 256) {
    unsigned char seen[256] = {0};
    int ok = 1;
    for (i = 0; i < 256; i++) {
      uint32_t s = slot_ix(g + i);
      if (s < g || s >= g + 256 || seen[s - g]++) ok = 0;
    }
    bad += (unsigned)!ok;
  }
  return bad;
}

/* For a block of every class (less pad bytes, the spy's): whether its
** slot matches Free's one compare, and slot_live; counts of each. */
/* Free's one compare for slot word w read through entry e, in this
** thread. */
static int fast_match(uint32_t w, uintptr_t e) {
  return slot_mine(w, ta_self->bins[entry_class(e)].word);
}

static void compare_all(unsigned pad, unsigned *fast, unsigned *live,
                        unsigned *classes) {
  unsigned c;
  *fast = *live = *classes = 0;
  for (c = 0; c < NCLASS; c++) {
    size_t n = ta_geom[c].bsize - pad;
    void *p = ALLOC(n);
    uintptr_t e = p ? table_get((uintptr_t)p) : 0;
    _Atomic uint32_t *s = e && !(e & E_LARGE) ? small_slot(e, (uintptr_t)p)
                                              : NULL;
    if (s != NULL && entry_class(e) == c) {
      uint32_t w = atomic_load(s);
      uintptr_t other = (e & ~E_CLS) | ((uintptr_t)((c + 1) % NCLASS)
                                        << E_CLS_SHIFT);
      (*classes)++;
      *fast += (unsigned)fast_match(w, e);
      *live += (unsigned)slot_live(w, e);
      /* another class's entry never matches, spied or not */
      if (fast_match(w, other) || slot_live(w, other)) (*classes)--;
    }
    FREE(p);
    /* freed: its slot is 0 */
    if (s != NULL && (fast_match(atomic_load(s), e) ||
                      slot_live(atomic_load(s), e)))
      (*live)--;
  }
}

int main(void) {
  unsigned fast, live, classes;
  void *p;
  uintptr_t c;
  if (!client_open()) return 1;
  p = ALLOC(48);
  CHECK(p != NULL);
  c = (uintptr_t)p & ~(CHUNK_SIZE - 1);
  CHECK(shared_lines(c) == 0);
  CHECK(bad_groups() == 0);
  FREE(p);

  compare_all(0, &fast, &live, &classes);
  CHECK(classes == NCLASS);
  CHECK(fast == NCLASS);  /* unspied: the one compare matches */
  CHECK(live == NCLASS);
  CHECK(imalloc_CoRegisterMallocSpy(fake_pass_spy()) == S_OK);
  compare_all(1, &fast, &live, &classes);
  CHECK(classes == NCLASS);
  CHECK(fast == 0);  /* spied: Free must take the spy's path */
  CHECK(live == NCLASS);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK);
  return check_report();
}
