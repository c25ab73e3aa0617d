/*
** init.c: process start-up (once, on the first call that needs it) and
** fork handling: the locks every subsystem takes around fork(). See
** internal.h for the design.
*/
#include "internal.h"

#include <unistd.h>

/* ---- fork ---------------------------------------------------------------
** A fork from a multithreaded process must not leave a lock held by a thread
** that does not exist in the child: all are taken around fork (in the order
** the code nests them). The child re-initialises them, as glibc's malloc
** does, because a recursive mutex may only be unlocked by its owner's TID,
** which the child does not have. */

static void fork_prepare(void) {
  ta_spy_lock();
  ta_registry_lock();
  ta_chunk_lock_all();
  ta_large_lock();
}

static void fork_parent(void) {
  ta_large_unlock();
  ta_chunk_unlock_all();
  ta_registry_unlock();
  ta_spy_unlock();
}

static void fork_child(void) {
  ta_large_reinit();
  ta_chunk_reinit_locks();
  ta_registry_reinit();
  ta_spy_reinit();
}

/* ---- start-up ------------------------------------------------------------ */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void global_init(void) {
  /* POSIX requires _SC_PAGESIZE: sysconf always answers it */
  ta_page = (size_t)sysconf(_SC_PAGESIZE);
  ta_classes_init();
  ta_tc_key_create();
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void ta_init(void) {
  pthread_once(&g_once, global_init);
}
