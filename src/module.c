/*
** module.c: luaopen_imalloc_core, and the functions of the module itself
** (get, wrap, type, address, hresult).
**
** It makes the two metatables, the record of buffer-owned blocks, and the
** closures of every function of the binding with their upvalues
** (binding.h); the handle's methods are in handle.c, the buffer's in
** buffer.c, the spy's in spy.c.
*/
#include "luacompat.h"

#include <string.h>

#include "backend.h"
#include "binding.h"

/* IMalloc's vtable: IUnknown's three methods and its own six. */
#define IMALLOC_VTBL_SLOTS 9


/*
** {======================================================
** Module functions
** =======================================================
*/

/* imalloc.hresult(code): the message for an HRESULT code. */
static int l_hresult(lua_State *L) {
  lua_Integer code = imalloc_checkinteger(L, 1);
  luaL_argcheck(L, code >= 0 && code <= 0xFFFFFFFF, 1,
                "HRESULT out of range (0 to 0xFFFFFFFF)");
  imalloc_pushhresultmessage(L, (HRESULT)(uint32_t)code);
  return 1;
}

static int l_get(lua_State *L) {
  lua_Integer context = lua_isnoneornil(L, 1) ? 1 : imalloc_checkinteger(L, 1);
  imalloc_Handle *h;
  IMalloc *m = NULL;
  HRESULT hr;
  luaL_argcheck(L, context >= 0 && context <= 0xFFFFFFFF, 1,
                "context out of range (0 to 0xFFFFFFFF)");
  h = imalloc_newhandle(L);
  hr = imalloc_backend_getmalloc((DWORD)context, &m);
  if (hr < 0) return imalloc_pushhresult(L, hr);
  if (m == NULL) return imalloc_pushhresult(L, E_POINTER);
  h->com = m;
  h->refs = 1;
  return 1;
}

/* wrap(ptr [, "ffi"]): a handle for an IMalloc* from native code. It takes
** a light userdata only: an integer is too easy to get wrong for a pointer
** that is about to be called through. By default the vtable must lie in a
** loaded image and point into its code; "ffi" also lets in an object built
** at run time (backend.h). */
static int l_wrap(lua_State *L) {
  int top = lua_gettop(L);
  /* First: creating the handle may run the collector, and so finalizers
  ** that free blocks; nothing after the checks below may. */
  imalloc_Handle *h = imalloc_newhandle(L);
  IMalloc *m = (IMalloc *)lua_touserdata(L, 1);
  IMalloc *task = NULL;
  int flags = 0;
  if (top < 1) luaL_argerror(L, 1, "light userdata expected, got no value");
  if (lua_type(L, 1) != LUA_TLIGHTUSERDATA)
    luaL_typeerror(L, 1, "light userdata");
  luaL_argcheck(L, m != NULL, 1, "NULL interface pointer");
  if (top >= 2 && !lua_isnil(L, 2)) {
    /* a string, never a number turned into one */
    size_t len = 0;
    const char *mode =
        lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
    if (mode == NULL) luaL_typeerror(L, 2, "string");
    if (len != 3 || memcmp(mode, "ffi", 3) != 0)
      luaL_argerror(L, 2, lua_pushfstring(L, "invalid option '%s'", mode));
    flags = IMALLOC_WRAP_FFI;
  }
  /* A block of the task allocator, live or freed, is the kind of bad
  ** pointer a script can easily hold: refuse it before calling through it. */
  if (imalloc_backend_getmalloc(MEMCTX_TASK, &task) >= 0 && task != NULL) {
    int owned = task != m && imalloc_freed_didalloc(task, m) == 1;
    task->lpVtbl->Release(task);
    luaL_argcheck(L, !owned, 1, "pointer is a memory block, not an interface");
  }
  luaL_argcheck(L, imalloc_backend_isinterface(m, IMALLOC_VTBL_SLOTS, flags), 1,
                "pointer is not a COM interface (no vtable into loaded code)");
  m->lpVtbl->AddRef(m);
  h->com = m;
  h->refs = 1;
  return 1;
}

/* type(x): "IMalloc", "released IMalloc", "buffer", "released buffer" or
** fail, like io.type. */
static int l_type(lua_State *L) {
  imalloc_Handle *h;
  imalloc_Buffer *b;
  imalloc_checkany(L, 1);
  if ((h = imalloc_testhandle(L, 1, IMALLOC_SELFMT)) != NULL)
    lua_pushstring(L, h->com ? "IMalloc" : "released IMalloc");
  else if ((b = imalloc_testbuffer(L, 1, IMALLOC_OTHERMT)) != NULL)
    lua_pushstring(L, b->ptr ? "buffer" : "released buffer");
  else
    luaL_pushfail(L);
  return 1;
}

/* address(p): a pointer as an integer. */
static int l_address(lua_State *L) {
  if (!luacompat_pushunsigned(L, (uintptr_t)imalloc_checkpointer(L, 1)))
    luaL_error(L, "address beyond 2^53: no exact number for it in this Lua");
  return 1;
}

/* }====================================================== */


static const luaL_Reg module_functions[] = {
  {"get", l_get},
  {"wrap", l_wrap},
  {"type", l_type},
  {"address", l_address},
  {"hresult", l_hresult},
  {NULL, NULL}
};

/* Sets the functions `l` into the table on top of the stack, each with the
** binding's three upvalues (binding.h), given as stack indices, and records
** each closure's name, `prefix` and its key, for imalloc_argerror. */
static void setfuncs(lua_State *L, const luaL_Reg *l, int selfmt, int owned,
                     int othermt, const char *prefix) {
  lua_pushvalue(L, selfmt);
  lua_pushvalue(L, owned);
  lua_pushvalue(L, othermt);
  luaL_setfuncs(L, l, 3);
  lua_getfield(L, LUA_REGISTRYINDEX, IMALLOC_NAMES_KEY);
  for (; l->name != NULL; l++) {
    lua_getfield(L, -2, l->name);
    lua_pushfstring(L, "%s%s", prefix, l->name);
    lua_rawset(L, -3);
  }
  lua_pop(L, 1);
}

/* A metatable with its methods table as __index, which getmetatable and
** setmetatable cannot reach (__metatable, which answers `name`): without
** the debug library, a script cannot change a handle's finalizer or lend
** the metatable to another value. With it, the checks still hold
** (imalloc_testhandle). No __name: type errors name a handle or buffer by
** its tag (imalloc_typeerror), and every key of a metatable is one more a
** method call's lookup of __index may have to step over. */
static void newmetatable(lua_State *L, const char *key, const char *name) {
  /* not luaL_newmetatable, which adds __name (5.3 and later) */
  if (lua_getfield(L, LUA_REGISTRYINDEX, key) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 6);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, key);
  }
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__metatable");
  lua_newtable(L);
  lua_setfield(L, -2, "__index");
}

/* Pushes the value at the registry's `key`, made by `make` the first time:
** a second load (package.loaded cleared, require again) must see what the
** first made. */
static void pushshared(lua_State *L, const char *key,
                       void (*make)(lua_State *L)) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, key) != LUA_TNIL) return;
  lua_pop(L, 1);
  make(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, key);
}

/* The blocks owned by buffers of this Lua state (binding.h): the buffers
** of one load must see the blocks that buffers of another own. */
static void makeowned(lua_State *L) {
  imalloc_Owned *o =
      (imalloc_Owned *)lua_newuserdatauv(L, sizeof(imalloc_Owned), 1);
  o->count = 0;
  o->peak = 0;
  o->changes = 0;
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
}

/* The names of the binding's closures, of every load: closure -> name,
** weak, so that a load's closures go with it. */
static void makenames(lua_State *L) {
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
}

IMALLOC_EXPORT int luaopen_imalloc_core(lua_State *L);

IMALLOC_EXPORT int luaopen_imalloc_core(lua_State *L) {
  int handlemt, buffermt, owned;
  pushshared(L, IMALLOC_NAMES_KEY, makenames);
  lua_pop(L, 1);
  newmetatable(L, IMALLOC_HANDLE, "IMalloc");
  handlemt = lua_gettop(L);
  newmetatable(L, IMALLOC_BUFFER, "IMalloc buffer");
  buffermt = lua_gettop(L);
  pushshared(L, IMALLOC_OWNED_KEY, makeowned);
  owned = lua_gettop(L);

  lua_pushvalue(L, handlemt);
  setfuncs(L, imalloc_handle_metamethods, handlemt, owned, buffermt, "");
  lua_getfield(L, -1, "__index");
  setfuncs(L, imalloc_handle_methods, handlemt, owned, buffermt, "");
  lua_pop(L, 2);

  lua_pushvalue(L, buffermt);
  setfuncs(L, imalloc_buffer_metamethods, buffermt, owned, handlemt, "");
  lua_getfield(L, -1, "__index");
  setfuncs(L, imalloc_buffer_methods, buffermt, owned, handlemt, "");
  lua_pop(L, 2);

  luaL_newlibtable(L, module_functions);
  setfuncs(L, module_functions, handlemt, owned, buffermt, "imalloc.");
  /* The same functions again, closures of their own, for lua/imalloc.lua
  ** to export. A call Lua cannot name (pcall(imalloc.wrap, x)) is named by
  ** the loaded module that holds the closure; were it in both imalloc and
  ** imalloc.core, the name would depend on the hash order of
  ** package.loaded: 'imalloc.wrap' in one run, 'imalloc.core.wrap' in the
  ** next. */
  luaL_newlibtable(L, module_functions);
  setfuncs(L, module_functions, handlemt, owned, buffermt, "imalloc.");
  lua_setfield(L, -2, "api");
  lua_pushstring(L, imalloc_backend_name);
  lua_setfield(L, -2, "backend");
  lua_newtable(L);
  setfuncs(L, imalloc_spy_functions, handlemt, owned, buffermt, "imalloc.spy.");
  lua_setfield(L, -2, "spy");
  return 1;
}
