/*
** peer.h: one allocator, as the scenarios (scenarios.c) see it.
**
** Each allocator compared in bench/alloc-run implements these in a file of
** its own (peer_builtin.c, peer_glibc.c, peer_mimalloc.c, peer_jemalloc.c)
** and is linked with scenarios.c into a program of its own, so every
** allocator runs in a process of its own.
*/
#ifndef IMALLOC_BENCH_PEER_H
#define IMALLOC_BENCH_PEER_H

#include <stddef.h>

extern const char peer_name[];

/* Called once before any scenario: looks the allocator up, and checks that
** the calls below really reach it (a missing interposition would measure
** another allocator). Returns 0, or prints why and returns -1. */
int peer_init(void);

void *peer_alloc(size_t size);
void *peer_realloc(void *p, size_t size);
void peer_free(void *p);

/* Gives back to the system all it can: HeapMinimize, malloc_trim(0),
** mi_collect(true), or an arena purge. */
void peer_minimize(void);

#endif
