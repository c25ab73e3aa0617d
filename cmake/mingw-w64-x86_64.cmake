# CMake toolchain file: cross-compile for 64-bit Windows with Debian's mingw-w64
# (package gcc-mingw-w64-x86-64) and run the results under Wine.
#
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake
#
# Lua for Windows comes from .ci/win/build-deps.sh PREFIX. The toolchain adds that
# PREFIX to the find root, so find_path(lua.h) / find_library(lua54) / FindLua see
# PREFIX/include and PREFIX/lib. PREFIX is, in this order: -DIMALLOC_WIN_DEPS=...,
# the environment variable IMALLOC_WIN_DEPS, or build/win-deps in this repository
# (what CI uses) when it exists.

set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(IMALLOC_MINGW_TRIPLET x86_64-w64-mingw32)
set(IMALLOC_WIN_DEPS_DIR win-deps)
include(${CMAKE_CURRENT_LIST_DIR}/mingw-w64.cmake)
