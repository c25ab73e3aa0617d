/*
** taskalloc_classes.c: the size class of every small request, as the
** Alloc fast path computes it (internal.h's size_class, a table up to
** 1024 bytes): the smallest class whose blocks hold n bytes (+ 1 under a
** spy), for every n from 0 to the largest small size. And the class that
** Alloc takes, with and without a spy: the table's entry of each block
** names that class, and the first size past the small ones is a large
** block.
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#include "check.h"
#include "client.h"
#include "fake_com.h"
#include "taskalloc/internal.h"

/* Alloc of every n up to the largest small size (less the spy's byte):
** how many blocks were not of size_class(n + pad), and whether the next
** size is a large block. */
static size_t wrong_classes(unsigned pad, int *large_next) {
  size_t n, wrong = 0;
  void *p;
  for (n = 0; n <= SMALL_MAX - pad; n++) {
    uintptr_t e;
    p = ALLOC(n);
    e = table_get((uintptr_t)p);
    if (!p || (e & E_LARGE) || entry_class(e) != size_class(n + pad)) {
      if (wrong++ < 5) printf("# Alloc(%zu), pad %u: entry %#lx\n", n, pad,
                              (unsigned long)e);
    }
    FREE(p);
  }
  p = ALLOC(n);
  *large_next = p && (table_get((uintptr_t)p) & E_LARGE) &&
                !((uintptr_t)p & (CHUNK_SIZE - 1));
  FREE(p);
  return wrong;
}

int main(void) {
  size_t n, wrong = 0;
  if (imalloc_CoGetMalloc(1, &m) != S_OK) {
    printf("FAIL: no allocator\n0 passed, 1 failed\n");
    return 1;
  }
  FREE(ALLOC(1));  /* the classes' geometry is set up at first use */
  for (n = 0; n <= SMALL_MAX; n++) {
    unsigned c = size_class(n);
    size_t need = n ? n : 1;
    if (c >= NCLASS || ta_geom[c].bsize < need ||
        (c > 0 && ta_geom[c - 1].bsize >= need)) {
      if (wrong++ < 5) printf("# size %zu: class %u\n", n, c);
    }
  }
  CHECK(wrong == 0);
  CHECK(size_class(0) == 0 && size_class(16) == 0 && size_class(17) == 1);
  CHECK(ta_geom[size_class(1024)].bsize == 1024);
  CHECK(ta_geom[size_class(1025)].bsize > 1024);
  {
    int large_next = 0;
    CHECK(wrong_classes(0, &large_next) == 0 && large_next);
    CHECK(imalloc_CoRegisterMallocSpy(fake_pass_spy()) == S_OK);
    large_next = 0;
    CHECK(wrong_classes(1, &large_next) == 0 && large_next);
    CHECK(imalloc_CoRevokeMallocSpy() == S_OK);
  }
  return check_report();
}
