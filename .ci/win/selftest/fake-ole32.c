/*
** fake-ole32.c: an ole32.dll for the test wine-fake-ole32
** (selftest/fake-ole32.sh), which puts it beside lua.exe, where Windows
** looks for a DLL first, and tells Wine to load it instead of its own.
** It stands for an ole32 that the backend (src/backend_win32.c) must not
** trust blindly:
**   FAKE_NULL_MALLOC  CoGetMalloc succeeds and hands out no object, and
**                     there is no CoRegisterMallocSpy or CoRevokeMallocSpy;
**   otherwise         none of the three exists.
*/
/* Not <windows.h>, which declares the real CoGetMalloc as imported. */
typedef long HRESULT;
typedef unsigned long DWORD;

#ifdef FAKE_NULL_MALLOC
__declspec(dllexport) HRESULT __stdcall CoGetMalloc(DWORD context, void **out) {
  (void)context;
  *out = 0;  /* no object */
  return 0;  /* S_OK */
}
#else
__declspec(dllexport) int fake_ole32_exports_nothing_else(void) { return 0; }
#endif
