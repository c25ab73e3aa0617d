/* hello.exe: proves CMAKE_CROSSCOMPILING_EMULATOR runs a cross-built test under Wine. */
#include <stdio.h>

int main(void) {
  puts("hello from Windows");
  return 0;
}
