/*
 * winselftest: a small Lua C module for .ci/win/selftest. It checks that a module
 * cross-built with cmake/mingw-w64-x86_64.cmake loads into the Windows Lua under
 * Wine, and that ole32's task allocator can be reached the way imalloc reaches it:
 * LoadLibraryA("ole32.dll") + GetProcAddress("CoGetMalloc") at run time.
 */
#define COBJMACROS
#include <windows.h>
#include <objbase.h>

#include "lua.h"
#include "lauxlib.h"

typedef HRESULT(WINAPI *cogetmalloc_fn)(DWORD, IMalloc **);

/* add(a, b): a + b, as integers. */
static int st_add(lua_State *L) {
  lua_Integer a = luaL_checkinteger(L, 1);
  lua_Integer b = luaL_checkinteger(L, 2);
  lua_pushinteger(L, a + b);
  return 1;
}

/*
 * cogetmalloc(n): a table {hr=, size=, didalloc=, didalloc_other=} from
 * CoGetMalloc(1, &m), m->Alloc(n), GetSize, DidAlloc on that block and on a stack
 * address, then Free and Release; or nil, message on a failure to load ole32.
 */
static int st_cogetmalloc(lua_State *L) {
  SIZE_T n = (SIZE_T)luaL_checkinteger(L, 1);
  HMODULE ole32 = LoadLibraryA("ole32.dll");
  cogetmalloc_fn get;
  IMalloc *m = NULL;
  HRESULT hr;
  void *p;
  int local = 0;
  if (ole32 == NULL) {
    lua_pushnil(L);
    lua_pushfstring(L, "LoadLibraryA(ole32.dll) failed: %d", (int)GetLastError());
    return 2;
  }
  get = (cogetmalloc_fn)(void (*)(void))GetProcAddress(ole32, "CoGetMalloc");
  if (get == NULL) {
    FreeLibrary(ole32);
    lua_pushnil(L);
    lua_pushliteral(L, "GetProcAddress(CoGetMalloc) failed");
    return 2;
  }
  hr = get(1 /* MEMCTX_TASK */, &m);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)(unsigned long)hr);
  lua_setfield(L, -2, "hr");
  if (SUCCEEDED(hr)) {
    p = IMalloc_Alloc(m, n);
    lua_pushboolean(L, p != NULL);
    lua_setfield(L, -2, "allocated");
    if (p != NULL) {
      lua_pushinteger(L, (lua_Integer)IMalloc_GetSize(m, p));
      lua_setfield(L, -2, "size");
      lua_pushinteger(L, IMalloc_DidAlloc(m, p));
      lua_setfield(L, -2, "didalloc");
      lua_pushinteger(L, IMalloc_DidAlloc(m, &local));
      lua_setfield(L, -2, "didalloc_other");
      IMalloc_Free(m, p);
    }
    IMalloc_Release(m);
  }
  FreeLibrary(ole32);
  return 1;
}

/* crash(): an access violation, as a use-after-free in a module might cause. */
static int st_crash(lua_State *L) {
  volatile int *volatile p = NULL;
  lua_pushinteger(L, *p);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"add", st_add},
  {"crash", st_crash},
  {"cogetmalloc", st_cogetmalloc},
  {NULL, NULL}
};

__declspec(dllexport) int luaopen_winselftest(lua_State *L);

int luaopen_winselftest(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
