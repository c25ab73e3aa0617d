/*
 * Stand-in for lua-term's term.core, built by .ci/win/build-deps.sh only when
 * neither the Debian source package nor its upstream tarball can be fetched.
 * busted calls one function: term.isatty(io.stdout).
 */
#include <io.h>
#include <stdio.h>

#include "lua.h"
#include "lauxlib.h"

/* term.isatty(file): true when the file handle is a console. */
static int term_isatty(lua_State *L) {
  luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  luaL_argcheck(L, p->closef != NULL, 1, "attempt to use a closed file");
  lua_pushboolean(L, _isatty(_fileno(p->f)) != 0);
  return 1;
}

__declspec(dllexport) int luaopen_term_core(lua_State *L);

int luaopen_term_core(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, term_isatty);
  lua_setfield(L, -2, "isatty");
  return 1;
}
