/*
** peer_glibc.c: glibc's malloc; malloc_trim(0) gives memory back.
*/
#define _GNU_SOURCE  /* malloc_trim */
#include <malloc.h>
#include <stdlib.h>

#include "peer.h"

const char peer_name[] = "glibc";

int peer_init(void) { return 0; }
void *peer_alloc(size_t size) { return malloc(size); }
void *peer_realloc(void *p, size_t size) { return realloc(p, size); }
void peer_free(void *p) { free(p); }
void peer_minimize(void) { malloc_trim(0); }
