/* crt_start.c: the few static parts of MSVC's C runtime library that a
 * program or DLL built by cl /MD gets from msvcrt.lib (beside the imports
 * of the C runtime DLLs), for the MSVC-interface stand-in of
 * .ci/win/rocks/msvc.sh: clang-cl and lld-link with Wine's headers, which
 * in MSVC mode are those of the Universal C Runtime, and ucrtbase.dll.
 * ucrtbase.dll initialises itself; this starts main with its arguments,
 * accepts a DLL's attach, and provides what clang-cl's code refers to: the
 * /GS stack cookie and its check, _fltused, and the TLS directory that
 * __declspec(thread) variables need (MSVC's tlssup.c: _tls_index,
 * _tls_used, the .tls section's bounds).
 *
 * Not the real thing (MSVC's is vcruntime + the UCRT's static part): no C++
 * support, no TLS callbacks, no atexit table per DLL (ucrtbase.dll's atexit
 * is the process's), and a fixed cookie.
 *
 * Compiled twice: as is for DLLs and what both need, and with
 * -DCRT_START_EXE for a program's entry point alone (a DLL has no main). */
#include <windows.h>
#include <stdlib.h>

/* What MSVC's msvcrt.lib names for the linker: a program built with /MD
 * needs no other library for the Windows API calls the C runtime makes. */
#pragma comment(lib, "kernel32")

/* oldnames.obj (msvc.sh): the old POSIX names, linked whenever this is. */
#ifdef _WIN64
#pragma comment(linker, "/include:imalloc_standin_oldnames")
#else
#pragma comment(linker, "/include:_imalloc_standin_oldnames")
#endif

#ifdef CRT_START_EXE
int main(int argc, char **argv, char **envp);

/* ucrtbase.dll's, as MSVC's startup (exe_common.inl) calls them
 * (__p___argc and the others are in Wine's stdlib.h). */
int __cdecl _configure_narrow_argv(int mode);
int __cdecl _initialize_narrow_environment(void);

void __cdecl mainCRTStartup(void)
{
  _configure_narrow_argv(1); /* _crt_argv_unexpanded_arguments */
  _initialize_narrow_environment();
  exit(main(*__p___argc(), *__p___argv(), *__p__environ()));
}

#else

int _fltused = 0x9875;

#ifdef _WIN64
UINT_PTR __security_cookie = 0x00002B992DDFA232ull;
#else
UINT_PTR __security_cookie = 0xBB40E64Eu;
#endif

/* A smashed stack ends the process at once, as MSVC's __report_gsfailure
 * does (STATUS_STACK_BUFFER_OVERRUN). */
#ifdef _WIN64
void __cdecl __security_check_cookie(UINT_PTR cookie)
#else
void __fastcall __security_check_cookie(UINT_PTR cookie)
#endif
{
  if (cookie != __security_cookie) TerminateProcess(GetCurrentProcess(), 0xC0000409u);
}

/* Static TLS: the loader gives each thread a copy of the image's .tls
 * section (clang-cl puts __declspec(thread) variables in .tls$), between
 * _tls_start and _tls_end, and stores the image's slot in _tls_index;
 * lld-link points the PE header's TLS directory at _tls_used. */
ULONG _tls_index = 0;
#pragma data_seg(".tls")
char _tls_start = 0;
#pragma data_seg(".tls$ZZZ")
char _tls_end = 0;
#pragma data_seg()
#pragma section(".CRT$XLA", long, read)
__declspec(allocate(".CRT$XLA")) const PIMAGE_TLS_CALLBACK __xl_a = 0;
#pragma section(".CRT$XLZ", long, read)
__declspec(allocate(".CRT$XLZ")) const PIMAGE_TLS_CALLBACK __xl_z = 0;
#pragma section(".rdata$T", long, read)
__declspec(allocate(".rdata$T")) const IMAGE_TLS_DIRECTORY _tls_used = {
  (ULONG_PTR)&_tls_start, (ULONG_PTR)&_tls_end, (ULONG_PTR)&_tls_index,
  (ULONG_PTR)(&__xl_a + 1), 0, 0
};

BOOL WINAPI _DllMainCRTStartup(HINSTANCE dll, DWORD reason, LPVOID reserved)
{
  (void)dll;
  (void)reason;
  (void)reserved;
  return TRUE;
}
#endif
