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

/* Whether `p` can be called through as a COM interface: its first word and
** the vtable it points to can be read, and the vtable's first `nslots`
** entries point into loaded code. It guards imalloc.wrap against the
** pointers a script can hold by mistake (a memory block, live or freed),
** without ever reading an unmapped address; it is not a proof. */
IMALLOC_HIDDEN int imalloc_backend_isinterface(const void *p, int nslots);

/* "ole32" or "builtin": what imalloc.backend reports. */
IMALLOC_HIDDEN extern const char imalloc_backend_name[];

#endif
