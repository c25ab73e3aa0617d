/*
** luacompat.h: the part of Lua 5.4's C API that this project uses, on Lua
** 5.1, 5.2, 5.3 and LuaJIT 2.1 as well.
**
** Included first by every C file that calls Lua, so that the binding is
** written once against 5.4 and the older runtimes get the missing calls as
** shims here, not as version tests in every function. On 5.4 it adds
** nothing. Every shim is a static inline luacompat_* function behind a
** macro with the 5.4 name, so that it cannot clash with another module's.
**
** Where the runtimes differ, the shims choose 5.4's behaviour:
** - Integers. Before 5.3 there is no integer subtype: an "integer" is a
**   number with an integer value within lua_Integer's range (ptrdiff_t),
**   and luaL_checkinteger refuses 1.5 as 5.3 does instead of truncating it.
**   Such a number is a double, exact up to 2^53 only: see
**   luacompat_pushunsigned for addresses.
** - lua_Unsigned is not used: 5.1 and LuaJIT have none, and 5.2's is 32
**   bits, so a pointer cast through it would be cut short. Pointers go
**   through uintptr_t and uint64_t.
** - User values (lua_newuserdatauv): before 5.4 a userdata has one, a
**   table in 5.1 and LuaJIT (its environment), any value in 5.3; the shims
**   keep user value n at index n of a table of their own. Only userdata
**   made by lua_newuserdatauv with nuv >= n may be asked for value n.
** - luaL_typeerror names a value by its metatable's __name, as 5.4 does.
*/
#ifndef IMALLOC_LUACOMPAT_H
#define IMALLOC_LUACOMPAT_H

#include <stddef.h>
#include <stdint.h>

#include "lua.h"
#include "lauxlib.h"

/* Lua 5.4 calls __close at the end of a to-be-closed variable's scope. */
#define LUACOMPAT_HAS_CLOSE (LUA_VERSION_NUM >= 504)

/* Whether lua_pushlstring copies the bytes before it may run a collection
** step (and so a finalizer): Lua 5.3 and 5.4 copy, then step; 5.1, 5.2
** and LuaJIT step first (lapi.c, lj_api.c), so bytes read out of a block
** must not be handed to it straight from the block there (binding.h, THE
** RULE). The HARDMEMTESTS Luas of docs/hardgc.md check both kinds. */
#define LUACOMPAT_PUSH_COPIES_FIRST (LUA_VERSION_NUM >= 503)


/* {=====================================================================
** Every runtime before 5.4
** ====================================================================== */
#if LUA_VERSION_NUM < 504

#ifndef luaL_pushfail
#define luaL_pushfail(L) lua_pushnil(L)
#endif

static inline int luacompat_absindex(lua_State *L, int idx) {
  return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + idx + 1;
}

/* "X expected, got Y", where Y is the value's __name if it has one. */
static inline int luacompat_typeerror(lua_State *L, int arg, const char *tname) {
  const char *got;
  if (luaL_getmetafield(L, arg, "__name") && lua_type(L, -1) == LUA_TSTRING)
    got = lua_tostring(L, -1);
  else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA)
    got = "light userdata";
  else
    got = luaL_typename(L, arg);
  return luaL_argerror(L, arg,
                       lua_pushfstring(L, "%s expected, got %s", tname, got));
}
#define luaL_typeerror luacompat_typeerror

/* The user values live in one table: the userdata's environment in 5.1
** and LuaJIT, its (single) user value in 5.2 and 5.3. */
static inline void luacompat_pushuvtable(lua_State *L, int idx) {
#if LUA_VERSION_NUM == 501
  lua_getfenv(L, idx);
#else
  lua_getuservalue(L, idx);
#endif
}

static inline void *luacompat_newuserdatauv(lua_State *L, size_t size,
                                            int nuv) {
  void *u = lua_newuserdata(L, size);
  if (nuv > 0) {
    lua_createtable(L, nuv, 0);
#if LUA_VERSION_NUM == 501
    lua_setfenv(L, -2);
#else
    lua_setuservalue(L, -2);
#endif
  }
  return u;
}
#define lua_newuserdatauv luacompat_newuserdatauv

/* Pushes user value n of the userdata at idx; returns its type. */
static inline int luacompat_getiuservalue(lua_State *L, int idx, int n) {
  luacompat_pushuvtable(L, idx);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_pushnil(L);
    return LUA_TNONE;
  }
  lua_rawgeti(L, -1, n);
  lua_remove(L, -2);
  return lua_type(L, -1);
}
#define lua_getiuservalue luacompat_getiuservalue

/* Pops a value into user value n of the userdata at idx; 0 if it has no
** such value. */
static inline int luacompat_setiuservalue(lua_State *L, int idx, int n) {
  luacompat_pushuvtable(L, idx);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 2);
    return 0;
  }
  lua_insert(L, -2);
  lua_rawseti(L, -2, n);
  lua_pop(L, 1);
  return 1;
}
#define lua_setiuservalue luacompat_setiuservalue

#endif
/* }===================================================================== */


/* {=====================================================================
** Before 5.3: no integer subtype, calls that return nothing
** ====================================================================== */
#if LUA_VERSION_NUM < 503

/* lua_Integer is ptrdiff_t in 5.1, 5.2 and LuaJIT. */
#define LUA_MAXINTEGER PTRDIFF_MAX
#define LUA_MININTEGER PTRDIFF_MIN

/* The value at idx as an integer, if it is a number (or a numeric string,
** as 5.4 takes it) with an integer value within lua_Integer's range. */
static inline lua_Integer luacompat_tointegerx(lua_State *L, int idx,
                                               int *isint) {
  /* 2^63 (or 2^31), exactly, as a double: the first value out of range */
  const lua_Number limit = -(lua_Number)LUA_MININTEGER;
  lua_Number n;
  int ok = 0;
  lua_Integer i = 0;
  if (lua_isnumber(L, idx)) {
    n = lua_tonumber(L, idx);
    if (n >= -limit && n < limit) {
      i = (lua_Integer)n;
      ok = (lua_Number)i == n;
      if (!ok) i = 0;
    }
  }
  if (isint != NULL) *isint = ok;
  return i;
}
#define lua_tointegerx luacompat_tointegerx

/* As 5.3: 1.5 is refused, not truncated. */
static inline lua_Integer luacompat_checkinteger(lua_State *L, int arg) {
  int isint;
  lua_Integer i = luacompat_tointegerx(L, arg, &isint);
  if (!isint) {
    if (lua_isnumber(L, arg))
      luaL_argerror(L, arg, "number has no integer representation");
    else
      luacompat_typeerror(L, arg, lua_typename(L, LUA_TNUMBER));
  }
  return i;
}
#define luaL_checkinteger luacompat_checkinteger

/* Type errors that say "light userdata", as 5.3's do, not "userdata". */
static inline const char *luacompat_checklstring(lua_State *L, int arg,
                                                 size_t *len) {
  const char *s = lua_tolstring(L, arg, len);
  if (s == NULL) luacompat_typeerror(L, arg, lua_typename(L, LUA_TSTRING));
  return s;
}
#define luaL_checklstring luacompat_checklstring

static inline void luacompat_checktype(lua_State *L, int arg, int t) {
  if (lua_type(L, arg) != t) luacompat_typeerror(L, arg, lua_typename(L, t));
}
#define luaL_checktype luacompat_checktype

/* lua_getfield and lua_rawgetp return the type they pushed. */
static inline int luacompat_getfield(lua_State *L, int idx, const char *k) {
  lua_getfield(L, idx, k);
  return lua_type(L, -1);
}
#undef lua_getfield
#define lua_getfield luacompat_getfield

static inline int luacompat_rawgetp(lua_State *L, int idx, const void *p) {
#if LUA_VERSION_NUM == 501
  idx = luacompat_absindex(L, idx);
  lua_pushlightuserdata(L, (void *)p);
  lua_rawget(L, idx);
#else
  lua_rawgetp(L, idx, p);
#endif
  return lua_type(L, -1);
}
#define lua_rawgetp luacompat_rawgetp

#endif
/* }===================================================================== */


/* {=====================================================================
** 5.1 and LuaJIT
** ====================================================================== */
#if LUA_VERSION_NUM == 501

static inline void luacompat_rawsetp(lua_State *L, int idx, const void *p) {
  idx = luacompat_absindex(L, idx);
  lua_pushlightuserdata(L, (void *)p);
  lua_insert(L, -2);
  lua_rawset(L, idx);
}
#define lua_rawsetp luacompat_rawsetp

/* What tostring would say, without calling a global: __tostring, else the
** value itself for strings, numbers, booleans and nil, else its type name
** and address. */
static inline const char *luacompat_tolstring(lua_State *L, int idx,
                                              size_t *len) {
  if (luaL_callmeta(L, idx, "__tostring")) {
    if (!lua_isstring(L, -1))
      luaL_error(L, "'__tostring' must return a string");
  } else {
    switch (lua_type(L, idx)) {
      case LUA_TNUMBER:
      case LUA_TSTRING:
        lua_pushvalue(L, idx);
        break;
      case LUA_TBOOLEAN:
        lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
        break;
      case LUA_TNIL:
        lua_pushliteral(L, "nil");
        break;
      default:
        lua_pushfstring(L, "%s: %p", luaL_typename(L, idx),
                        lua_topointer(L, idx));
        break;
    }
  }
  return lua_tolstring(L, -1, len);
}
#define luaL_tolstring luacompat_tolstring

/* LuaJIT 2.1 has luaL_setfuncs and luaL_newlib; Lua 5.1 has neither. */
#ifndef luaL_newlib
static inline void luacompat_setfuncs(lua_State *L, const luaL_Reg *l,
                                      int nup) {
  luaL_checkstack(L, nup, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}
#define luaL_setfuncs luacompat_setfuncs
#define luaL_newlibtable(L, l) \
  lua_createtable(L, 0, (int)(sizeof(l) / sizeof((l)[0]) - 1))
#define luaL_newlib(L, l) (luaL_newlibtable(L, l), luaL_setfuncs(L, l, 0))
#endif

#endif
/* }===================================================================== */


/* {=====================================================================
** Every runtime
** ====================================================================== */

/* Pushes v, an address or a count, as an exact Lua integer; returns 0
** (pushing nothing) when this Lua cannot hold it exactly. 5.3 and later
** push any 64-bit value, those at or above 2^63 as negative integers (the
** same bits); the runtimes without an integer subtype hold v exactly up to
** 2^53, more than any user-space address of x86-64 or AArch64 (below 2^48
** or 2^52), so a refusal there means a bug, not a valid pointer. */
static inline int luacompat_pushunsigned(lua_State *L, uint64_t v) {
#if LUA_VERSION_NUM >= 503
  lua_pushinteger(L, (lua_Integer)v);
#else
  if (v > ((uint64_t)1 << 53)) return 0;
  lua_pushnumber(L, (lua_Number)v);
#endif
  return 1;
}

/* }===================================================================== */

#endif
