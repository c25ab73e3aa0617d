/*
** spy_books_hooks.h: read before the first line of src/spy_books.c when it is
** compiled for c-spy-books (tests/c/CMakeLists.txt). Its calls to the
** C heap and to its spin lock then go to spy_books.c, which counts the
** heap's blocks, refuses them on demand, and counts a lock released while
** it was not held (a lock that a critical section forgot to take).
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

#define calloc spy_books_calloc
#define realloc spy_books_realloc
#define free spy_books_free
#define imalloc_spin_lock spy_books_lock
#define imalloc_spin_unlock spy_books_unlock

#endif
