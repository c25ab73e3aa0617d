/*
** imalloc.h: for C modules that share the task allocator with Lua scripts.
**
** In the manner of LUA_FILEHANDLE and luaL_Stream: the handle's metatable
** name and layout are public, so another module can take the IMalloc* out
** of a handle on its stack, or push a handle for one it has, with no
** link-time dependency on imalloc. Everything here is static inline.
**
**   IMalloc *m = imalloc_checkmalloc(L, 1);   -- raises unless a live handle
**   void *p = m->lpVtbl->Alloc(m, 100);       -- the one process allocator
**   imalloc_pushmalloc(L, m);                 -- a new handle, its own AddRef
*/
#ifndef IMALLOC_H
#define IMALLOC_H

#include "lua.h"
#include "lauxlib.h"

#include "com_abi.h"

/* The registry key of the handle's metatable. */
#define IMALLOC_HANDLE "imalloc.IMalloc"

/* The first field of a handle and of a buffer: which of the two it is. A
** check reads it only in a full userdata of exactly the struct's size, so
** neither a metatable a script moved, stripped or lent (debug.setmetatable)
** nor another module's userdata can pass for one. */
#define IMALLOC_HANDLE_TAG 0x494D6148u  /* "IMaH" */
#define IMALLOC_BUFFER_TAG 0x494D6142u  /* "IMaB" */

typedef struct imalloc_Handle {
  uint32_t tag;      /* IMALLOC_HANDLE_TAG */
  int checks;        /* refuse pointers that DidAlloc disowns (default 1) */
  IMalloc *com;      /* the interface; NULL once the handle is released */
  lua_Integer refs;  /* references this handle owns, given back by __gc */
  void *owned;       /* the binding's: its Lua state's buffer-owned blocks */
} imalloc_Handle;

/* The registry key of a buffer's metatable: a block of the task allocator
** owned by Lua, freed by __gc / __close unless detached. */
#define IMALLOC_BUFFER "imalloc.Buffer"

typedef struct imalloc_Buffer {
  uint32_t tag;  /* IMALLOC_BUFFER_TAG */
  int checks;    /* re-check the block before each use: the checks of the
                    handle that made the buffer */
  void *ptr;     /* the block; NULL once freed or detached */
  size_t size;   /* its size in bytes */
  IMalloc *com;  /* the allocator, kept alive by the buffer's own AddRef */
} imalloc_Buffer;

/* The size of the full userdata at `idx`, 0 for any other value. */
static inline size_t imalloc_udatasize(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA) return 0;
#if LUA_VERSION_NUM >= 502
  return (size_t)lua_rawlen(L, idx);
#else
  return (size_t)lua_objlen(L, idx);
#endif
}

/* The full userdata at `idx` if it is `size` bytes long and its first
** field is `tag`, else NULL: one of this module's objects of that kind,
** whatever metatable it has now. */
static inline void *imalloc_tagged(lua_State *L, int idx, size_t size,
                                   uint32_t tag) {
  void *u;
  if (imalloc_udatasize(L, idx) != size) return NULL;
  u = lua_touserdata(L, idx);
  return *(const uint32_t *)u == tag ? u : NULL;
}

/* The object at `idx` if it is a full userdata of `size` bytes whose first
** field is `tag` and whose metatable is the registry's `key`; else NULL.
** Written with calls every Lua from 5.1 to 5.4 has (no luaL_testudata in
** 5.1), so that this header needs nothing but lua.h and lauxlib.h. */
static inline void *imalloc_toobject_any(lua_State *L, int idx, size_t size,
                                         uint32_t tag, const char *key) {
  void *u = imalloc_tagged(L, idx, size, tag);
  if (u == NULL || !lua_getmetatable(L, idx)) return NULL;
  luaL_getmetatable(L, key);
  if (!lua_rawequal(L, -1, -2)) u = NULL;
  lua_pop(L, 2);
  return u;
}

/* The handle at `idx`, live or released, or NULL for anything else. */
static inline imalloc_Handle *imalloc_tohandle_any(lua_State *L, int idx) {
  return (imalloc_Handle *)imalloc_toobject_any(
      L, idx, sizeof(imalloc_Handle), IMALLOC_HANDLE_TAG, IMALLOC_HANDLE);
}

/* The buffer at `idx`, live or released, or NULL for anything else. */
static inline imalloc_Buffer *imalloc_tobuffer_any(lua_State *L, int idx) {
  return (imalloc_Buffer *)imalloc_toobject_any(
      L, idx, sizeof(imalloc_Buffer), IMALLOC_BUFFER_TAG, IMALLOC_BUFFER);
}

/* The IMalloc* of a live handle at `idx`, or NULL for anything else. The
** reference stays the handle's: AddRef it to keep it beyond the handle. */
static inline IMalloc *imalloc_tomalloc(lua_State *L, int idx) {
  imalloc_Handle *h = imalloc_tohandle_any(L, idx);
  return h ? h->com : NULL;
}

/* The same, raising a Lua error that names argument `arg`. */
static inline IMalloc *imalloc_checkmalloc(lua_State *L, int arg) {
  IMalloc *m = imalloc_tomalloc(L, arg);
  if (m == NULL) {
    if (imalloc_tohandle_any(L, arg))
      luaL_argerror(L, arg, "attempt to use a released IMalloc");
#if LUA_VERSION_NUM >= 504 || defined(luaL_typeerror)
    luaL_typeerror(L, arg, "IMalloc");
#else
    /* Lua before 5.4 without a compatibility header: no luaL_typeerror */
    luaL_argerror(L, arg, lua_pushfstring(L, "IMalloc expected, got %s",
                                          luaL_typename(L, arg)));
#endif
  }
  return m;
}

/* Pushes a new handle that owns one reference of its own to `m` (taken
** with AddRef), through require("imalloc.core").wrap. Raises if the module
** cannot be loaded. */
static inline void imalloc_pushmalloc(lua_State *L, IMalloc *m) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "imalloc.core");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "wrap");
  lua_remove(L, -2);
  lua_pushlightuserdata(L, (void *)m);
  lua_call(L, 1, 1);
}

#endif
