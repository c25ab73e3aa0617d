/*
** platform.h: the atomics and thread-local storage of the Lua binding.
**
** MSVC's default C mode has neither <stdatomic.h> nor _Thread_local, and
** LuaRocks' builtin backend passes no flag to ask for C11. So on Windows
** these are the Interlocked functions and fiber-local slots, which every
** Windows compiler has; elsewhere, C11. The binding uses only
** what is here, so its files build as C99 on Windows and stay free of
** #ifdef _WIN32.
*/
#ifndef IMALLOC_PLATFORM_H
#define IMALLOC_PLATFORM_H

#include "com_abi.h"

#ifdef _WIN32

/* Whether the task allocator's heap may keep a freed block answering
** DidAlloc 1 for a while (Wine's heap checking, Windows' page heap):
** freed.h keeps its record only where it may. The built-in allocator
** frees at once. */
#define IMALLOC_HEAP_MAY_DELAY_FREES 1

/* An int shared between threads. LONG is 32-bit on every Windows. */
typedef volatile LONG imalloc_atomic_int;

/* A relaxed load: an aligned 32-bit read is atomic on every processor
** Windows runs on, and volatile keeps the compiler from caching it. */
static inline int imalloc_atomic_get(imalloc_atomic_int *a) {
  return (int)*a;
}

static inline void imalloc_atomic_set(imalloc_atomic_int *a, int v) {
  InterlockedExchange(a, (LONG)v);
}

/* Adds `d` and returns the new value (a full barrier). */
static inline int imalloc_atomic_add(imalloc_atomic_int *a, int d) {
  return (int)(InterlockedExchangeAdd(a, (LONG)d) + d);
}

/* A pointer shared between threads; loads and stores are relaxed (aligned
** pointer-sized accesses are atomic on Windows' processors). */
typedef void *volatile imalloc_atomic_ptr;

static inline void *imalloc_atomic_getptr(imalloc_atomic_ptr *a) {
  return *a;
}

static inline void imalloc_atomic_setptr(imalloc_atomic_ptr *a, void *v) {
  *a = v;
}

/* Sets `a` to `desired` if it holds `expected`. */
static inline void imalloc_atomic_replaceptr(imalloc_atomic_ptr *a,
                                             void *expected, void *desired) {
  InterlockedCompareExchangePointer(a, desired, expected);
}

/* A spin lock, for critical sections of a few dozen instructions. On each
** turn that finds it taken: a pause for the processor, or what a test
** defines first, to see a wait without timing it (tests/c/platform_h.c). */
typedef volatile LONG imalloc_spinlock;
#define IMALLOC_SPINLOCK_INIT 0
#ifndef IMALLOC_SPIN_PAUSE
#define IMALLOC_SPIN_PAUSE() YieldProcessor()
#endif

static inline void imalloc_spin_lock(imalloc_spinlock *l) {
  while (InterlockedExchange(l, 1) != 0) IMALLOC_SPIN_PAUSE();
}

static inline void imalloc_spin_unlock(imalloc_spinlock *l) {
  InterlockedExchange(l, 0);
}

/* IMALLOC_THREAD_STATE(type, name) defines `static type *name(void)`: this
** thread's `type`, zeroed at first use. Here it lives in the C heap, in a
** fiber-local slot whose callback frees it when the thread ends: mingw-w64
** gcc emulates __thread through libgcc's DLL, which a module built with
** LuaRocks' default flags would then need beside it. Should the heap refuse
** the few bytes, the threads share one: the allocator serialises the spy's
** calls, so only a tag may go to the wrong block. */
typedef struct imalloc_threadslot {
  INIT_ONCE once;
  DWORD index;
} imalloc_threadslot;

static inline VOID WINAPI imalloc_threadslot_free(PVOID p) {
  HeapFree(GetProcessHeap(), 0, p);
}

static inline BOOL CALLBACK imalloc_threadslot_make(PINIT_ONCE once, PVOID slot,
                                             PVOID *ctx) {
  (void)once;
  (void)ctx;
  ((imalloc_threadslot *)slot)->index = FlsAlloc(imalloc_threadslot_free);
  return TRUE;
}

static inline void *imalloc_threadslot_get(imalloc_threadslot *slot, size_t size,
                                    void *shared) {
  void *p = NULL;
  InitOnceExecuteOnce(&slot->once, imalloc_threadslot_make, slot, NULL);
  if (slot->index == FLS_OUT_OF_INDEXES) return shared;
  p = FlsGetValue(slot->index);
  if (p == NULL) {
    p = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, size);
    if (p == NULL || !FlsSetValue(slot->index, p)) {
      if (p != NULL) HeapFree(GetProcessHeap(), 0, p);
      return shared;
    }
  }
  return p;
}

#define IMALLOC_THREAD_STATE(type, name)                                   \
  static imalloc_threadslot name##_slot = {INIT_ONCE_STATIC_INIT,         \
                                           FLS_OUT_OF_INDEXES};           \
  static type name##_shared;                                              \
  static type *name(void) {                                               \
    return (type *)imalloc_threadslot_get(&name##_slot, sizeof(type),     \
                                          &name##_shared);                \
  }

#else /* C11 */

#include <stdatomic.h>

/* The built-in allocator frees at once. A test build may say otherwise
** (-DIMALLOC_DELAY_FREES=ON: tests/delayfree/delay.c makes the built-in
** allocator delay frees as Wine's checking heap does, and the POSIX
** backend then probes it), so that freed.c runs natively as on Windows. */
#ifndef IMALLOC_HEAP_MAY_DELAY_FREES
#define IMALLOC_HEAP_MAY_DELAY_FREES 0
#endif

typedef atomic_int imalloc_atomic_int;

static inline int imalloc_atomic_get(imalloc_atomic_int *a) {
  return atomic_load_explicit(a, memory_order_relaxed);
}

static inline void imalloc_atomic_set(imalloc_atomic_int *a, int v) {
  atomic_store(a, v);
}

static inline int imalloc_atomic_add(imalloc_atomic_int *a, int d) {
  return atomic_fetch_add(a, d) + d;
}

typedef _Atomic(void *) imalloc_atomic_ptr;

static inline void *imalloc_atomic_getptr(imalloc_atomic_ptr *a) {
  return atomic_load_explicit(a, memory_order_relaxed);
}

static inline void imalloc_atomic_setptr(imalloc_atomic_ptr *a, void *v) {
  atomic_store_explicit(a, v, memory_order_relaxed);
}

static inline void imalloc_atomic_replaceptr(imalloc_atomic_ptr *a,
                                             void *expected, void *desired) {
  atomic_compare_exchange_strong(a, &expected, desired);
}

typedef atomic_flag imalloc_spinlock;
#define IMALLOC_SPINLOCK_INIT ATOMIC_FLAG_INIT
#ifndef IMALLOC_SPIN_PAUSE
#define IMALLOC_SPIN_PAUSE() ((void)0)
#endif

static inline void imalloc_spin_lock(imalloc_spinlock *l) {
  while (atomic_flag_test_and_set_explicit(l, memory_order_acquire))
    IMALLOC_SPIN_PAUSE();
}

static inline void imalloc_spin_unlock(imalloc_spinlock *l) {
  atomic_flag_clear_explicit(l, memory_order_release);
}

/* IMALLOC_THREAD_STATE(type, name): `static type *name(void)`, this
** thread's `type`, zeroed (the Windows side says why it is a function). */
#define IMALLOC_THREAD_STATE(type, name)                                   \
  static _Thread_local type name##_value;                                 \
  static type *name(void) { return &name##_value; }

#endif /* _WIN32 */

#endif
