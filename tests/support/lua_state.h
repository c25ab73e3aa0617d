/*
** lua_state.h: a Lua state for the C tests that load imalloc: the
** standard libraries, and package.cpath / package.path as given on the
** test's command line (this build's modules, the tree's Lua files).
*/
#ifndef IMALLOC_TESTS_LUA_STATE_H
#define IMALLOC_TESTS_LUA_STATE_H

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

/* A new state, or NULL when there is no memory for one. */
static inline lua_State *new_lua_state(const char *cpath, const char *lpath) {
  lua_State *L = luaL_newstate();
  if (!L) return NULL;
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, cpath);
  lua_setfield(L, -2, "cpath");
  lua_pushstring(L, lpath);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  return L;
}

#endif
