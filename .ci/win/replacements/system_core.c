/*
 * Stand-in for luasystem's system.core (Debian package lua-system), built by
 * .ci/win/build-deps.sh only when the Debian source package cannot be fetched.
 * It has the three functions busted calls (busted/core.lua: gettime, monotime,
 * sleep), with luasystem 0.2.1's signatures, for Windows only.
 */
#include <windows.h>

#include "lua.h"
#include "lauxlib.h"

/* Seconds between 1601-01-01 (FILETIME epoch) and 1970-01-01, in 100 ns units. */
#define EPOCH_DIFF 116444736000000000ULL

/* system.gettime(): wall-clock time in seconds since the Unix epoch. */
static int sys_gettime(lua_State *L) {
  FILETIME ft;
  ULARGE_INTEGER t;
  GetSystemTimeAsFileTime(&ft);
  t.LowPart = ft.dwLowDateTime;
  t.HighPart = ft.dwHighDateTime;
  lua_pushnumber(L, (lua_Number)(t.QuadPart - EPOCH_DIFF) / 1e7);
  return 1;
}

/* system.monotime(): seconds from an arbitrary start, never going back. */
static int sys_monotime(lua_State *L) {
  LARGE_INTEGER count, freq;
  QueryPerformanceFrequency(&freq);
  QueryPerformanceCounter(&count);
  lua_pushnumber(L, (lua_Number)count.QuadPart / (lua_Number)freq.QuadPart);
  return 1;
}

/* system.sleep(seconds): returns nothing. */
static int sys_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  DWORD ms = 0;
  if (s > 0) {
    lua_Number m = s * 1000.0 + 0.5;
    ms = m >= 4294967294.0 ? 4294967294UL : (DWORD)m; /* below INFINITE */
  }
  Sleep(ms);
  return 0;
}

static const luaL_Reg funcs[] = {
  {"gettime", sys_gettime},
  {"monotime", sys_monotime},
  {"sleep", sys_sleep},
  {NULL, NULL}
};

__declspec(dllexport) int luaopen_system_core(lua_State *L);

int luaopen_system_core(lua_State *L) {
  luaL_newlib(L, funcs);
  lua_pushliteral(L, "LuaSystem 0.2.1 (imalloc .ci/win stand-in)");
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
