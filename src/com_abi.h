/*
** com_abi.h: the part of COM's binary interface that imalloc uses.
**
** On Windows the SDK headers are the authority, so they are used as they are.
** Elsewhere the same layout is declared here, with the exact widths COM
** fixes (ULONG is 32-bit, not `unsigned long`; OLECHAR is 16-bit, not
** `wchar_t`), so an object made on POSIX is laid out as on Windows x64.
** With platform.h (atomics, thread-local storage), the one header of the
** project that knows about the platform.
*/
#ifndef IMALLOC_COM_ABI_H
#define IMALLOC_COM_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef _WIN32

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef CONST_VTABLE
#define CONST_VTABLE  /* lpVtbl points to const, as on POSIX */
#endif
#include <windows.h>
#include <objbase.h>
#include <objidl.h>

#else /* POSIX */

typedef int32_t HRESULT;
typedef uint32_t ULONG;
typedef uint32_t DWORD;
typedef int32_t BOOL;
typedef size_t SIZE_T;
typedef uint16_t OLECHAR;
typedef OLECHAR *LPOLESTR;

typedef struct GUID {
  uint32_t Data1;
  uint16_t Data2;
  uint16_t Data3;
  uint8_t Data4[8];
} GUID;
typedef GUID IID;
typedef const IID *REFIID;

/* __stdcall exists only on 32-bit x86 Windows; everywhere else it is the
** platform's C convention. */
#define STDMETHODCALLTYPE

typedef struct IUnknown IUnknown;
typedef struct IUnknownVtbl {
  HRESULT (STDMETHODCALLTYPE *QueryInterface)(IUnknown *This, REFIID riid,
                                              void **ppvObject);
  ULONG (STDMETHODCALLTYPE *AddRef)(IUnknown *This);
  ULONG (STDMETHODCALLTYPE *Release)(IUnknown *This);
} IUnknownVtbl;
struct IUnknown { const IUnknownVtbl *lpVtbl; };

typedef struct IMalloc IMalloc;
typedef struct IMallocVtbl {
  HRESULT (STDMETHODCALLTYPE *QueryInterface)(IMalloc *This, REFIID riid,
                                              void **ppvObject);
  ULONG (STDMETHODCALLTYPE *AddRef)(IMalloc *This);
  ULONG (STDMETHODCALLTYPE *Release)(IMalloc *This);
  void *(STDMETHODCALLTYPE *Alloc)(IMalloc *This, SIZE_T cb);
  void *(STDMETHODCALLTYPE *Realloc)(IMalloc *This, void *pv, SIZE_T cb);
  void (STDMETHODCALLTYPE *Free)(IMalloc *This, void *pv);
  SIZE_T (STDMETHODCALLTYPE *GetSize)(IMalloc *This, void *pv);
  int (STDMETHODCALLTYPE *DidAlloc)(IMalloc *This, void *pv);
  void (STDMETHODCALLTYPE *HeapMinimize)(IMalloc *This);
} IMallocVtbl;
struct IMalloc { const IMallocVtbl *lpVtbl; };

typedef struct IMallocSpy IMallocSpy;
typedef struct IMallocSpyVtbl {
  HRESULT (STDMETHODCALLTYPE *QueryInterface)(IMallocSpy *This, REFIID riid,
                                              void **ppvObject);
  ULONG (STDMETHODCALLTYPE *AddRef)(IMallocSpy *This);
  ULONG (STDMETHODCALLTYPE *Release)(IMallocSpy *This);
  SIZE_T (STDMETHODCALLTYPE *PreAlloc)(IMallocSpy *This, SIZE_T cbRequest);
  void *(STDMETHODCALLTYPE *PostAlloc)(IMallocSpy *This, void *pActual);
  void *(STDMETHODCALLTYPE *PreFree)(IMallocSpy *This, void *pRequest,
                                     BOOL fSpyed);
  void (STDMETHODCALLTYPE *PostFree)(IMallocSpy *This, BOOL fSpyed);
  SIZE_T (STDMETHODCALLTYPE *PreRealloc)(IMallocSpy *This, void *pRequest,
                                         SIZE_T cbRequest,
                                         void **ppNewRequest, BOOL fSpyed);
  void *(STDMETHODCALLTYPE *PostRealloc)(IMallocSpy *This, void *pActual,
                                         BOOL fSpyed);
  void *(STDMETHODCALLTYPE *PreGetSize)(IMallocSpy *This, void *pRequest,
                                        BOOL fSpyed);
  SIZE_T (STDMETHODCALLTYPE *PostGetSize)(IMallocSpy *This, SIZE_T cbActual,
                                          BOOL fSpyed);
  void *(STDMETHODCALLTYPE *PreDidAlloc)(IMallocSpy *This, void *pRequest,
                                         BOOL fSpyed);
  int (STDMETHODCALLTYPE *PostDidAlloc)(IMallocSpy *This, void *pRequest,
                                        BOOL fSpyed, int fActual);
  void (STDMETHODCALLTYPE *PreHeapMinimize)(IMallocSpy *This);
  void (STDMETHODCALLTYPE *PostHeapMinimize)(IMallocSpy *This);
} IMallocSpyVtbl;
struct IMallocSpy { const IMallocSpyVtbl *lpVtbl; };

#define S_OK            ((HRESULT)0)
#define S_FALSE         ((HRESULT)1)
#define E_NOTIMPL       ((HRESULT)0x80004001L)
#define E_NOINTERFACE   ((HRESULT)0x80004002L)
#define E_POINTER       ((HRESULT)0x80004003L)
#define E_FAIL          ((HRESULT)0x80004005L)
#define E_ACCESSDENIED  ((HRESULT)0x80070005L)
#define E_OUTOFMEMORY   ((HRESULT)0x8007000EL)
#define E_INVALIDARG    ((HRESULT)0x80070057L)
#define CO_E_OBJISREG   ((HRESULT)0x800401FCL)
#define CO_E_OBJNOTREG  ((HRESULT)0x800401FBL)

#define MEMCTX_TASK 1

#endif /* _WIN32 */

/* What a shared library exports: luaopen_* and the public C API; the build
** hides everything else (-fvisibility=hidden). */
#if defined(_WIN32)
#define IMALLOC_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
#define IMALLOC_EXPORT __attribute__((visibility("default")))
#else
#define IMALLOC_EXPORT
#endif

/* Functions shared between the project's files but not exported, whatever
** flags the build passes (LuaRocks' builtin backend passes none). */
#if defined(__GNUC__) && !defined(_WIN32)
#define IMALLOC_HIDDEN __attribute__((visibility("hidden")))
#else
#define IMALLOC_HIDDEN
#endif

/* The IIDs as initialisers, so that no file needs uuid.lib or a global. */
#define IMALLOC_IID_IUNKNOWN \
  { 0x00000000, 0x0000, 0x0000, {0xC0,0,0,0,0,0,0,0x46} }
#define IMALLOC_IID_IMALLOC \
  { 0x00000002, 0x0000, 0x0000, {0xC0,0,0,0,0,0,0,0x46} }
#define IMALLOC_IID_IMALLOCSPY \
  { 0x0000001d, 0x0000, 0x0000, {0xC0,0,0,0,0,0,0,0x46} }

/* The signatures the Windows backend looks up in ole32.dll by name; the
** POSIX allocator exports functions of the same types. */
typedef HRESULT (STDMETHODCALLTYPE *imalloc_CoGetMalloc_fn)(DWORD context,
                                                           IMalloc **out);
typedef HRESULT (STDMETHODCALLTYPE *imalloc_CoRegisterMallocSpy_fn)(
    IMallocSpy *spy);
typedef HRESULT (STDMETHODCALLTYPE *imalloc_CoRevokeMallocSpy_fn)(void);

#endif
