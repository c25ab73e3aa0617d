/*
** taskalloc.h: imalloc's built-in COM task allocator (POSIX).
**
** The same binary interface as ole32's CoGetMalloc / CoTaskMem* /
** Co(Register|Revoke)MallocSpy, under names prefixed imalloc_ so that they
** cannot clash with Wine, .NET's PAL or another COM shim in the process.
** Blocks from the IMalloc and from CoTaskMem* mix freely.
**
** Guarantees beyond COM's:
**  - thread-safe, callable from any thread, no initialisation call;
**  - DidAlloc, GetSize, Free and Realloc never read memory the allocator
**    does not own, whatever the address: a pointer that is not the start of
**    a live block of ours is ignored (Free), answers 0 (DidAlloc),
**    (SIZE_T)-1 (GetSize) or NULL (Realloc), and nothing is corrupted;
**  - a double Free is a no-op, even when two threads race on it;
**  - every block is 16-aligned; GetSize is the exact size requested;
**  - a request that cannot be served returns NULL (never aborts).
*/
#ifndef IMALLOC_TASKALLOC_H
#define IMALLOC_TASKALLOC_H

#include "com_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A snapshot; exact when no other thread is inside the allocator. */
struct imalloc_taskstats {
  size_t live_blocks;     /* blocks allocated and not yet freed */
  size_t live_bytes;      /* sum of their requested sizes */
  size_t mapped_bytes;    /* address space held from the OS (mmap) */
  size_t metadata_bytes;  /* of which bookkeeping: chunk headers, size
                          ** slots, lookup table leaves */
  size_t bookkeeping_bytes_per_block; /* 4: a block of up to 64 KiB has a
                          ** 4-byte size slot (its chunk's header adds
                          ** 0.001 to 0.1 byte, 5 in the 64 KiB class).
                          ** A larger block costs 8: it has no descriptor,
                          ** its size and state are its 8-byte lookup
                          ** table entry (and it has one more 8-byte
                          ** entry per further MiB it spans) */
  size_t spied_blocks;    /* live blocks allocated under an IMallocSpy */
};

/* context 1 (MEMCTX_TASK): S_OK and the process-wide singleton.
** Other contexts: E_INVALIDARG and *out = NULL. out == NULL: E_POINTER. */
IMALLOC_EXPORT HRESULT imalloc_CoGetMalloc(DWORD context, IMalloc **out);

IMALLOC_EXPORT void *imalloc_CoTaskMemAlloc(SIZE_T cb);
IMALLOC_EXPORT void *imalloc_CoTaskMemRealloc(void *p, SIZE_T cb);
IMALLOC_EXPORT void imalloc_CoTaskMemFree(void *p);

/* One spy per process, as in ole32: S_OK, CO_E_OBJISREG (one is already
** registered, or a revoke of it is pending), E_INVALIDARG (NULL, or the
** spy does not answer QueryInterface(IID_IMallocSpy)). */
IMALLOC_EXPORT HRESULT imalloc_CoRegisterMallocSpy(IMallocSpy *spy);
/* S_OK; CO_E_OBJNOTREG when no spy is registered; E_ACCESSDENIED when
** blocks allocated under the spy are still live: the revoke is then
** pending and completes (the spy is released) when the last is freed. */
IMALLOC_EXPORT HRESULT imalloc_CoRevokeMallocSpy(void);

IMALLOC_EXPORT void imalloc_taskalloc_stats(struct imalloc_taskstats *out);

#ifdef __cplusplus
}
#endif

#endif
