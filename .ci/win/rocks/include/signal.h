/* The one declaration MSVC's <signal.h> has that Wine's lacks (Lua's
 * lstate.h needs it): first on the MSVC stand-in's INCLUDE path
 * (.ci/win/rocks/msvc.sh), then Wine's header. */
#ifndef IMALLOC_STANDIN_SIGNAL_H
#define IMALLOC_STANDIN_SIGNAL_H
#include_next <signal.h>
typedef int sig_atomic_t;
#endif
