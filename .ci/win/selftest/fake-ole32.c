/*
** fake-ole32.c: an ole32.dll for the test wine-fake-ole32
** (selftest/fake-ole32.sh), which puts it beside lua.exe, where Windows
** looks for a DLL first, and tells Wine to load it instead of its own; and
** for wine-module-pin (selftest/module-pin.sh: FAKE_SPY_FAILS, beside its
** host).
** It stands for an ole32 that the backend (src/backend_win32.c) must not
** trust blindly:
**   FAKE_NULL_MALLOC  CoGetMalloc succeeds and hands out no object, and
**                     there is no CoRegisterMallocSpy or CoRevokeMallocSpy;
**   FAKE_MALLOC       CoGetMalloc hands out a working IMalloc over the
**                     process heap that counts its references and its
**                     Allocs; with FAKE_SPY_FAILS, CoRegisterMallocSpy and
**                     CoRevokeMallocSpy exist and fail (E_OUTOFMEMORY),
**                     without it they do not exist;
**   otherwise         none of the three exists.
** The counts go to the file named by FAKE_OLE32_COUNTS, rewritten after
** each change as "refs R allocs A getmallocs G" (refs: those held by
** others than the DLL itself), for fake-ole32.lua to read.
*/
/* Lean: no <objbase.h>, which declares the real CoGetMalloc as imported. */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#ifdef FAKE_MALLOC
typedef struct FakeMalloc FakeMalloc;
typedef struct {
  HRESULT (__stdcall *QueryInterface)(FakeMalloc *, const void *, void **);
  ULONG (__stdcall *AddRef)(FakeMalloc *);
  ULONG (__stdcall *Release)(FakeMalloc *);
  void *(__stdcall *Alloc)(FakeMalloc *, SIZE_T);
  void *(__stdcall *Realloc)(FakeMalloc *, void *, SIZE_T);
  void (__stdcall *Free)(FakeMalloc *, void *);
  SIZE_T (__stdcall *GetSize)(FakeMalloc *, void *);
  int (__stdcall *DidAlloc)(FakeMalloc *, void *);
  void (__stdcall *HeapMinimize)(FakeMalloc *);
} FakeMallocVtbl;
struct FakeMalloc { const FakeMallocVtbl *lpVtbl; };

static LONG refs, allocs, getmallocs;

/* "refs R allocs A getmallocs G\n" into FAKE_OLE32_COUNTS, if set. */
static void put_number(char **at, LONG v) {
  char digits[16];
  int n = 0;
  if (v < 0) { *(*at)++ = '-'; v = -v; }
  do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v > 0);
  while (n > 0) *(*at)++ = digits[--n];
}
static void put_text(char **at, const char *s) {
  while (*s) *(*at)++ = *s++;
}
static void write_counts(void) {
  char path[MAX_PATH], text[96], *at = text;
  DWORD n = GetEnvironmentVariableA("FAKE_OLE32_COUNTS", path, sizeof path);
  HANDLE f;
  if (n == 0 || n >= sizeof path) return;
  put_text(&at, "refs ");
  put_number(&at, refs);
  put_text(&at, " allocs ");
  put_number(&at, allocs);
  put_text(&at, " getmallocs ");
  put_number(&at, getmallocs);
  put_text(&at, "\n");
  f = CreateFileA(path, GENERIC_WRITE, FILE_SHARE_READ, NULL, CREATE_ALWAYS,
                  FILE_ATTRIBUTE_NORMAL, NULL);
  if (f == INVALID_HANDLE_VALUE) return;
  WriteFile(f, text, (DWORD)(at - text), &n, NULL);
  CloseHandle(f);
}

static HRESULT __stdcall fm_qi(FakeMalloc *self, const void *iid, void **out) {
  (void)self; (void)iid;
  *out = NULL;
  return (HRESULT)0x80004002L;  /* E_NOINTERFACE */
}
static ULONG __stdcall fm_addref(FakeMalloc *self) {
  (void)self;
  refs++;
  write_counts();
  return (ULONG)refs + 1;
}
static ULONG __stdcall fm_release(FakeMalloc *self) {
  (void)self;
  refs--;
  write_counts();
  return (ULONG)refs + 1;  /* never 0: the DLL holds its own */
}
static void *__stdcall fm_alloc(FakeMalloc *self, SIZE_T n) {
  (void)self;
  allocs++;
  write_counts();
  return HeapAlloc(GetProcessHeap(), 0, n ? n : 1);
}
static void *__stdcall fm_realloc(FakeMalloc *self, void *p, SIZE_T n) {
  (void)self;
  if (p == NULL) return fm_alloc(self, n);
  if (n == 0) { HeapFree(GetProcessHeap(), 0, p); return NULL; }
  return HeapReAlloc(GetProcessHeap(), 0, p, n);
}
static void __stdcall fm_free(FakeMalloc *self, void *p) {
  (void)self;
  if (p != NULL) HeapFree(GetProcessHeap(), 0, p);
}
static SIZE_T __stdcall fm_getsize(FakeMalloc *self, void *p) {
  (void)self;
  return p == NULL ? (SIZE_T)-1 : HeapSize(GetProcessHeap(), 0, p);
}
static int __stdcall fm_didalloc(FakeMalloc *self, void *p) {
  (void)self;
  /* frees at once: a freed block is no longer the heap's */
  return p == NULL ? -1 : HeapValidate(GetProcessHeap(), 0, p) ? 1 : 0;
}
static void __stdcall fm_heapminimize(FakeMalloc *self) { (void)self; }

static const FakeMallocVtbl vtbl = {
  fm_qi, fm_addref, fm_release, fm_alloc, fm_realloc, fm_free, fm_getsize,
  fm_didalloc, fm_heapminimize,
};
static FakeMalloc task = { &vtbl };

__declspec(dllexport) HRESULT __stdcall CoGetMalloc(DWORD context, void **out) {
  (void)context;
  getmallocs++;
  *out = &task;
  fm_addref(&task);
  return S_OK;
}

#ifdef FAKE_SPY_FAILS
__declspec(dllexport) HRESULT __stdcall CoRegisterMallocSpy(void *spy) {
  (void)spy;
  return E_OUTOFMEMORY;
}
__declspec(dllexport) HRESULT __stdcall CoRevokeMallocSpy(void) {
  return E_OUTOFMEMORY;
}
#endif

#elif defined FAKE_NULL_MALLOC
__declspec(dllexport) HRESULT __stdcall CoGetMalloc(DWORD context, void **out) {
  (void)context;
  *out = 0;  /* no object */
  return 0;  /* S_OK */
}
#else
__declspec(dllexport) int fake_ole32_exports_nothing_else(void) { return 0; }
#endif
