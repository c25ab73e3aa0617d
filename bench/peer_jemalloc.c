/*
** peer_jemalloc.c: jemalloc. Debian builds it without a prefix: its
** malloc, free and realloc take the place of glibc's in a program linked
** with it, which peer_init checks. Memory goes back with the thread
** cache's flush and a purge of every arena.
*/
#include <stdio.h>
#include <stdlib.h>
#include <jemalloc/jemalloc.h>

#include "peer.h"

const char peer_name[] = "jemalloc";

int peer_init(void) {
  /* The bytes this thread has allocated, by jemalloc's own count: they
  ** grow only if malloc is jemalloc's. */
  unsigned long long before = 0, after = 0;
  size_t len = sizeof before;
  void *volatile p;  /* volatile: the compiler may not elide the pair */
  if (mallctl("thread.allocated", &before, &len, NULL, 0) != 0) {
    fprintf(stderr, "jemalloc: mallctl(thread.allocated) failed\n");
    return -1;
  }
  p = malloc(1000);
  len = sizeof after;
  mallctl("thread.allocated", &after, &len, NULL, 0);
  free(p);
  if (after - before < 1000) {
    fprintf(stderr, "jemalloc: malloc is not jemalloc's in this process\n");
    return -1;
  }
  return 0;
}

void *peer_alloc(size_t size) { return malloc(size); }
void *peer_realloc(void *p, size_t size) { return realloc(p, size); }
void peer_free(void *p) { free(p); }

void peer_minimize(void) {
  char purge[64];
  mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
  snprintf(purge, sizeof purge, "arena.%u.purge", (unsigned)MALLCTL_ARENAS_ALL);
  mallctl(purge, NULL, NULL, NULL, 0);
}
