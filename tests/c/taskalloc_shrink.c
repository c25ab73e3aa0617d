/*
** taskalloc_shrink.c: a Realloc to a smaller size of a block up to 64 KiB.
** It stays where it is while the block is still used well: always in the
** classes up to 128 bytes, above them while more than a quarter of the
** block is still asked for. Below that it moves to a smaller block, so
** that three quarters of its block are not left stranded; either way the
** bytes are kept.
** A Realloc to the size the block already has stays where it is. The
** live bytes of the statistics follow the new size either way.
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#include "check.h"
#include "client.h"

#include <string.h>

/* Realloc of a block of `from` bytes (whose class holds exactly `from`)
** to n: whether it stayed in place, -1 on a failure, lost bytes or live
** bytes not counted as n. */
static int stays(size_t from, size_t n) {
  unsigned char *p = ALLOC(from), *q;
  size_t bytes = stats().live_bytes;
  int in_place;
  if (!p) return -1;
  fill(p, from, 3);
  q = REALLOC(p, n);
  if (!q) {
    FREE(p);
    return -1;
  }
  in_place = q == p;
  if (GETSIZE(q) != n || !is_pattern(q, n, 3) || DIDALLOC(q) != 1 ||
      (!in_place && DIDALLOC(p) != 0) || stats().live_bytes != bytes - from + n)
    in_place = -1;
  FREE(q);
  return in_place;
}

int main(void) {
  if (!client_open()) return 1;
  /* up to 128 bytes: in place, down to 1 byte */
  CHECK(stays(128, 1) == 1);
  CHECK(stays(16, 1) == 1);
  CHECK(stays(112, 100) == 1);
  /* above: in place down to just over a quarter of the block */
  CHECK(stays(1024, 1000) == 1);
  CHECK(stays(1024, 257) == 1);
  CHECK(stays(1024, 256) == 0);
  CHECK(stays(1024, 205) == 0);
  CHECK(stays(1024, 1) == 0);
  CHECK(stays(160, 41) == 1);
  CHECK(stays(160, 40) == 0);
  CHECK(stays(65536, 16385) == 1);
  CHECK(stays(65536, 16384) == 0);
  /* to the size it has, which fills its block */
  CHECK(stays(128, 128) == 1);
  CHECK(stays(1024, 1024) == 1);
  CHECK(stays(65536, 65536) == 1);
  CHECK(live_blocks() == 0 && stats().live_bytes == 0);
  return check_report();
}
