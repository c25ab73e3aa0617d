/*
** owned_record.c: the record of the blocks that buffers own (src/buffer.c,
** made by src/module.c) in a Lua state whose allocator never hands out
** zeroed memory, so that a field the binding forgets to set shows.
**
**   owned_record CPATH LPATH
**
** The record's table is made anew only once most of the blocks it held are
** gone, 64 at least (shrinkowned): a buffer freed in a new state leaves it
** as it is.
*/
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "lua_state.h"

/* Lua's allocator, with every new byte 0x25: a count read from such a
** byte is large and positive. */
static void *dirty_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  size_t old = ptr ? osize : 0;  /* without ptr, osize is a type tag */
  void *q;
  (void)ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  q = realloc(ptr, nsize);
  if (q != NULL && nsize > old) memset((char *)q + old, 0x25, nsize - old);
  return q;
}

static const char record_kept[] =
  "local imalloc = require 'imalloc'\n"
  "local owned = debug.getregistry()['imalloc.owned']\n"
  "local t = debug.getuservalue(owned, 1)\n"
  "assert(type(t) == 'table', 'no record table')\n"
  "local b = assert(imalloc.get():buffer(8))\n"
  "b:free()\n"
  "assert(debug.getuservalue(owned, 1) == t,\n"
  "       'the record table made anew after one buffer of one')\n";

int main(int argc, char **argv) {
  const char *cpath, *lpath;
  lua_State *L;
  if (!lua_test_args(argc, argv, &cpath, &lpath, NULL)) return 2;
  L = lua_newstate(dirty_alloc, NULL);
  if (!L) {
    printf("no memory for a Lua state\n");
    return 1;
  }
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, cpath);
  lua_setfield(L, -2, "cpath");
  lua_pushstring(L, lpath);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  if (luaL_loadbuffer(L, record_kept, strlen(record_kept), "record_kept") != LUA_OK ||
      lua_pcall(L, 0, 0, 0) != LUA_OK) {
    printf("record_kept: %s\n", lua_tostring(L, -1));
    CHECK(0);
  } else {
    CHECK(1);
  }
  lua_close(L);
  return check_report();
}
