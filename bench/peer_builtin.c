/*
** peer_builtin.c: imalloc's built-in task allocator (src/taskalloc.h):
** CoTaskMem* for blocks, the IMalloc's HeapMinimize to give memory back.
*/
#include "peer.h"
#include "taskalloc.h"

const char peer_name[] = "built-in";

static IMalloc *g_malloc;

int peer_init(void) {
  return imalloc_CoGetMalloc(MEMCTX_TASK, &g_malloc) == S_OK ? 0 : -1;
}

void *peer_alloc(size_t size) { return imalloc_CoTaskMemAlloc(size); }
void *peer_realloc(void *p, size_t size) {
  return imalloc_CoTaskMemRealloc(p, size);
}
void peer_free(void *p) { imalloc_CoTaskMemFree(p); }
void peer_minimize(void) { g_malloc->lpVtbl->HeapMinimize(g_malloc); }
