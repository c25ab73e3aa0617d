/* Wine's <io.h> declares msvcrt.dll's _findfirst and _findnext with their
 * old structures, even where its <corecrt_io.h> (MSVC mode) gives the
 * Universal C Runtime's names: _findfirst64i32 and the others, which
 * ucrtbase.dll exports (Wine's ucrtbase.dll has _findfirst as an
 * unimplemented stub: LuaFileSystem's lfs.dir aborted). As in MSVC's io.h,
 * corecrt_io.h comes first, and its macros rename what Wine's io.h declares. */
#ifndef IMALLOC_STANDIN_IO_H
#define IMALLOC_STANDIN_IO_H
#include <corecrt_io.h>
#define _FINDDATA_T_DEFINED /* corecrt_io.h's structures, not io.h's */
#include_next <io.h>
#endif
