/*
** owned_record.c: the record of the blocks that buffers own (src/buffer.c,
** made by src/module.c) in a Lua state whose allocator never hands out
** zeroed memory, so that a field the binding forgets to set shows.
**
**   owned_record CPATH LPATH
**
** The record's table is made anew once fewer than a quarter of the blocks
** it held at most, 64 at least, are left (shrinkowned), not before: a
** buffer freed in a new state leaves it as it is, and so do 63 freed.
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
  "       'the record table made anew after one buffer of one')\n"
  "local m = imalloc.get()\n"
  "local bs = {}\n"
  "for i = 1, 63 do bs[i] = assert(m:buffer(8)) end\n"
  "for i = 1, 63 do bs[i]:free() end\n"
  "assert(debug.getuservalue(owned, 1) == t,\n"
  "       'made anew after a peak of 63 records, fewer than 64')\n"
  "for i = 1, 64 do bs[i] = assert(m:buffer(8)) end\n"
  "for i = 1, 48 do bs[i]:free() end  -- 16 of 64: not below a quarter\n"
  "assert(debug.getuservalue(owned, 1) == t, 'made anew at a quarter')\n"
  "bs[49]:free()\n"
  "assert(debug.getuservalue(owned, 1) ~= t,\n"
  "       'the record table kept after most of its blocks went')\n"
  "assert(not pcall(m.free, m, bs[50]:ptr()), 'a record lost')\n"
  "local t2 = debug.getuservalue(owned, 1)\n"
  "bs[51]:free()  -- 14 of a new peak of 15: not below a quarter\n"
  "assert(debug.getuservalue(owned, 1) == t2,\n"
  "       'made anew again at once: the peak was not reset')\n";

/* A finalizer that runs while the record's table is being made anew (at
** its one allocation) frees a buffer, which makes the table anew within
** (nested), and makes a buffer, recorded in that newer table: the outer
** remake must then be given up, or the new buffer's block drops out of
** the record and m:free frees it under the buffer. The collector is made
** to run a whole cycle, finalizers included, at the first allocation after
** the finalizer's object is dropped (Lua 5.4's incremental parameters: no
** pause, the largest step), which is that remake's. */
static const char finalizer_in_remake[] =
  "local imalloc = require 'imalloc'\n"
  "local m = imalloc.get()\n"
  "local bs = {}\n"
  "for i = 1, 64 do bs[i] = assert(m:buffer(8)) end\n"
  "local bx = assert(m:buffer(8))  -- 65 records, the peak\n"
  "for i = 1, 49 do bs[i]:free() end  -- 16: not below 65 // 4\n"
  "local keep\n"
  "local f = setmetatable({}, { __gc = function()\n"
  "  bx:free()  -- 14 records: made anew within\n"
  "  keep = assert(m:buffer(8))\n"
  "end })\n"
  "collectgarbage('incremental', 1, 1000, 40)\n"
  "collectgarbage()\n"
  "f = nil\n"
  "bs[50]:free()  -- 15, below 16: the table made anew, f's finalizer within\n"
  "assert(keep, 'the finalizer did not run within the remake')\n"
  "assert(not pcall(m.free, m, keep:ptr()),\n"
  "       'a buffer made by a finalizer during a remake lost its record')\n"
  "collectgarbage('incremental', 200, 100, 13)\n";

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
  L = new_lua_state(cpath, lpath);
  if (!L) {
    printf("no memory for a Lua state\n");
    return 1;
  }
  if (luaL_loadbuffer(L, finalizer_in_remake, strlen(finalizer_in_remake),
                      "finalizer_in_remake") != LUA_OK ||
      lua_pcall(L, 0, 0, 0) != LUA_OK) {
    printf("finalizer_in_remake: %s\n", lua_tostring(L, -1));
    CHECK(0);
  } else {
    CHECK(1);
  }
  lua_close(L);
  return check_report();
}
