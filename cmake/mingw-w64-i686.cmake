# CMake toolchain file: cross-compile for 32-bit x86 Windows with Debian's
# mingw-w64 (package gcc-mingw-w64-i686) and run the results under 32-bit Wine
# (wine32:i386). COM methods are __stdcall there, unlike on x86-64.
#
#   cmake -S . -B build-win32 -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-i686.cmake
#
# Lua comes from `.ci/win/build-deps.sh PREFIX i686`; PREFIX is, in this order:
# -DIMALLOC_WIN_DEPS=..., the environment variable IMALLOC_WIN_DEPS, or
# build/win32-deps in this repository (what CI uses) when it exists.

set(CMAKE_SYSTEM_PROCESSOR x86)
set(IMALLOC_MINGW_TRIPLET i686-w64-mingw32)
set(IMALLOC_WIN_DEPS_DIR win32-deps)
include(${CMAKE_CURRENT_LIST_DIR}/mingw-w64.cmake)
