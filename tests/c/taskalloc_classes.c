/*
** taskalloc_classes.c: the size class of every small request, as the
** Alloc fast path computes it (internal.h's size_class, a table up to
** 1024 bytes): the smallest class whose blocks hold n bytes (+ 1 under a
** spy), for every n from 0 to the largest small size.
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#include "check.h"
#include "client.h"
#include "taskalloc/internal.h"

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
  return check_report();
}
