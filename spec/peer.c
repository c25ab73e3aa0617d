/*
** peer.c: a second native module, built only for the tests, that shares
** the task allocator with Lua the way a COM API would: it frees blocks
** that Lua allocated and hands Lua blocks that Lua must free.
**
** It links nothing of imalloc: it finds the allocator through imalloc.h
** (the IMalloc* inside a handle) and, on Windows, also calls ole32's
** CoTaskMemAlloc / CoTaskMemFree directly, as any Windows module would.
*/
#include "luacompat.h"

#include <string.h>


#include "imalloc.h"

/* take(m, p): takes ownership of a NUL-terminated string that Lua
** allocated, reads it, frees it with the task allocator; returns what it
** read. */
static int p_take(lua_State *L) {
  IMalloc *m = imalloc_checkmalloc(L, 1);
  char *s = (char *)lua_touserdata(L, 2);
  luaL_argcheck(L, s != NULL && m->lpVtbl->DidAlloc(m, s) == 1, 2,
                "not a block of the task allocator");
  lua_pushstring(L, s);
  m->lpVtbl->Free(m, s);
  return 1;
}

/* wtake(m, p): the same for a UTF-16 string (an LPOLESTR): returns its
** length in UTF-16 units and its units as a table, then frees it. */
static int p_wtake(lua_State *L) {
  IMalloc *m = imalloc_checkmalloc(L, 1);
  unsigned char *w = (unsigned char *)lua_touserdata(L, 2);
  lua_Integer n = 0;
  luaL_argcheck(L, w != NULL && m->lpVtbl->DidAlloc(m, w) == 1, 2,
                "not a block of the task allocator");
  lua_newtable(L);
  while (w[2 * n] | w[2 * n + 1]) {
    lua_pushinteger(L, w[2 * n] | (w[2 * n + 1] << 8));
    lua_rawseti(L, -2, ++n);
  }
  m->lpVtbl->Free(m, w);
  lua_pushinteger(L, n);
  lua_insert(L, -2);
  return 2;
}

/* give(m, s): a new block holding s and a NUL, for Lua to free. */
static int p_give(lua_State *L) {
  IMalloc *m = imalloc_checkmalloc(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  char *p = (char *)m->lpVtbl->Alloc(m, len + 1);
  if (p == NULL) return luaL_error(L, "out of memory");
  memcpy(p, s, len + 1);
  lua_pushlightuserdata(L, p);
  return 1;
}

/* handle(m): a new handle pushed by imalloc_pushmalloc. */
static int p_handle(lua_State *L) {
  imalloc_pushmalloc(L, imalloc_checkmalloc(L, 1));
  return 1;
}

/* malloc_of(h): the IMalloc* of a handle as imalloc_tomalloc sees it, or
** nil for anything else. */
static int p_malloc_of(lua_State *L) {
  IMalloc *m = imalloc_tomalloc(L, 1);
  if (m) lua_pushlightuserdata(L, m); else lua_pushnil(L);
  return 1;
}

/* buffer_ptr(b): the block of a buffer through the public layout, or nil
** for anything that is not a buffer. */
static int p_buffer_ptr(lua_State *L) {
  imalloc_Buffer *b = imalloc_tobuffer_any(L, 1);
  if (b) lua_pushlightuserdata(L, b->ptr); else lua_pushnil(L);
  return 1;
}

#ifdef _WIN32
/* What a Windows module does without imalloc at all: ole32's functions. */
static int p_cotaskmem_take(lua_State *L) {
  char *s = (char *)lua_touserdata(L, 1);
  luaL_argcheck(L, s != NULL, 1, "pointer expected");
  lua_pushstring(L, s);
  CoTaskMemFree(s);
  return 1;
}

static int p_cotaskmem_give(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  char *p = (char *)CoTaskMemAlloc(len + 1);
  if (p == NULL) return luaL_error(L, "out of memory");
  memcpy(p, s, len + 1);
  lua_pushlightuserdata(L, p);
  return 1;
}
#endif

static const luaL_Reg peer[] = {
  {"take", p_take},
  {"wtake", p_wtake},
  {"give", p_give},
  {"handle", p_handle},
  {"malloc_of", p_malloc_of},
  {"buffer_ptr", p_buffer_ptr},
#ifdef _WIN32
  {"cotaskmem_take", p_cotaskmem_take},
  {"cotaskmem_give", p_cotaskmem_give},
#endif
  {NULL, NULL}
};

IMALLOC_EXPORT int luaopen_imalloc_peer(lua_State *L);

IMALLOC_EXPORT int luaopen_imalloc_peer(lua_State *L) {
  luaL_newlib(L, peer);
  return 1;
}
