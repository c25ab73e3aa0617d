/*
** backend_win32.c: the task allocator of ole32.dll.
**
** ole32 is loaded at run time, so that the module links against nothing
** but the Lua DLL and the system's kernel32. COM is never initialised:
** CoGetMalloc needs no apartment, and initialising COM as a side effect of
** `require` would change the calling thread for everyone else.
*/
#include "backend.h"
#include "freed.h"

const char imalloc_backend_name[] = "ole32";

static INIT_ONCE ole32_once = INIT_ONCE_STATIC_INIT;
static DWORD ole32_error;  /* GetLastError() of a failed load, else 0 */
static imalloc_CoGetMalloc_fn get_malloc;
static imalloc_CoRegisterMallocSpy_fn register_spy;
static imalloc_CoRevokeMallocSpy_fn revoke_spy;

/* Casting FARPROC to a typed function pointer goes through void (*)(void)
** to keep -Wcast-function-type quiet: the types are right by contract. */
typedef void (*any_fn)(void);

static BOOL CALLBACK load_ole32(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  /* Never freed: blocks and interfaces handed out by ole32 may outlive every
  ** Lua state, and finalizers may run late at shutdown. */
  HMODULE ole32 = LoadLibraryW(L"ole32.dll");
  (void)once; (void)param; (void)ctx;
  if (ole32 == NULL) {
    ole32_error = GetLastError();
    return TRUE;
  }
  get_malloc = (imalloc_CoGetMalloc_fn)(any_fn)
      GetProcAddress(ole32, "CoGetMalloc");
  register_spy = (imalloc_CoRegisterMallocSpy_fn)(any_fn)
      GetProcAddress(ole32, "CoRegisterMallocSpy");
  revoke_spy = (imalloc_CoRevokeMallocSpy_fn)(any_fn)
      GetProcAddress(ole32, "CoRevokeMallocSpy");
  if (get_malloc == NULL) {
    ole32_error = GetLastError();
  } else {
    /* Whether the heap delays frees (freed.c): asked once, before any
    ** spy of this module can be registered. */
    IMalloc *m = NULL;
    if (get_malloc(MEMCTX_TASK, &m) >= 0 && m != NULL) {
      imalloc_freed_probe(m);
      m->lpVtbl->Release(m);
    }
  }
  return TRUE;
}

static HRESULT ensure_ole32(void) {
  InitOnceExecuteOnce(&ole32_once, load_ole32, NULL, NULL);
  return ole32_error ? HRESULT_FROM_WIN32(ole32_error) : S_OK;
}

HRESULT imalloc_backend_getmalloc(DWORD context, IMalloc **out) {
  HRESULT hr = ensure_ole32();
  *out = NULL;
  if (FAILED(hr)) return hr;
  return get_malloc(context, out);
}

HRESULT imalloc_backend_registerspy(IMallocSpy *spy) {
  HRESULT hr = ensure_ole32();
  HMODULE self;
  if (FAILED(hr)) return hr;
  hr = register_spy ? register_spy(spy) : E_NOTIMPL;
  /* Lua unloads C modules in lua_close; ole32 would go on calling the spy
  ** in an unmapped DLL. Pinned, this module is never unloaded. */
  if (SUCCEEDED(hr))
    GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                       GET_MODULE_HANDLE_EX_FLAG_PIN,
                       (LPCWSTR)(const void *)imalloc_backend_name, &self);
  return hr;
}

HRESULT imalloc_backend_revokespy(void) {
  HRESULT hr = ensure_ole32();
  if (FAILED(hr)) return hr;
  return revoke_spy ? revoke_spy() : E_NOTIMPL;
}

/* Whether [p, p + n) is committed, readable memory, by asking the kernel
** rather than touching it. */
static int readable(const void *p, size_t n) {
  MEMORY_BASIC_INFORMATION mbi;
  const DWORD rd = PAGE_READONLY | PAGE_READWRITE | PAGE_WRITECOPY |
                   PAGE_EXECUTE_READ | PAGE_EXECUTE_READWRITE |
                   PAGE_EXECUTE_WRITECOPY;
  if (VirtualQuery(p, &mbi, sizeof mbi) == 0 || mbi.State != MEM_COMMIT ||
      (mbi.Protect & PAGE_GUARD) || !(mbi.Protect & rd))
    return 0;
  return (uintptr_t)p + n <= (uintptr_t)mbi.BaseAddress + mbi.RegionSize;
}

static int executable(const void *p) {
  MEMORY_BASIC_INFORMATION mbi;
  const DWORD ex = PAGE_EXECUTE | PAGE_EXECUTE_READ | PAGE_EXECUTE_READWRITE |
                   PAGE_EXECUTE_WRITECOPY;
  return VirtualQuery(p, &mbi, sizeof mbi) != 0 && mbi.State == MEM_COMMIT &&
         (mbi.Protect & ex) != 0;
}

int imalloc_backend_isinterface(const void *p, int nslots) {
  void *const *vtbl;
  int i;
  if (!readable(p, sizeof(void *))) return 0;
  vtbl = *(void *const *const *)p;
  if (vtbl == NULL || !readable(vtbl, (size_t)nslots * sizeof(void *)))
    return 0;
  for (i = 0; i < nslots; i++)
    if (!executable(vtbl[i])) return 0;
  return 1;
}
