# cmake/hardgc.cmake: the specs under a Lua that runs a full collection,
# finalizers included, wherever the collector may run (issue 16, rule 1;
# docs/hardgc.md). Included by cmake/variants.cmake (IMALLOC_VARIANTS).
#
# The Lua is Debian's lua5.4 and lua5.2 built with HARDMEMTESTS and
# AddressSanitizer + UBSan by .ci/hardgc/build-deps.sh into
# IMALLOC_HARDGC_DEPS; the module, testkit and peer are built against each
# with ASan + UBSan (variants/hardgc-5.4, variants/hardgc-5.2). Tests:
#   hardgc-5.4-TOPIC-NAME  spec/TOPIC/NAME_spec.lua under the 5.4 Lua, for
#                     the spec files of IMALLOC_HARDGC_SPECS (a full collection
#                     at every allocation is slow: the ones that run in seconds)
#   hardgc-5.2-lifetime-finalizer_in_method  the finalizer spec under 5.2,
#                     whose lua_pushlstring collects before it copies
#   hardgc-5.1-lifetime-finalizer_in_method  the same under lua5.1 (no such
#                     switch: the spec sets pause and step multiplier to 0
#                     there) against build/lua-5.1 (IMALLOC_ALL_LUA)
# Every test runs with IMALLOC_HARDGC=1 (the finalizer spec then asserts the
# exact outcome of each case) and IMALLOC_RETAIN=0 (a freed large block is
# unmapped at once), and passes only when busted reports at least one
# success and no failure or error. Label: hardgc.

set(IMALLOC_HARDGC_DEPS "${CMAKE_SOURCE_DIR}/build/hardgc-deps" CACHE PATH
    "Lua 5.4 and 5.2 built with HARDMEMTESTS and ASan, from .ci/hardgc/build-deps.sh")
# All but the slowest there (lifetime/references and lifetime/collector,
# safety/model and safety/double_free, arguments/catalogue, spy/, docs/,
# module/reload, runtime/5.4/, wrap/image).
set(IMALLOC_HARDGC_SPECS
    module/functions handle/get handle/reference handle/fastcheck
    handle/queryinterface arguments/errors arguments/rules arguments/names
    safety/pointer_checks safety/forgery memory/read_write memory/strings
    memory/crossing buffer/methods buffer/stale_block buffer/strings
    wrap/wrap wrap/unreadable lifetime/finalizer_in_method
    CACHE STRING "The spec files (spec/TOPIC/NAME_spec.lua) the hardgc-5.4 tests run")

foreach(v 5.4 5.2)
  if(NOT EXISTS ${IMALLOC_HARDGC_DEPS}/${v}/bin/lua)
    message(FATAL_ERROR "IMALLOC_VARIANTS needs ${IMALLOC_HARDGC_DEPS}/${v}/bin/lua: "
            "run .ci/hardgc/build-deps.sh ${IMALLOC_HARDGC_DEPS}")
  endif()
  ExternalProject_Add(imalloc_hardgc_${v}
    SOURCE_DIR ${CMAKE_SOURCE_DIR}
    BINARY_DIR ${variants_dir}/hardgc-${v}
    CMAKE_ARGS
      -DCMAKE_BUILD_TYPE=RelWithDebInfo
      -DCMAKE_C_COMPILER=${IMALLOC_GCC}
      -DIMALLOC_WERROR=${IMALLOC_WERROR}
      -DIMALLOC_VARIANTS=OFF
      -DIMALLOC_WINE=OFF
      -DIMALLOC_LUA=${v}
      -DLUA_INCDIR=${IMALLOC_HARDGC_DEPS}/${v}/include
      -DIMALLOC_SANITIZE=address,undefined
    BUILD_COMMAND ${CMAKE_COMMAND} --build . --target imalloc_core imalloc_testkit imalloc_peer
    INSTALL_COMMAND ""
    BUILD_ALWAYS ON)
endforeach()

set(hardgc_env
  IMALLOC_HARDGC=1 IMALLOC_RETAIN=0
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1)

# imalloc_hardgc_spec(NAME LUA CPATH SPEC [ENV...]): the test NAME, busted
# running spec/SPEC_spec.lua (SPEC: TOPIC/NAME) under LUA with the modules
# of CPATH, shuffled as spec/CMakeLists.txt runs the specs.
function(imalloc_hardgc_spec name lua cpath spec)
  add_test(NAME ${name}
    COMMAND ${CMAKE_COMMAND} -E env ${hardgc_env} ${ARGN}
            ${lua} ${BUSTED_SCRIPT} --output=plainTerminal
            --shuffle --seed=${IMALLOC_SHUFFLE_SEED}
            --lpath=${CMAKE_SOURCE_DIR}/lua/?.lua
            --lpath=${CMAKE_SOURCE_DIR}/spec/?.lua
            --cpath=${cpath}
            ${CMAKE_SOURCE_DIR}/spec/${spec}_spec.lua
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  # A run that ran nothing is a failure, not a pass.
  set_tests_properties(${name} PROPERTIES LABELS "variant;hardgc" TIMEOUT 600
    PASS_REGULAR_EXPRESSION "[1-9][0-9]* success(es)? / 0 failures / 0 errors")
endfunction()

foreach(spec ${IMALLOC_HARDGC_SPECS})
  if(NOT EXISTS ${CMAKE_SOURCE_DIR}/spec/${spec}_spec.lua)
    message(FATAL_ERROR "IMALLOC_HARDGC_SPECS: spec/${spec}_spec.lua does not exist")
  endif()
  string(REPLACE "/" "-" name ${spec})
  imalloc_hardgc_spec(hardgc-5.4-${name} ${IMALLOC_HARDGC_DEPS}/5.4/bin/lua
    ${variants_dir}/hardgc-5.4/?.so ${spec})
endforeach()
imalloc_hardgc_spec(hardgc-5.2-lifetime-finalizer_in_method ${IMALLOC_HARDGC_DEPS}/5.2/bin/lua
  ${variants_dir}/hardgc-5.2/?.so lifetime/finalizer_in_method)
# 5.1: Debian's interpreter and the module's plain build for it.
if(IMALLOC_ALL_LUA)
  find_program(IMALLOC_LUA51 lua5.1 REQUIRED)
  imalloc_hardgc_spec(hardgc-5.1-lifetime-finalizer_in_method ${IMALLOC_LUA51}
    ${CMAKE_BINARY_DIR}/lua-5.1/?.so lifetime/finalizer_in_method)
endif()
