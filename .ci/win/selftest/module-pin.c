/*
** module-pin.c: a Windows host of Lua 5.4 for the test wine-module-pin
** (selftest/module-pin.sh): whether imalloc/core.dll is still loaded after
** the Lua state that loaded it is closed. Lua's lua_close unloads the C
** modules it loaded (FreeLibrary), unless one pinned itself:
** src/backend_win32.c pins the module when ole32 took its spy, which ole32
** would go on calling, and only then.
**
**   module-pin.exe LUA_PATH LUA_CPATH EXPECT
**
** It opens a state, requires imalloc, calls spy.start, and closes the state.
** EXPECT:
**   pinned    spy.start succeeds (Wine's own ole32): the DLL stays loaded;
**   unloaded  spy.start answers E_OUTOFMEMORY (fake-ole32.c built with
**             FAKE_SPY_FAILS): nothing was registered, nothing pinned, and
**             lua_close unloads the DLL, as it does any C module.
** The DLL is looked for by the file Lua loaded it from, which must be loaded
** before lua_close (so that "unloaded" cannot come from a wrong name).
** Prints one line, "module pin (EXPECT): ...", and exits 0 when it saw what
** EXPECT says; 1 otherwise, 2 on a usage error.
*/
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <stdio.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

/* spy.start's answer, and where the module's file is (package.searchpath
** finds what require loaded: the same search). */
static const char chunk[] =
    "local imalloc = require 'imalloc'\n"
    "local ok, msg, code = imalloc.spy.start()\n"
    "return ok, code, msg,\n"
    "  assert(package.searchpath('imalloc.core', package.cpath))\n";

static void set_path(lua_State *L, const char *field, const char *value) {
  lua_getglobal(L, "package");
  lua_pushstring(L, value);
  lua_setfield(L, -2, field);
  lua_pop(L, 1);
}

int main(int argc, char **argv) {
  const char *expect;
  char file[MAX_PATH], answer[256];
  int pin, registered, loaded;
  lua_Integer code;
  lua_State *L;
  if (argc != 4 || (strcmp(argv[3], "pinned") != 0 &&
                    strcmp(argv[3], "unloaded") != 0)) {
    fprintf(stderr, "usage: module-pin.exe LUA_PATH LUA_CPATH pinned|unloaded\n");
    return 2;
  }
  expect = argv[3];
  pin = strcmp(expect, "pinned") == 0;
  L = luaL_newstate();
  if (L == NULL) {
    printf("FAIL: no Lua state\n");
    return 1;
  }
  luaL_openlibs(L);
  set_path(L, "path", argv[1]);
  set_path(L, "cpath", argv[2]);
  if (luaL_dostring(L, chunk) != LUA_OK) {
    printf("FAIL: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  registered = lua_toboolean(L, -4);
  code = lua_tointeger(L, -3);
  if (registered)
    snprintf(answer, sizeof answer, "true");
  else
    snprintf(answer, sizeof answer, "0x%08lX (%s)",
             (unsigned long)code, lua_tostring(L, -2));
  snprintf(file, sizeof file, "%s", lua_tostring(L, -1));
  /* what the check after lua_close asks must see the loaded DLL now */
  if (GetModuleHandleA(file) == NULL) {
    printf("FAIL: %s is not loaded by that name (error %lu)\n", file,
           (unsigned long)GetLastError());
    lua_close(L);
    return 1;
  }
  lua_close(L);  /* unloads the C modules it loaded, unless pinned */
  loaded = GetModuleHandleA(file) != NULL;
  printf("module pin (%s): spy.start answered %s; %s %s after lua_close\n",
         expect, answer, file, loaded ? "still loaded" : "unloaded");
  /* spy.start must have answered as the ole32 of EXPECT does */
  if (pin ? !registered : code != (lua_Integer)0x8007000E) {
    printf("FAIL: spy.start should %s\n",
           pin ? "succeed" : "answer E_OUTOFMEMORY (0x8007000E)");
    return 1;
  }
  if (loaded != pin) {
    printf("FAIL: the module should be %s\n", expect);
    return 1;
  }
  return 0;
}
