# cmake -DEXPECT=REGEX -P cmake/expect.cmake COMMAND [ARG...]: runs COMMAND
# and passes only when it exits 0 AND its output (stdout and stderr) matches
# the regular expression REGEX. ctest's PASS_REGULAR_EXPRESSION alone
# replaces the exit status: a program that printed the expected line and
# then failed would pass. Prints the output either way.
# The arguments after the script's own path, each kept whole: a ";" in one
# (a Lua chunk, a search path) is escaped, or the list would split it.
set(command)
set(after OFF)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE 1 ${last})
  set(arg "${CMAKE_ARGV${i}}")
  if(after STREQUAL "ON")
    string(REPLACE ";" "\\;" arg "${arg}")
    list(APPEND command "${arg}")
  elseif(after STREQUAL "SCRIPT")
    set(after ON)  # this one is the script
  elseif(arg STREQUAL "-P")
    set(after SCRIPT)
  endif()
endforeach()
if(NOT command)
  message(FATAL_ERROR "expect.cmake: no command to run")
endif()
execute_process(COMMAND ${command}
  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")
if(NOT status STREQUAL "0")
  message(FATAL_ERROR "expect.cmake: the command exited with ${status}")
endif()
if(NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "expect.cmake: no output matched: ${EXPECT}")
endif()
