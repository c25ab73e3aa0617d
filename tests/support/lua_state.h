/*
** lua_state.h: a Lua state for the C tests that load imalloc: the
** standard libraries, and package.cpath / package.path as given on the
** test's command line (this build's modules, the tree's Lua files), and
** that command line read.
*/
#ifndef IMALLOC_TESTS_LUA_STATE_H
#define IMALLOC_TESTS_LUA_STATE_H

#include <stdio.h>
#include <stdlib.h>

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

/* The file package.searchpath finds for the C module NAME on
** package.cpath, or NULL; it leaves the package table and that answer on
** the stack. */
static inline const char *lua_module_file(lua_State *L, const char *name) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchpath");
  lua_pushstring(L, name);
  lua_getfield(L, -3, "cpath");
  lua_call(L, 2, 1);
  return lua_tostring(L, -1);
}

/* The command line NAME CPATH LPATH, and [ROUNDS] when rounds is not NULL
** (*rounds kept when it is not given). stdout is line-buffered (a crash
** loses no line printed before it). Prints the usage and returns 0 when
** the line is not that: main returns 2 then. */
static inline int lua_test_args(int argc, char **argv, const char **cpath,
                                const char **lpath, long *rounds) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 3 || argc > (rounds ? 4 : 3)) {
    fprintf(stderr, "usage: %s CPATH LPATH%s\n", argv[0],
            rounds ? " [rounds]" : "");
    return 0;
  }
  *cpath = argv[1];
  *lpath = argv[2];
  if (rounds && argc > 3) *rounds = atol(argv[3]);
  return 1;
}

#endif
