/*
** peer_mimalloc.c: mimalloc through its own names (mi_*), which stay
** mimalloc's whatever the process's malloc is; mi_collect(true) gives
** memory back.
*/
#include <mimalloc.h>

#include "peer.h"

const char peer_name[] = "mimalloc";

int peer_init(void) { return 0; }
void *peer_alloc(size_t size) { return mi_malloc(size); }
void *peer_realloc(void *p, size_t size) { return mi_realloc(p, size); }
void peer_free(void *p) { mi_free(p); }
void peer_minimize(void) { mi_collect(true); }
