/*
** os.c: the allocator's only calls to the system's memory functions
** (mmap, munmap, madvise, mremap). See internal.h.
*/
#define _GNU_SOURCE  /* mremap */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif

size_t ta_page = 4096;
_Atomic size_t ta_mapped;
_Atomic size_t ta_meta;

void *ta_os_map(size_t len) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void ta_os_unmap(void *p, size_t len) {
  if (len) munmap(p, len);
}

/* len bytes (a multiple of the page size, at most MAX_ALLOC rounded up:
** len + CHUNK_SIZE cannot wrap) at a CHUNK_SIZE-aligned address below
** 2^48: map len + CHUNK_SIZE and trim both ends. The head is empty when
** the system's answer is aligned already; the tail never is (base - raw
** is less than CHUNK_SIZE). */
void *ta_os_map_aligned(size_t len) {
  size_t total = len + CHUNK_SIZE;
  uintptr_t raw, base;
  char *p = ta_os_map(total);
  if (!p) return NULL;
  raw = (uintptr_t)p;
  base = (raw + CHUNK_SIZE - 1) & ~(CHUNK_SIZE - 1);
  if (base > raw) munmap(p, base - raw);
  munmap((void *)(base + len), raw + total - (base + len));
  if (((base + len - 1) >> VA_BITS) != 0) {  /* the table cannot cover it */
    munmap((void *)base, len);
    return NULL;
  }
  return (void *)base;
}

/* Gives the pages of [p, p + len) back (len > 0); the range stays mapped
** and reads as zeros afterwards. DONTNEED rather than FREE: the memory
** leaves the process's RSS at once, and a chunk's slots must read as 0
** either way. */
void ta_os_purge(void *p, size_t len) {
  madvise(p, len, MADV_DONTNEED);
}

/* Grows the mapping [p, p + len) to newlen bytes where it is: 1 if done,
** 0 if the pages after it are taken (or the system cannot). */
int ta_os_grow(void *p, size_t len, size_t newlen) {
#if defined(__linux__) && defined(MREMAP_MAYMOVE)
  return mremap(p, len, newlen, 0) != MAP_FAILED;
#else
  (void)p, (void)len, (void)newlen;
  return 0;
#endif
}

#if defined(__linux__) && defined(MREMAP_FIXED)
/* Moves [p, p + len) over [to, to + len) when the range spans several of
** the kernel's mappings, which one mremap cannot move (EFAULT): a block
** whose pages came from several kept mappings (large.c) is such a range.
** The pieces are found by halving; a piece that still cannot move is
** copied and unmapped, so that the move always completes. */
static void move_pieces(char *p, size_t len, char *to) {
  size_t half;
  if (mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to) != MAP_FAILED)
    return;
  if (errno == EFAULT && len > ta_page) {
    half = (len / 2) & ~(ta_page - 1);
    move_pieces(p, half, to);
    move_pieces(p + half, len - half, to + half);
    return;
  }
  memcpy(to, p, len);
  munmap(p, len);
}
#endif

/* Moves the pages of the mapping [p, p + len) to `to`, a mapping of newlen
** bytes that it replaces, without copying them (but a piece move_pieces
** cannot move): 1 if done (p's range is then unmapped), 0 if not (nothing
** changed). */
int ta_os_move(void *p, size_t len, void *to, size_t newlen) {
#if defined(__linux__) && defined(MREMAP_FIXED)
  if (mremap(p, len, newlen, MREMAP_MAYMOVE | MREMAP_FIXED, to) != MAP_FAILED)
    return 1;
  if (errno != EFAULT) return 0;
  move_pieces(p, len, to);  /* `to` keeps its pages past len */
  return 1;
#else
  (void)p, (void)len, (void)to, (void)newlen;
  return 0;
#endif
}
