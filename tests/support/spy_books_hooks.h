/*
** spy_books_hooks.h: read before the first line of src/spy_books.c when it is
** compiled for c-spy-books (tests/c/CMakeLists.txt). Its calls to the
** C heap and to its spin lock then go to tests/c/spy_books.c, which counts
** the heap's blocks and bytes, refuses them on demand, fills what realloc
** adds with a pattern, and counts a lock released while it was not held (a
** lock that a critical section forgot to take). Its imalloc_spy_settagtext
** is renamed, so that the test's, which counts the binding's tags, stands
** between the binding and it.
*/
#ifndef IMALLOC_SPY_BOOKS_HOOKS_H
#define IMALLOC_SPY_BOOKS_HOOKS_H

#include <stdlib.h>

#include "platform.h"

void *spy_books_calloc(size_t n, size_t size);
void *spy_books_realloc(void *p, size_t size);
void spy_books_free(void *p);
void spy_books_lock(imalloc_spinlock *l);
void spy_books_unlock(imalloc_spinlock *l);
struct IMalloc;
void spy_books_settagtext(const char *where, struct IMalloc *m);

#define calloc spy_books_calloc
#define realloc spy_books_realloc
#define free spy_books_free
#define imalloc_spin_lock spy_books_lock
#define imalloc_spin_unlock spy_books_unlock
#define imalloc_spy_settagtext spy_books_settagtext

#endif
