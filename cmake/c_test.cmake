# cmake/c_test.cmake: imalloc_c_test(), the one call that adds a C test
# (tests/c/CMakeLists.txt), and the record of what it added, which
# cmake/variants.cmake reads to run the same tests on its sanitizer builds.
#
# imalloc_c_test(NAME name
#                [TARGET executable]
#                [SOURCES file...] [LIBS library...] [DEFINES definition...]
#                [COMPILE_OPTIONS option...] [DEPENDS target...]
#                [ARGS argument...] [ENV VAR=value...] [TIMEOUT seconds]
#                [LABELS label...] [PROPERTIES property value...]
#                [VARIANTS variant... | NONE])
#
# adds the test c-NAME, which runs TARGET with ARGS. TARGET defaults to the
# first source's name without ".c". The first call that names a TARGET
# builds it from SOURCES (relative to the calling directory, or absolute),
# linked PRIVATE to LIBS, with src/ and tests/support/ on its include path,
# DEFINES and COMPILE_OPTIONS, after DEPENDS; a later call that names the
# same TARGET adds another test of that executable (other ARGS or ENV) and
# may give none of the build options. ENV, TIMEOUT, LABELS and PROPERTIES
# set the test's properties. VARIANTS are the variant builds whose ctest
# runs the test again as VARIANT-c-NAME (cmake/variants.cmake): by default
# asan and tsan; NONE for none.
#
# The record: the global property IMALLOC_C_TESTS lists the tests' names
# (c-NAME) in the order they were added, and IMALLOC_C_TEST_<c-NAME>_<FIELD>
# holds each one's TARGET, SOURCES, LIBS, ARGS, ENV, LABELS and VARIANTS.
# The allocator's sources are not listed here: tests link the library
# imalloc_taskalloc, built from src/sources.cmake's list.

set(IMALLOC_C_TEST_VARIANTS asan tsan)

function(imalloc_c_test)
  cmake_parse_arguments(PARSE_ARGV 0 T ""
    "NAME;TARGET;TIMEOUT"
    "SOURCES;LIBS;DEFINES;COMPILE_OPTIONS;DEPENDS;ARGS;ENV;LABELS;PROPERTIES;VARIANTS")
  if(T_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "imalloc_c_test: unknown arguments: ${T_UNPARSED_ARGUMENTS}")
  endif()
  # variants.cmake selects the test with ctest -R "^c-NAME$"
  if(NOT T_NAME MATCHES "^[A-Za-z0-9_-]+$")
    message(FATAL_ERROR "imalloc_c_test: NAME '${T_NAME}' is not [A-Za-z0-9_-]+")
  endif()
  set(name c-${T_NAME})
  get_property(known GLOBAL PROPERTY IMALLOC_C_TESTS)
  if(name IN_LIST known)
    message(FATAL_ERROR "imalloc_c_test: ${name} is added twice")
  endif()
  if(NOT T_TARGET)
    if(NOT T_SOURCES)
      message(FATAL_ERROR "imalloc_c_test(${T_NAME}): neither TARGET nor SOURCES")
    endif()
    list(GET T_SOURCES 0 first)
    get_filename_component(T_TARGET ${first} NAME_WE)
  endif()

  if(TARGET ${T_TARGET})
    get_property(owner GLOBAL PROPERTY IMALLOC_C_TARGET_${T_TARGET})
    if(NOT owner)
      message(FATAL_ERROR "imalloc_c_test(${T_NAME}): ${T_TARGET} is a target "
              "that imalloc_c_test did not add")
    endif()
    if(T_SOURCES OR T_LIBS OR T_DEFINES OR T_COMPILE_OPTIONS OR T_DEPENDS)
      message(FATAL_ERROR "imalloc_c_test(${T_NAME}): ${T_TARGET} was built "
              "for ${owner}; its SOURCES, LIBS, DEFINES, COMPILE_OPTIONS and "
              "DEPENDS are given there only")
    endif()
    get_property(T_SOURCES GLOBAL PROPERTY IMALLOC_C_TEST_${owner}_SOURCES)
    get_property(T_LIBS GLOBAL PROPERTY IMALLOC_C_TEST_${owner}_LIBS)
  else()
    if(NOT T_SOURCES)
      message(FATAL_ERROR "imalloc_c_test(${T_NAME}): no SOURCES for ${T_TARGET}")
    endif()
    add_executable(${T_TARGET} ${T_SOURCES})
    target_include_directories(${T_TARGET} PRIVATE
      ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests/support)
    if(T_LIBS)
      target_link_libraries(${T_TARGET} PRIVATE ${T_LIBS})
    endif()
    if(T_DEFINES)
      target_compile_definitions(${T_TARGET} PRIVATE ${T_DEFINES})
    endif()
    if(T_COMPILE_OPTIONS)
      target_compile_options(${T_TARGET} PRIVATE ${T_COMPILE_OPTIONS})
    endif()
    if(T_DEPENDS)
      add_dependencies(${T_TARGET} ${T_DEPENDS})
    endif()
    set_property(GLOBAL PROPERTY IMALLOC_C_TARGET_${T_TARGET} ${name})
  endif()

  add_test(NAME ${name} COMMAND ${T_TARGET} ${T_ARGS})
  if(T_ENV)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "${T_ENV}")
  endif()
  if(T_TIMEOUT)
    set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT})
  endif()
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
  if(T_PROPERTIES)
    set_tests_properties(${name} PROPERTIES ${T_PROPERTIES})
  endif()
  if(NOT DEFINED T_VARIANTS)
    set(T_VARIANTS ${IMALLOC_C_TEST_VARIANTS})
  elseif(T_VARIANTS STREQUAL "NONE")
    set(T_VARIANTS "")
  endif()

  set_property(GLOBAL APPEND PROPERTY IMALLOC_C_TESTS ${name})
  foreach(field TARGET SOURCES LIBS ARGS ENV LABELS VARIANTS)
    set_property(GLOBAL PROPERTY IMALLOC_C_TEST_${name}_${field} "${T_${field}}")
  endforeach()
endfunction()

# imalloc_c_test_write_record(FILE): the record as text, one line per test
# in the order added: its name, then the variants that run it again
# (tests/mutation/run reads it to run each C test on the sanitizer builds
# that CI runs it on, and on no other).
function(imalloc_c_test_write_record file)
  get_property(tests GLOBAL PROPERTY IMALLOC_C_TESTS)
  set(text "")
  foreach(t ${tests})
    get_property(variants GLOBAL PROPERTY IMALLOC_C_TEST_${t}_VARIANTS)
    string(REPLACE ";" " " variants "${variants}")
    string(APPEND text "${t} ${variants}\n")
  endforeach()
  file(WRITE ${file} "${text}")
endfunction()
