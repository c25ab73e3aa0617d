# cmake -DBUILD=dir -DCC=compiler -DLUA_INCDIR=dir -DSOURCE=header_alone.c
#       -P header_alone.cmake
# Installs the build BUILD into a scratch prefix, then compiles SOURCE with
# -I for the installed include/imalloc and Lua's headers only (C99, warnings
# as errors): imalloc.h must stand alone with what is installed beside it.
set(prefix ${BUILD}/header-alone)
file(REMOVE_RECURSE ${prefix})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD} --prefix ${prefix}
                RESULT_VARIABLE status OUTPUT_QUIET)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "cmake --install ${BUILD} failed (${status})")
endif()
file(GLOB installed RELATIVE ${prefix}/include/imalloc ${prefix}/include/imalloc/*.h)
message(STATUS "installed headers: ${installed}")
execute_process(
  COMMAND ${CC} -std=c99 -pedantic -Wall -Wextra -Werror -c
          -I${prefix}/include/imalloc -I${LUA_INCDIR}
          ${SOURCE} -o ${prefix}/header_alone.o
  RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${SOURCE} does not compile with the installed headers alone")
endif()
message(STATUS "ok: ${SOURCE} compiles against include/imalloc and Lua's headers only")
