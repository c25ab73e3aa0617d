/*
** header_alone.c: a C module as a user writes one, including only
** imalloc.h. Compiled against the headers `cmake --install` or `luarocks
** make` installed (and Lua's), as C99 with warnings as errors: what
** imalloc.h needs must be installed beside it.
*/
#include "imalloc.h"

int luaopen_header_alone(lua_State *L);

/* take(handle, p): frees p with the handle's allocator. */
static int take(lua_State *L) {
  IMalloc *m = imalloc_checkmalloc(L, 1);
  m->lpVtbl->Free(m, lua_touserdata(L, 2));
  return 0;
}

/* again(handle): a new handle on the same allocator. */
static int again(lua_State *L) {
  imalloc_pushmalloc(L, imalloc_checkmalloc(L, 1));
  return 1;
}

int luaopen_header_alone(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, take);
  lua_setfield(L, -2, "take");
  lua_pushcfunction(L, again);
  lua_setfield(L, -2, "again");
  return 1;
}
