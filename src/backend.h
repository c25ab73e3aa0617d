/*
** backend.h: what the Lua binding asks of the platform.
**
** One file implements it per platform: backend_win32.c (ole32.dll, loaded at
** run time) and backend_posix.c (the built-in task allocator, taskalloc/).
** The binding calls only these and then goes through the COM vtable, so its
** method bodies are the same on every platform.
*/
#ifndef IMALLOC_BACKEND_H
#define IMALLOC_BACKEND_H

#include "com_abi.h"

/* CoGetMalloc. `out` is never NULL. Returns the HRESULT; when ole32.dll
** cannot be loaded, the Win32 error as an HRESULT. */
IMALLOC_HIDDEN HRESULT imalloc_backend_getmalloc(DWORD context, IMalloc **out);

/* CoRegisterMallocSpy / CoRevokeMallocSpy. Once a spy is registered, this
** module stays loaded for the rest of the process: the allocator calls the
** spy's code from any thread, also after every Lua state is closed. */
IMALLOC_HIDDEN HRESULT imalloc_backend_registerspy(IMallocSpy *spy);
IMALLOC_HIDDEN HRESULT imalloc_backend_revokespy(void);

/* Whether `p` can be called through as a COM interface. Its first word
** and the vtable it points to must be readable, and by default the
** vtable must lie in a loaded image (a PT_LOAD segment of a loaded ELF
** object on POSIX; MEM_IMAGE memory on Windows) and each of its first
** `nslots` (1 to 16) entries must point into executable code of a loaded
** image (a PF_X segment; MEM_IMAGE with an execute protection). With
** IMALLOC_WRAP_FFI in `flags`, the vtable may be any readable memory and a
** slot may point into any executable memory (an FFI's callbacks), as the
** system reports it (/proc/self/maps on Linux, VirtualQuery on Windows).
** It guards imalloc.wrap against the pointers a script can hold or make
** (a memory block, live or freed, and whatever it wrote into one: no
** script can write into an image or make memory executable), without ever
** reading an unmapped address; it is not a proof that `p` is an IMalloc. */
#define IMALLOC_WRAP_FFI 1
IMALLOC_HIDDEN int imalloc_backend_isinterface(const void *p, int nslots,
                                               int flags);

/* "ole32" or "builtin": what imalloc.backend reports. */
IMALLOC_HIDDEN extern const char imalloc_backend_name[];

#endif
