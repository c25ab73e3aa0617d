/*
** module_pin.c: imalloc.core stays loaded after every Lua state that
** loaded it is closed, because blocks, thread caches and a registered spy
** may outlive them (src/backend_posix.c pins it).
**
**   module_pin CPATH LPATH
**
** The first use of the allocator pins the module. A module that does not
** pin itself (the specs' test kit, found through the same CPATH) shows
** that the check can fail: Lua's lua_close unloads it.
*/
#define _GNU_SOURCE  /* RTLD_NOLOAD */
#include "check.h"

#include <dlfcn.h>
#include <stdio.h>

#include "lua.h"
#include "lauxlib.h"

#include "lua_state.h"

static const char *g_cpath, *g_lpath;

/* Runs `code` in a new state; returns the file of module `name`, found
** through the CPATH (a static buffer), or NULL. */
static const char *run_and_close(const char *code, const char *name) {
  static char file[4096];
  lua_State *L = new_lua_state(g_cpath, g_lpath);
  const char *found;
  if (!L) return NULL;
  if (luaL_dostring(L, code) != LUA_OK) {
    printf("FAIL: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  found = lua_module_file(L, name);
  if (found) snprintf(file, sizeof file, "%s", found);
  lua_close(L);  /* unloads the C modules it loaded, unless pinned */
  return found ? file : NULL;
}

static int still_loaded(const char *file) {
  void *h = dlopen(file, RTLD_NOW | RTLD_NOLOAD);
  if (h) dlclose(h);  /* the reference RTLD_NOLOAD took */
  return h != NULL;
}

int main(int argc, char **argv) {
  const char *kit, *core;
  if (!lua_test_args(argc, argv, &g_cpath, &g_lpath, NULL)) return 2;

  kit = run_and_close("require 'imalloc_testkit'", "imalloc_testkit");
  CHECK(kit != NULL);
  if (kit) CHECK(!still_loaded(kit));  /* unpinned: gone with its state */

  core = run_and_close("local imalloc = require 'imalloc'\n"
                       "local m = assert(imalloc.get())\n"
                       "m:free(assert(m:alloc(10)))\n"
                       "m:release()", "imalloc.core");
  CHECK(core != NULL);
  if (core) CHECK(still_loaded(core));
  return check_report();
}
