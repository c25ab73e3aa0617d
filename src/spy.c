/*
** spy.c: imalloc.spy, the Lua functions of the IMallocSpy: start, stop,
** report, fail. The spy itself and its books are in spy_books.c, with no
** Lua; here are the rules read from Lua tables, the report made into one,
** and the binding's tag (binding.h) found in the Lua call stack.
*/
#include "luacompat.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "spy_books.h"

#if LUA_IDSIZE > 60
#error "IMALLOC_WHERE_MAX (spy_books.h) leaves room for a LUA_IDSIZE of 60"
#endif


/*
** {======================================================
** Fault rules from Lua
** =======================================================
*/

/* Raises, naming argument `arg`, unless every key of the table at `idx` is
** one of `names`; `fmt` makes the message of the one that is not. */
static void checkkeys(lua_State *L, int idx, int arg,
                      const char *const names[], const char *fmt) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    int i;
    lua_pop(L, 1);  /* the value; the key stays for lua_next */
    for (i = 0; names[i] && strcmp(k, names[i]) != 0; i++) {}
    if (names[i] == NULL)
      luaL_argerror(L, arg,
                    lua_pushfstring(L, fmt, luaL_tolstring(L, -1, NULL)));
  }
}

/* The number on top of the stack as a whole number of at least `min`
** into *out; 0 if it is not one (*out may be written all the same: the
** callers raise then). An integral float beyond lua_Integer's range (2^70)
** is a whole number too, taken as the largest there is: a count or size no
** allocation reaches. */
static int getwhole(lua_State *L, lua_Integer min, uint64_t *out) {
  int isint;
  lua_Integer n;
  lua_Number f;
  if (lua_type(L, -1) != LUA_TNUMBER) return 0;
  n = lua_tointegerx(L, -1, &isint);
  if (isint) {
    if (n < min) return 0;
    *out = (uint64_t)n;
    return 1;
  }
  f = lua_tonumber(L, -1);
  /* beyond the integers, finite, and without a fraction: every float from
  ** 2^53 on is whole; below, one that converts back to itself */
  *out = UINT64_MAX;
  return f >= (lua_Number)LUA_MAXINTEGER && f - f == 0 &&
         (f >= 9007199254740992.0 || f == (lua_Number)(uint64_t)f);
}

/* Reads a fault rule from the table at `idx` (nil: no rule). Raises for a
** malformed one, naming argument `arg`. */
static void checkrule(lua_State *L, int idx, int arg, imalloc_SpyRule *r) {
  static const char *const fields[] = {"nth", "every", "above", "fraction",
                                       "seed", NULL};
  lua_Integer seed = 0;
  memset(r, 0, sizeof *r);
  if (lua_isnoneornil(L, idx)) return;
  if (!lua_istable(L, idx))
    luaL_argerror(L, arg, "fault rule must be a table or nil");
  checkkeys(L, idx, arg, fields, "unknown field '%s' in fault rule");
  if (lua_getfield(L, idx, "nth") != LUA_TNIL) {
    if (!getwhole(L, 1, &r->nth))
      luaL_argerror(L, arg, "nth must be an integer of at least 1");
  }
  if (lua_getfield(L, idx, "every") != LUA_TNIL) {
    if (!lua_isboolean(L, -1)) luaL_argerror(L, arg, "every must be a boolean");
    if (lua_toboolean(L, -1) && r->nth == 0)
      luaL_argerror(L, arg, "every needs nth");
    r->every = lua_toboolean(L, -1);
  }
  if (lua_getfield(L, idx, "above") != LUA_TNIL) {
    uint64_t n;
    if (!getwhole(L, 0, &n))
      luaL_argerror(L, arg, "above must be a non-negative integer");
    r->has_above = 1;
    r->above = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
  }
  if (lua_getfield(L, idx, "fraction") != LUA_TNIL) {
    lua_Number f = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(f >= 0 && f <= 1))
      luaL_argerror(L, arg, "fraction must be a number from 0 to 1");
    r->fraction = (double)f;
  }
  if (lua_getfield(L, idx, "seed") != LUA_TNIL) {
    int isint;
    seed = lua_tointegerx(L, -1, &isint);
    if (lua_type(L, -1) != LUA_TNUMBER || !isint)
      luaL_argerror(L, arg, "seed must be an integer");
  }
  /* the five fields stay on the stack: its callers return next */
  r->prng = (uint64_t)seed;
  r->on = r->nth != 0 || r->has_above || r->fraction > 0;
}

/* }====================================================== */


/*
** {======================================================
** imalloc.spy
** =======================================================
*/

/* The binding's tag (binding.h): "file:line" of the nearest Lua function,
** skipping pcall and other C functions, for this thread's next
** allocation through `m`. */
void imalloc_spy_settag(lua_State *L, IMalloc *m) {
  lua_Debug ar;
  int level;
  for (level = 1; level < 8 && lua_getstack(L, level, &ar); level++) {
    if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
      char where[IMALLOC_WHERE_MAX];
      snprintf(where, sizeof where, "%s:%d", ar.short_src, ar.currentline);
      imalloc_spy_settagtext(where, m);
      return;
    }
  }
}

/* spy.start([options]): registers the spy; true, or fail. */
static int l_start(lua_State *L) {
  static const char *const options[] = {"fail", "where", NULL};
  static const imalloc_SpyRule no_rule;  /* all zeros: no faults */
  imalloc_SpyRule rule = no_rule;
  int where = 1;
  HRESULT hr;
  if (!lua_isnoneornil(L, 1)) {
    imalloc_checktype(L, 1, LUA_TTABLE);
    checkkeys(L, 1, 1, options, "unknown option '%s'");
    lua_getfield(L, 1, "fail");
    checkrule(L, lua_gettop(L), 1, &rule);
    if (lua_getfield(L, 1, "where") != LUA_TNIL) {
      if (!lua_isboolean(L, -1)) luaL_argerror(L, 1, "where must be a boolean");
      where = lua_toboolean(L, -1);
    }
  }
  hr = imalloc_spy_start(&rule, where);
  if (hr < 0) return imalloc_pushhresult(L, hr);
  lua_pushboolean(L, 1);
  return 1;
}

/* spy.stop(): revokes the spy; true, or fail (E_ACCESSDENIED while spied
** blocks live: the spy is then released when the last one is freed). */
static int l_stop(lua_State *L) {
  HRESULT hr = imalloc_spy_stop();
  if (hr < 0) return imalloc_pushhresult(L, hr);
  lua_pushboolean(L, 1);
  return 1;
}

/* spy.fail(rule | nil): sets or clears the fault rule of an active spy. */
static int l_fail(lua_State *L) {
  imalloc_SpyRule rule;
  imalloc_checkany(L, 1);
  checkrule(L, 1, 1, &rule);
  if (!imalloc_spy_setrule(&rule))
    luaL_error(L, "the spy is not active (spy.start() first)");
  lua_pushboolean(L, 1);
  return 1;
}

static int byseq(const void *a, const void *b) {
  uint64_t x = ((const imalloc_SpyRecord *)a)->seq, y = ((const imalloc_SpyRecord *)b)->seq;
  return (x > y) - (x < y);
}

static void setinteger(lua_State *L, const char *k, uint64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

/* spy.report(): the outstanding spied blocks and the counters. */
static int l_report(lua_State *L) {
  size_t n, room = 0, i;
  imalloc_SpyRecord none;  /* the copy of no records: qsort is never given NULL */
  imalloc_SpyRecord *copy = &none;
  imalloc_SpySummary sum;
  /* Lua memory is allocated with the books unlocked: a copy big enough,
  ** as a userdata so that an error cannot leak it */
  while ((n = imalloc_spy_snapshot(copy, room, &sum)) > room) {
    room = n + n / 4 + 16;
    lua_settop(L, 0);
    copy = (imalloc_SpyRecord *)lua_newuserdatauv(L, room * sizeof *copy, 0);
  }
  qsort(copy, n, sizeof *copy, byseq);
  lua_createtable(L, 0, 10);
  lua_createtable(L, (int)(n < INT32_MAX ? n : 0), 0);
  for (i = 0; i < n; i++) {
    lua_createtable(L, 0, 4);
    lua_pushlightuserdata(L, copy[i].addr);
    lua_setfield(L, -2, "address");
    setinteger(L, "size", copy[i].size);
    setinteger(L, "seq", copy[i].seq);
    if (copy[i].where[0]) {
      lua_pushstring(L, copy[i].where);
      lua_setfield(L, -2, "where");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "blocks");
  setinteger(L, "count", sum.count);
  setinteger(L, "bytes", sum.bytes);
  setinteger(L, "allocs", sum.allocs);
  setinteger(L, "reallocs", sum.reallocs);
  setinteger(L, "frees", sum.frees);
  setinteger(L, "failures", sum.failures);
  setinteger(L, "dropped", sum.dropped);
  lua_pushboolean(L, sum.active);
  lua_setfield(L, -2, "active");
  lua_pushboolean(L, sum.pending);
  lua_setfield(L, -2, "pending");
  return 1;
}

/* }====================================================== */


const luaL_Reg imalloc_spy_functions[] = {
  {"start", l_start},
  {"stop", l_stop},
  {"report", l_report},
  {"fail", l_fail},
  {NULL, NULL}
};
