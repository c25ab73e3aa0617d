/*
** noop.c: the floor of the binding's benchmarks (docs/performance.md), as the
** Lua module bench.noop. Built for the benchmarks only; never installed.
**
**   local noop = require "bench.noop"
**   local n = noop.new(m:pointer())   -- a handle over the same IMalloc*
**   n:nop(x)                          -- validates self, returns x
**
** The handle is an imalloc_Handle checked by the binding's own code
** (imalloc_checklive of src/binding.h, with src/binding.c compiled into this
** module): the fast path for the last handle checked, the full check with
** the metatable as upvalue 1 otherwise. So n:nop costs what any method of
** the binding must cost before its own work: the Lua-to-C call, the check
** of self, one value back. n:bare is the same call with no check at all.
**
** The other methods are the cheapest code that does a method's work with
** no checking at all (the floors of read, write and buffer), and the C
** loops run the allocator's own operations through the same vtable the
** binding calls, in the same process, so that a floor and the figure it
** bounds are measured side by side.
*/
#include "luacompat.h"

#include <string.h>

#include "binding.h"
#include "bench.h"

#define NOOP_HANDLE "bench.noop"

typedef imalloc_Handle NoopHandle;

typedef struct NoopBuffer {  /* the layout of imalloc_Buffer */
  void *ptr;
  size_t size;
  IMalloc *com;
} NoopBuffer;

/* The binding's check of self, its own code. */
static NoopHandle *checkhandle(lua_State *L) {
  return imalloc_checklive(L, 1);
}

/* n:nop(x): x. The floor of one method call. */
static int n_nop(lua_State *L) {
  checkhandle(L);
  lua_pushvalue(L, 2);
  return 1;
}

/* n:bare(x): x, with no check at all, not even of self: the cost of a
** method call from Lua to C and one value back, and nothing else. */
static int n_bare(lua_State *L) {
  lua_pushvalue(L, 2);
  return 1;
}

/* n:nopreg(x): x, with self checked the usual way, luaL_checkudata, which
** looks the metatable up in the registry by name: what the upvalue saves. */
static int n_nopreg(lua_State *L) {
  NoopHandle *h = (NoopHandle *)luaL_checkudata(L, 1, NOOP_HANDLE);
  if (h->com == NULL) luaL_error(L, "attempt to use a released IMalloc");
  lua_pushvalue(L, 2);
  return 1;
}

/* n:read(p, n, offset): n bytes at p + offset, unchecked. */
static int n_read(lua_State *L) {
  const char *p;
  checkhandle(L);
  p = (const char *)lua_touserdata(L, 2);
  lua_pushlstring(L, p + lua_tointeger(L, 4), (size_t)lua_tointeger(L, 3));
  return 1;
}

/* n:write(p, s, offset): s copied to p + offset, unchecked. */
static int n_write(lua_State *L) {
  size_t len;
  char *p;
  const char *s;
  checkhandle(L);
  p = (char *)lua_touserdata(L, 2);
  s = lua_tolstring(L, 3, &len);
  memcpy(p + lua_tointeger(L, 4), s, len);
  return 0;
}

/* n:buffer(size): a block owned by a userdata that __close frees; upvalue
** 2 is the buffer's metatable. The cheapest buffer there can be. */
static int n_buffer(lua_State *L) {
  IMalloc *m = checkhandle(L)->com;
  size_t size = (size_t)lua_tointeger(L, 2);
  NoopBuffer *b = (NoopBuffer *)lua_newuserdatauv(L, sizeof(NoopBuffer), 0);
  b->ptr = NULL;
  b->size = 0;
  b->com = m;
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setmetatable(L, -2);
  b->ptr = m->lpVtbl->Alloc(m, size);
  b->size = size;
  return 1;
}

/* The buffer's __close and __gc; upvalue 1 is its metatable. */
static int b_close(lua_State *L) {
  NoopBuffer *b = (NoopBuffer *)lua_touserdata(L, 1);
  if (b == NULL || !lua_getmetatable(L, 1) ||
      !lua_rawequal(L, -1, lua_upvalueindex(1)))
    luaL_typeerror(L, 1, "noop buffer");
  if (b->ptr != NULL) {
    void *p = b->ptr;
    b->ptr = NULL;
    b->com->lpVtbl->Free(b->com, p);
  }
  return 0;
}

/* noop.new(ptr): a handle over the IMalloc* ptr (m:pointer()). */
static int l_new(lua_State *L) {
  NoopHandle *h;
  luaL_checktype(L, 1, LUA_TLIGHTUSERDATA);
  h = (NoopHandle *)lua_newuserdatauv(L, sizeof(NoopHandle), 0);
  h->tag = IMALLOC_HANDLE_TAG;
  h->com = (IMalloc *)lua_touserdata(L, 1);
  h->refs = 1;
  h->checks = 1;
  h->owned = NULL;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, -2);
  return 1;
}

/*
** {======================================================
** The allocator from C: noop.c_<op>(ptr, iterations)
** =======================================================
*/

static IMalloc *checkcom(lua_State *L) {
  luaL_checktype(L, 1, LUA_TLIGHTUSERDATA);
  return (IMalloc *)lua_touserdata(L, 1);
}

/* Alloc(64) + Free */
static int c_pair(lua_State *L) {
  IMalloc *m = checkcom(L);
  lua_Integer i, n = luaL_checkinteger(L, 2);
  for (i = 0; i < n; i++) m->lpVtbl->Free(m, m->lpVtbl->Alloc(m, 64));
  return 0;
}

/* GetSize of a live 64-byte block */
static int c_getsize(lua_State *L) {
  IMalloc *m = checkcom(L);
  lua_Integer i, n = luaL_checkinteger(L, 2);
  void *p = m->lpVtbl->Alloc(m, 64);
  SIZE_T sum = 0;
  for (i = 0; i < n; i++) sum += m->lpVtbl->GetSize(m, p);
  m->lpVtbl->Free(m, p);
  lua_pushinteger(L, (lua_Integer)sum);
  return 1;
}

/* DidAlloc of a live 64-byte block */
static int c_didalloc(lua_State *L) {
  IMalloc *m = checkcom(L);
  lua_Integer i, n = luaL_checkinteger(L, 2);
  void *p = m->lpVtbl->Alloc(m, 64);
  int sum = 0;
  for (i = 0; i < n; i++) sum += m->lpVtbl->DidAlloc(m, p);
  m->lpVtbl->Free(m, p);
  lua_pushinteger(L, sum);
  return 1;
}

/* Alloc(64), Realloc to 128, 256, ... 4096, Free: one growth sequence */
static int c_realloc(lua_State *L) {
  IMalloc *m = checkcom(L);
  lua_Integer i, n = luaL_checkinteger(L, 2);
  for (i = 0; i < n; i++) {
    void *p = m->lpVtbl->Alloc(m, 64);
    SIZE_T size;
    for (size = 128; size <= 4096; size *= 2)
      p = m->lpVtbl->Realloc(m, p, size);
    m->lpVtbl->Free(m, p);
  }
  return 0;
}

/* }====================================================== */


/* noop.now(): a monotonic clock in nanoseconds. */
static int l_now(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)bench_now_ns());
  return 1;
}

static int l_valgrind(lua_State *L) {
  lua_pushboolean(L, bench_under_valgrind());
  return 1;
}

static int l_cg_zero(lua_State *L) {
  (void)L;
  bench_cg_zero();
  return 0;
}

static int l_cg_dump(lua_State *L) {
  bench_cg_dump(luaL_checkstring(L, 1));
  return 0;
}

static const luaL_Reg noop_methods[] = {
  {"nop", n_nop},
  {"bare", n_bare},
  {"nopreg", n_nopreg},
  {"read", n_read},
  {"write", n_write},
  {"buffer", n_buffer},
  {NULL, NULL}
};

static const luaL_Reg functions[] = {
  {"c_pair", c_pair},
  {"c_getsize", c_getsize},
  {"c_didalloc", c_didalloc},
  {"c_realloc", c_realloc},
  {"now", l_now},
  {"valgrind", l_valgrind},
  {"cg_zero", l_cg_zero},
  {"cg_dump", l_cg_dump},
  {NULL, NULL}
};

#if defined(__GNUC__)
__attribute__((visibility("default")))
#endif
int luaopen_bench_noop(lua_State *L);

int luaopen_bench_noop(lua_State *L) {
  luaL_newlib(L, functions);
  /* the buffer's metatable */
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, b_close, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__close");
  lua_setfield(L, -2, "__gc");
  /* the handle's metatable, its methods closing over it and the buffer's */
  luaL_newmetatable(L, NOOP_HANDLE);
  luaL_newlibtable(L, noop_methods);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -4);
  luaL_setfuncs(L, noop_methods, 2);
  lua_setfield(L, -2, "__index");
  lua_remove(L, -2);  /* the buffer's metatable */
  lua_pushcclosure(L, l_new, 1);
  lua_setfield(L, -2, "new");
  return 1;
}
