# cmake/variants.cmake: the same tests again, built and run the ways that
# find memory and threading bugs (issue 5), in the same ctest run. Included
# by the top-level CMakeLists.txt inside if(BUILD_TESTING).
#
# -DIMALLOC_VARIANTS=ON adds, each from its own build of this source tree
# (an ExternalProject under <build>/variants/, built by `cmake --build`):
#   asan-spec-*      the whole spec suite on an AddressSanitizer + UBSan
#                    build (gcc), under the generational collector. lua5.4
#                    itself is not instrumented, so the runner preloads the
#                    ASan runtime; leaks are checked (LeakSanitizer).
#   asan-c-*         the C tests (tests/c) of that build: those that
#                    imalloc_c_test recorded (cmake/c_test.cmake).
#   tsan-c-*         the C tests on a ThreadSanitizer build: the threaded
#                    allocator stress, the spy's threads, and lua_threads
#                    (several Lua states in threads).
#   valgrind-spec-*  the spec suite under valgrind memcheck, on a build whose
#                    allocator reports its blocks to valgrind like malloc's
#                    (-DIMALLOC_VALGRIND, see src/taskalloc/): a task block
#                    a spec or the binding leaks is "definitely lost".
#   fuzz-*           bounded libFuzzer runs (clang) of tests/fuzz, seeded by
#                    the committed corpus tests/fuzz/corpus/<target>.
#   asan-spec-luajit-*  the catalogue (spec/arguments/catalogue) and the
#                    model (spec/safety/model) on an ASan + UBSan build
#                    against LuaJIT, under luajit.
#   spec-safety-model-fresh-seed  the model-based test with a fresh seed,
#                    which it prints (spec-safety-model runs the fixed one).
#   delayfree-heapcheck-*  the runs of wine-heapcheck-* natively, on a build
#                    whose allocator delays the last 1024 frees as Wine's
#                    checking heap does (-DIMALLOC_DELAY_FREES=ON,
#                    tests/delayfree/delay.c), so that the record of freed
#                    blocks (src/freed.c) runs as on Windows; the variant
#                    build's own tests of that name (spec/CMakeLists.txt).
#   hardgc-*         specs under Lua 5.4 and 5.2 built with HARDMEMTESTS and
#                    ASan (a full collection wherever the collector may
#                    run), finalizers freeing what methods use: hardgc.cmake.
# Labels: variant, and asan, tsan, valgrind, fuzz, delayfree or hardgc
# (ctest -L asan).
# No suppression file is needed: lua5.4, busted and glibc report nothing
# under ASan/LSan or memcheck, so none is used.

option(IMALLOC_VARIANTS
  "Also build with ASan+UBSan, TSan, valgrind hooks and libFuzzer, and run the tests on each" OFF)
set(IMALLOC_FUZZ_SECONDS 60 CACHE STRING
    "How long each fuzz-* test fuzzes (libFuzzer's -max_total_time)")

if(IMALLOC_VARIANTS AND NOT WIN32)
  include(ExternalProject)

  foreach(tool gcc clang valgrind)
    string(TOUPPER ${tool} var)
    find_program(IMALLOC_${var} ${tool})
    if(NOT IMALLOC_${var})
      message(FATAL_ERROR "IMALLOC_VARIANTS needs ${tool}: run .ci/setup")
    endif()
  endforeach()
  # lua5.4 is not built with ASan: its runtime must be loaded first.
  execute_process(COMMAND ${IMALLOC_GCC} -print-file-name=libasan.so
                  OUTPUT_VARIABLE IMALLOC_LIBASAN OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT EXISTS "${IMALLOC_LIBASAN}")
    message(FATAL_ERROR "gcc's libasan.so was not found (${IMALLOC_LIBASAN})")
  endif()

  set(variants_dir ${CMAKE_BINARY_DIR}/variants)

  # imalloc_variant(NAME CMAKE_ARGS...): this source tree, built again
  # in variants/NAME with those arguments.
  function(imalloc_variant name)
    ExternalProject_Add(imalloc_${name}
      SOURCE_DIR ${CMAKE_SOURCE_DIR}
      BINARY_DIR ${variants_dir}/${name}
      CMAKE_ARGS
        -DCMAKE_BUILD_TYPE=RelWithDebInfo
        -DIMALLOC_WERROR=${IMALLOC_WERROR}
        -DIMALLOC_VARIANTS=OFF
        -DIMALLOC_WINE=OFF
        ${ARGN}
      INSTALL_COMMAND ""
      BUILD_ALWAYS ON)
  endfunction()

  imalloc_variant(asan -DCMAKE_C_COMPILER=${IMALLOC_GCC}
                       -DIMALLOC_SANITIZE=address,undefined)
  imalloc_variant(tsan -DCMAKE_C_COMPILER=${IMALLOC_GCC}
                       -DIMALLOC_SANITIZE=thread)
  imalloc_variant(valgrind -DCMAKE_C_COMPILER=${IMALLOC_GCC}
                           -DCMAKE_C_FLAGS=-DIMALLOC_VALGRIND)
  ExternalProject_Add(imalloc_fuzz
    SOURCE_DIR ${CMAKE_SOURCE_DIR}/tests/fuzz
    BINARY_DIR ${variants_dir}/fuzz
    CMAKE_ARGS -DCMAKE_C_COMPILER=${IMALLOC_CLANG}
               -DCMAKE_BUILD_TYPE=RelWithDebInfo
    INSTALL_COMMAND ""
    BUILD_ALWAYS ON)

  # The ASan run of the specs also runs them under the generational
  # collector, where objects die in other orders than the native run's.
  set(asan_env
    LD_PRELOAD=${IMALLOC_LIBASAN}
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1)
  set(tsan_env TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1)

  # --- the spec suite ---------------------------------------------------
  # imalloc_add_specs (spec/CMakeLists.txt) is written for the scope of the
  # spec directory (its list of spec files, its paths): it is called here
  # with a copy of every variable of that scope, so that it adds the same
  # tests it adds there, whatever it comes to read.
  function(imalloc_variant_specs)
    get_directory_property(names DIRECTORY ${CMAKE_SOURCE_DIR}/spec VARIABLES)
    foreach(name ${names})
      get_directory_property(value DIRECTORY ${CMAKE_SOURCE_DIR}/spec
                             DEFINITION ${name})
      set(${name} "${value}")
    endforeach()
    imalloc_add_specs(${ARGN})
  endfunction()
  imalloc_variant_specs(asan-spec ${variants_dir}/asan/?.so
    ${CMAKE_COMMAND} -E env ${asan_env} "LUA_INIT_5_4=collectgarbage('generational')"
      ${LUA_EXECUTABLE} ${BUSTED_SCRIPT})
  imalloc_variant_specs(valgrind-spec ${variants_dir}/valgrind/?.so
    ${IMALLOC_VALGRIND} -q --error-exitcode=1 --leak-check=full
      --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
      --track-origins=yes
      ${LUA_EXECUTABLE} ${BUSTED_SCRIPT})
  # LuaJIT (its own allocator, its own GC, no integers): the two specs that
  # try the most values and sequences, on an ASan + UBSan build for it.
  find_program(IMALLOC_LUAJIT luajit)
  if(NOT IMALLOC_LUAJIT)
    message(FATAL_ERROR "IMALLOC_VARIANTS needs luajit: run .ci/setup")
  endif()
  imalloc_variant(asan-luajit -DCMAKE_C_COMPILER=${IMALLOC_GCC}
                              -DIMALLOC_LUA=luajit
                              -DIMALLOC_SANITIZE=address,undefined)
  foreach(spec safety/model arguments/catalogue)
    string(REPLACE "/" "-" name ${spec})
    add_test(NAME asan-spec-luajit-${name}
      COMMAND ${CMAKE_COMMAND} -E env ${asan_env}
              ${IMALLOC_LUAJIT} ${BUSTED_SCRIPT} --output=plainTerminal
              --lpath=${CMAKE_SOURCE_DIR}/lua/?.lua
              --lpath=${CMAKE_SOURCE_DIR}/spec/?.lua
              --cpath=${variants_dir}/asan-luajit/?.so
              --shuffle --seed=${IMALLOC_SHUFFLE_SEED}
              ${CMAKE_SOURCE_DIR}/spec/${spec}_spec.lua
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  endforeach()

  # The record of freed blocks on a heap that delays frees, natively.
  imalloc_variant(delayfree -DIMALLOC_DELAY_FREES=ON
                            -DIMALLOC_SHUFFLE_SEED=${IMALLOC_SHUFFLE_SEED})
  foreach(run all double_free double_free-record spy-realloc)
    add_test(NAME delayfree-heapcheck-${run}
      COMMAND ${CMAKE_CTEST_COMMAND} --output-on-failure --no-tests=error
              -R "^delayfree-heapcheck-${run}$"
      WORKING_DIRECTORY ${variants_dir}/delayfree)
    set_tests_properties(delayfree-heapcheck-${run} PROPERTIES
      LABELS "variant;delayfree" TIMEOUT 600)
  endforeach()

  # The specs under a Lua that collects wherever it may (HARDMEMTESTS),
  # where finalizers free what methods are using: cmake/hardgc.cmake.
  include(${CMAKE_SOURCE_DIR}/cmake/hardgc.cmake)

  get_property(tests DIRECTORY PROPERTY TESTS)
  foreach(t ${tests})
    if(t MATCHES "^asan-spec-")
      set_tests_properties(${t} PROPERTIES LABELS "variant;asan" TIMEOUT 600)
    elseif(t MATCHES "^valgrind-spec-")
      set_tests_properties(${t} PROPERTIES LABELS "variant;valgrind" TIMEOUT 900)
    endif()
  endforeach()

  # --- the C tests --------------------------------------------------------
  # Every test that imalloc_c_test (cmake/c_test.cmake) added, in the
  # variants it names (by default asan and tsan), run by the variant build's
  # own ctest, so that each keeps its arguments and environment.
  get_property(c_tests GLOBAL PROPERTY IMALLOC_C_TESTS)
  if(NOT c_tests)
    message(FATAL_ERROR "IMALLOC_VARIANTS: no C test was recorded "
            "(tests/c/CMakeLists.txt calls imalloc_c_test)")
  endif()
  # A test added to tests/c with add_test itself would not be run here.
  get_property(dir_tests DIRECTORY ${CMAKE_SOURCE_DIR}/tests/c PROPERTY TESTS)
  foreach(t ${dir_tests})
    if(NOT t IN_LIST c_tests)
      message(FATAL_ERROR "${t}: a C test added without imalloc_c_test "
              "(cmake/c_test.cmake), which the variants would not run")
    endif()
  endforeach()
  foreach(t ${c_tests})
    get_property(variants GLOBAL PROPERTY IMALLOC_C_TEST_${t}_VARIANTS)
    foreach(v ${variants})
      if(NOT DEFINED ${v}_env)
        message(FATAL_ERROR "${t}: no variant ${v} (cmake/variants.cmake)")
      endif()
      add_test(NAME ${v}-${t}
        COMMAND ${CMAKE_CTEST_COMMAND} --output-on-failure --no-tests=error
                -R "^${t}$"
        WORKING_DIRECTORY ${variants_dir}/${v})
      set_tests_properties(${v}-${t} PROPERTIES
        ENVIRONMENT "${${v}_env}" LABELS "variant;${v}" TIMEOUT 900)
    endforeach()
  endforeach()

  # --- fuzzing ------------------------------------------------------------
  foreach(target taskalloc lua)
    add_test(NAME fuzz-${target}
      COMMAND bash ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh
              ${variants_dir}/fuzz/fuzz_${target} ${IMALLOC_FUZZ_SECONDS}
              ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${target}
              ${variants_dir}/fuzz/work-${target})
    math(EXPR fuzz_timeout "${IMALLOC_FUZZ_SECONDS} * 2 + 120")
    set_tests_properties(fuzz-${target} PROPERTIES
      LABELS "variant;fuzz" TIMEOUT ${fuzz_timeout})
  endforeach()

  # --- the model-based test with a fresh seed -------------------------------
  if(EXISTS ${CMAKE_SOURCE_DIR}/spec/safety/model_spec.lua)
    add_test(NAME spec-safety-model-fresh-seed
      COMMAND ${CMAKE_COMMAND} -E env IMALLOC_SEED=fresh
              ${LUA_EXECUTABLE} ${BUSTED_SCRIPT} --output=plainTerminal
              --lpath=${CMAKE_SOURCE_DIR}/lua/?.lua
              --lpath=${CMAKE_SOURCE_DIR}/spec/?.lua
              --cpath=${CMAKE_BINARY_DIR}/?.so
              ${CMAKE_SOURCE_DIR}/spec/safety/model_spec.lua
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(spec-safety-model-fresh-seed PROPERTIES LABELS "variant")
  endif()
endif()
