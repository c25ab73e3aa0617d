/*
** radix.c: the table from address >> 20 to its owner (internal.h).
** An entry is 0 (not ours), a chunk address with its class, or a large
** block's head or continuation entry. Leaves are mapped on first use and
** never freed, so a lookup (table_get, inline) never faults.
*/
#include "internal.h"

_Atomic(tentry *) ta_top[(size_t)1 << TOP_BITS];

int ta_table_set(uintptr_t u, uintptr_t v) {
  _Atomic(tentry *) *top = &ta_top[u >> (CHUNK_SHIFT + LEAF_BITS)];
  tentry *leaf = atomic_load_explicit(top, ACQ);
  if (!leaf) {
    tentry *fresh, *expect = NULL;
    if (!v) return 1;
    fresh = ta_os_map(LEAF_LEN * sizeof(tentry));
    if (!fresh) return 0;
    if (atomic_compare_exchange_strong_explicit(top, &expect, fresh,
                                                memory_order_acq_rel, ACQ)) {
      leaf = fresh;
      atomic_fetch_add_explicit(&ta_mapped, LEAF_LEN * sizeof(tentry), RLX);
      atomic_fetch_add_explicit(&ta_meta, LEAF_LEN * sizeof(tentry), RLX);
    } else {  /* another thread mapped it first */
      ta_os_unmap(fresh, LEAF_LEN * sizeof(tentry));
      leaf = expect;
    }
  }
  atomic_store_explicit(&leaf[(u >> CHUNK_SHIFT) & (LEAF_LEN - 1)], v, REL);
  return 1;
}

/* Clears the entries of every 1 MiB region that [base, base + len)
** touches; a region whose leaf was never mapped already reads 0. */
void ta_table_clear(uintptr_t base, size_t len) {
  uintptr_t r;
  for (r = base; r < base + len; r += CHUNK_SIZE) ta_table_set(r, 0);
}
