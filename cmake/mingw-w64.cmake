# The part of the mingw-w64 toolchain files (mingw-w64-x86_64.cmake,
# mingw-w64-i686.cmake) that is the same for both architectures. They set
# CMAKE_SYSTEM_PROCESSOR, IMALLOC_MINGW_TRIPLET and IMALLOC_WIN_DEPS_DIR (the
# default Lua PREFIX under build/) before including it.

set(CMAKE_SYSTEM_NAME Windows)

# Debian names the compilers x86_64-w64-mingw32-gcc (an alternative pointing at the
# -win32 or -posix flavour); both use msvcrt.dll, the C runtime the Lua DLL uses.
set(CMAKE_C_COMPILER ${IMALLOC_MINGW_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${IMALLOC_MINGW_TRIPLET}-g++)
set(CMAKE_RC_COMPILER ${IMALLOC_MINGW_TRIPLET}-windres)
# CMake also finds these from the compiler's prefix; naming them keeps a stray
# host ar/strip out of the cache.
set(CMAKE_AR ${IMALLOC_MINGW_TRIPLET}-ar CACHE FILEPATH "mingw-w64 ar")
set(CMAKE_RANLIB ${IMALLOC_MINGW_TRIPLET}-ranlib CACHE FILEPATH "mingw-w64 ranlib")
set(CMAKE_STRIP ${IMALLOC_MINGW_TRIPLET}-strip CACHE FILEPATH "mingw-w64 strip")

# Where the Windows Lua lives (see the architecture's toolchain file). try_compile re-reads this file without
# the cache, so the environment variable and the repository default also work there.
if(NOT IMALLOC_WIN_DEPS)
  if(DEFINED ENV{IMALLOC_WIN_DEPS} AND NOT "$ENV{IMALLOC_WIN_DEPS}" STREQUAL "")
    set(IMALLOC_WIN_DEPS "$ENV{IMALLOC_WIN_DEPS}")
  elseif(EXISTS "${CMAKE_CURRENT_LIST_DIR}/../build/${IMALLOC_WIN_DEPS_DIR}/include/lua.h")
    get_filename_component(IMALLOC_WIN_DEPS
      "${CMAKE_CURRENT_LIST_DIR}/../build/${IMALLOC_WIN_DEPS_DIR}" ABSOLUTE)
  endif()
endif()
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES IMALLOC_WIN_DEPS)

# Look for headers and libraries in the mingw-w64 sysroot and the Lua PREFIX only,
# never in the host's /usr/include or /usr/lib; programs (wine, lua5.4) on the host.
set(CMAKE_FIND_ROOT_PATH /usr/${IMALLOC_MINGW_TRIPLET})
if(IMALLOC_WIN_DEPS)
  list(APPEND CMAKE_FIND_ROOT_PATH "${IMALLOC_WIN_DEPS}")
endif()
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Link libgcc (and libstdc++) statically: the DLLs and EXEs then need only system
# DLLs and lua54.dll, no libgcc_s_seh-1.dll next to them.
foreach(kind EXE SHARED MODULE)
  set(CMAKE_${kind}_LINKER_FLAGS_INIT "-static-libgcc -static-libstdc++")
endforeach()

# Run cross-built programs (try_run, add_test on an executable target) under Wine.
# Wine reads WINEPREFIX and WINEDEBUG from the environment; .ci/win/busted.sh sets
# both for the busted specs.
find_program(IMALLOC_WINE NAMES wine wine64 wine-stable)
if(IMALLOC_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${IMALLOC_WINE}")
endif()
