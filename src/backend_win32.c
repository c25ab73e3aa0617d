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

/* What VirtualQuery says of the region at `p`: whether it is committed
** memory of the given kinds, with one of the protections `prot`, and not a
** guard page (whose first touch raises). `image`: only a loaded image's
** (MEM_IMAGE: an EXE or DLL mapped by the loader), never memory a script
** could have written. Sets *end to where the region ends. */
static int region(const void *p, DWORD prot, int image, uintptr_t *end) {
  MEMORY_BASIC_INFORMATION mbi;
  if (VirtualQuery(p, &mbi, sizeof mbi) == 0 || mbi.State != MEM_COMMIT ||
      (mbi.Protect & PAGE_GUARD) || !(mbi.Protect & prot) ||
      (image && mbi.Type != MEM_IMAGE))
    return 0;
  *end = (uintptr_t)mbi.BaseAddress + mbi.RegionSize;
  return 1;
}

#define READABLE (PAGE_READONLY | PAGE_READWRITE | PAGE_WRITECOPY | \
                  PAGE_EXECUTE_READ | PAGE_EXECUTE_READWRITE |       \
                  PAGE_EXECUTE_WRITECOPY)
#define EXECUTABLE (PAGE_EXECUTE | PAGE_EXECUTE_READ |               \
                    PAGE_EXECUTE_READWRITE | PAGE_EXECUTE_WRITECOPY)

/* Whether [p, p + n) is readable (and of an image, with `image`), by
** asking the kernel rather than touching it, region by region: a vtable
** may straddle two sections of different protections. */
static int readable(const void *p, size_t n, int image) {
  uintptr_t at = (uintptr_t)p, last = at + n - 1, end;
  if (last < at) return 0;  /* wraps around the address space */
  while (region((const void *)at, READABLE, image, &end)) {
    if (end == 0 || end > last) return 1;  /* 0: the region ends at the top */
    at = end;
  }
  return 0;
}

int imalloc_backend_isinterface(const void *p, int nslots, int flags) {
  /* by default only what a loaded image holds; with IMALLOC_WRAP_FFI, what
  ** an FFI builds at run time too (a vtable in the heap, callbacks in
  ** executable pages of its own) */
  int image = !(flags & IMALLOC_WRAP_FFI);
  void *const *vtbl;
  uintptr_t end;
  int i;
  if (!readable(p, sizeof(void *), 0)) return 0;
  vtbl = *(void *const *const *)p;
  if (vtbl == NULL || !readable(vtbl, (size_t)nslots * sizeof(void *), image))
    return 0;
  for (i = 0; i < nslots; i++)
    if (!region(vtbl[i], EXECUTABLE, image, &end)) return 0;
  return 1;
}
