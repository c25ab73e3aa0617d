/* A stand-in for lua-system's system.core (whose Debian source the mirror
** does not serve) with only what busted calls: gettime, monotime, sleep.
** POSIX; built for the 32-bit Linux Lua of .ci/m32. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <time.h>
#include "lua.h"
#include "lauxlib.h"

static double seconds(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int s_gettime(lua_State *L) {
  lua_pushnumber(L, seconds(CLOCK_REALTIME));
  return 1;
}

static int s_monotime(lua_State *L) {
  lua_pushnumber(L, seconds(CLOCK_MONOTONIC));
  return 1;
}

static int s_sleep(lua_State *L) {
  double t = luaL_checknumber(L, 1);
  struct timespec ts;
  if (t < 0) t = 0;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  return 0;
}

static const luaL_Reg functions[] = {
  {"gettime", s_gettime},
  {"monotime", s_monotime},
  {"sleep", s_sleep},
  {NULL, NULL}
};

int luaopen_system_core(lua_State *L);

int luaopen_system_core(lua_State *L) {
  luaL_newlib(L, functions);
  return 1;
}
