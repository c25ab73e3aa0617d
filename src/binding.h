/*
** binding.h: what the files of the Lua binding share.
**
** Every function of the binding is a closure with three upvalues:
**   1. the metatable of its own kind of object (handle or buffer), so that
**      checking `self` compares two metatables instead of looking a name up
**      in the registry on every call;
**   2. the blocks owned by buffers in this Lua state (imalloc_Owned, whose
**      user value is a table block -> its buffer, both light userdata), so
**      that m:free cannot free a block a buffer will free again;
**   3. the metatable of the other kind.
**
** THE RULE of every function here: between checking a handle or a block
** and using it, nothing may allocate on the Lua side. Any allocation (a new
** userdata or string, a number turned into a string, a growing
** luaL_Buffer, lua_pushfstring, a table that grows) may run a collection
** step, and so any finalizer, and a finalizer may free the block or release
** the handle just checked. So a function makes its userdata and converts
** its arguments first, then checks, then uses; where it must allocate in
** between (room for bytes read out of a block), it checks again after.
** Raising is fine: nothing is used after. A Lua built with HARDMEMTESTS,
** which collects wherever it may, checks this in CI (docs/hardgc.md).
*/
#ifndef IMALLOC_BINDING_H
#define IMALLOC_BINDING_H

#define IMALLOC_SELFMT lua_upvalueindex(1)
#define IMALLOC_OWNED lua_upvalueindex(2)
#define IMALLOC_OTHERMT lua_upvalueindex(3)

#include "luacompat.h"

#include <stdint.h>

#include "com_abi.h"
#include "freed.h"
#include "imalloc.h"
#include "platform.h"

/* The registry key of this Lua state's imalloc_Owned: one per state,
** whatever number of times the module is loaded into it. */
#define IMALLOC_OWNED_KEY "imalloc.owned"

/* The registry key of the names of the binding's closures (closure ->
** "read", "imalloc.wrap"), for argument errors Lua cannot name. */
#define IMALLOC_NAMES_KEY "imalloc.names"

/* Blocks owned by buffers: a count, so that the common case (no buffer
** alive) costs no table lookup, and the table as user value 1. */
typedef struct imalloc_Owned {
  lua_Integer count;
  lua_Integer peak;     /* the most since the table was last made anew */
  lua_Integer changes;  /* records made or forgotten, ever */
} imalloc_Owned;

/* This Lua state's imalloc_Owned. */
static inline imalloc_Owned *imalloc_owned(lua_State *L) {
  return (imalloc_Owned *)lua_touserdata(L, IMALLOC_OWNED);
}

/* Argument errors that name the function even where Lua cannot: a method
** called through pcall(m.read, m, p) or a local variable is 'read', not
** '?' (binding.c). Every argument error of the binding goes through these,
** so that the name does not depend on how the function was called. */
IMALLOC_HIDDEN int imalloc_argerror(lua_State *L, int arg, const char *msg);
IMALLOC_HIDDEN int imalloc_typeerror(lua_State *L, int arg, const char *tname);
#undef luaL_argerror
#define luaL_argerror imalloc_argerror
#undef luaL_typeerror
#define luaL_typeerror imalloc_typeerror

/* The object at `idx` if it is a full userdata of `size` bytes whose first
** field is `tag` (imalloc.h) and whose metatable is the upvalue `mt`; else
** NULL. */
static inline void *imalloc_testobject(lua_State *L, int idx, size_t size,
                                       uint32_t tag, int mt) {
  void *u = imalloc_tagged(L, idx, size, tag);
  int same;
  if (u == NULL || !lua_getmetatable(L, idx)) return NULL;
  same = lua_rawequal(L, -1, mt);
  lua_pop(L, 1);
  return same ? u : NULL;
}

/* The handle at `idx`, live or released, or NULL. Must be called from a
** function whose upvalue `mt` is the handle's metatable. */
static inline imalloc_Handle *imalloc_testhandle(lua_State *L, int idx,
                                                 int mt) {
  return (imalloc_Handle *)imalloc_testobject(L, idx, sizeof(imalloc_Handle),
                                              IMALLOC_HANDLE_TAG, mt);
}

/* The same for a buffer, whose metatable is the upvalue `mt`. */
static inline imalloc_Buffer *imalloc_testbuffer(lua_State *L, int idx,
                                                 int mt) {
  return (imalloc_Buffer *)imalloc_testobject(L, idx, sizeof(imalloc_Buffer),
                                              IMALLOC_BUFFER_TAG, mt);
}

/* The handle at `arg`, live or released; raises for anything else. Must be
** called from a function whose upvalue 1 is the handle's metatable. */
static inline imalloc_Handle *imalloc_tohandle(lua_State *L, int arg) {
  imalloc_Handle *h = imalloc_testhandle(L, arg, IMALLOC_SELFMT);
  if (h == NULL) luaL_typeerror(L, arg, "IMalloc");
  return h;
}

/* The last live handle that passed imalloc_tohandle, in any Lua state of
** the process, or IMALLOC_NOHANDLE: the common case, one handle called again and
** again, then costs a comparison and a look at the userdata instead of a
** metatable check. A handle leaves it when it is released, and a new
** handle leaves it at birth (imalloc_newhandle): a handle can die without
** a release (a script may replace its __gc through the debug library),
** and a new one may then have its address. Any other userdata there is
** told apart by the look (a full userdata of a handle's size and tag). */
IMALLOC_HIDDEN extern imalloc_atomic_ptr imalloc_lastlive;

/* What imalloc_lastlive holds when it remembers no handle: its own
** address, which no handle has, and which is not the NULL that
** lua_touserdata gives for a string, so that the fast path needs no test
** of NULL (lua_rawlen is also a string's length). */
#define IMALLOC_NOHANDLE ((void *)&imalloc_lastlive)

/* imalloc_checklive's full check (binding.c). */
IMALLOC_HIDDEN imalloc_Handle *imalloc_checklive_full(lua_State *L, int arg);

#if LUA_VERSION_NUM >= 502
#define imalloc_rawlen lua_rawlen
#else
#define imalloc_rawlen lua_objlen
#endif

/* The handle at `arg`, which must still own a reference. The fast path is
** inline and short; lua_touserdata and lua_rawlen tell a full userdata
** (a light one has no length) without lua_type. */
static inline imalloc_Handle *imalloc_checklive(lua_State *L, int arg) {
  imalloc_Handle *h = (imalloc_Handle *)lua_touserdata(L, arg);
  if (h == imalloc_atomic_getptr(&imalloc_lastlive) &&
      imalloc_rawlen(L, arg) == sizeof *h && h->tag == IMALLOC_HANDLE_TAG)
    return h;
  return imalloc_checklive_full(L, arg);
}

/* Forgets `h` as the last live handle checked: it is being released. */
static inline void imalloc_forgethandle(imalloc_Handle *h) {
  imalloc_atomic_replaceptr(&imalloc_lastlive, h, IMALLOC_NOHANDLE);
}

/* A pointer argument: a light userdata, an integer address, or nil (NULL).
** A missing argument is an error, so that `m:free()` is not a silent no-op. */
static inline void *imalloc_checkpointer(lua_State *L, int arg) {
  switch (lua_type(L, arg)) {
    case LUA_TLIGHTUSERDATA: return lua_touserdata(L, arg);
    case LUA_TNIL: return NULL;
    case LUA_TNUMBER: {
      int isint;
      lua_Integer a = lua_tointegerx(L, arg, &isint);
      if (!isint) luaL_argerror(L, arg, "address must be an integer");
      /* No user-space address is at or above 2^63 (it would be negative
      ** here), and refusing those gives every Lua one answer. */
      if (a < 0) luaL_argerror(L, arg, "address out of range");
#if UINTPTR_MAX < UINT64_MAX
      if ((uint64_t)a > UINTPTR_MAX) luaL_argerror(L, arg, "address out of range");
#endif
      return (void *)(uintptr_t)(uint64_t)a;
    }
    default:
      luaL_typeerror(L, arg, "pointer");
      return NULL;
  }
}

/* An integer argument: a number with an integer value. A numeric string is
** refused, for every integer of the API alike: sizes, counts, offsets,
** contexts and HRESULTs do not come from text by accident. */
static inline lua_Integer imalloc_checkinteger(lua_State *L, int arg) {
  int isint;
  lua_Integer n;
  if (lua_type(L, arg) != LUA_TNUMBER) luaL_typeerror(L, arg, "number");
  n = lua_tointegerx(L, arg, &isint);
  if (!isint) luaL_argerror(L, arg, "number has no integer representation");
  return n;
}

/* A string argument, never converted from a number: converting would
** allocate (THE RULE above), and a number's decimal text is seldom the
** bytes a caller means. */
static inline const char *imalloc_checkstring(lua_State *L, int arg,
                                              size_t *len) {
  if (lua_type(L, arg) != LUA_TSTRING) luaL_typeerror(L, arg, "string");
  return lua_tolstring(L, arg, len);
}

/* luaL_checktype and luaL_checkany, through imalloc_argerror. */
static inline void imalloc_checktype(lua_State *L, int arg, int t) {
  if (lua_type(L, arg) != t) luaL_typeerror(L, arg, lua_typename(L, t));
}

static inline void imalloc_checkany(lua_State *L, int arg) {
  if (lua_type(L, arg) == LUA_TNONE) luaL_argerror(L, arg, "value expected");
}

/* A byte count named `what` in errors ("size", "offset", "length"): an
** integer from 0 to SIZE_T's maximum. */
static inline size_t imalloc_checkcount(lua_State *L, int arg,
                                        const char *what) {
  lua_Integer n = imalloc_checkinteger(L, arg);
  if (n < 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must not be negative", what));
#if LUA_MAXINTEGER > SIZE_MAX
  if ((uintmax_t)n > SIZE_MAX) luaL_argerror(L, arg, "size too large");
#endif
  return (size_t)n;
}

/* A size argument. */
static inline size_t imalloc_checksize(lua_State *L, int arg) {
  return imalloc_checkcount(L, arg, "size");
}

/* Raises unless `p` is a live block of `h`'s allocator (when the handle
** checks pointers): the check that keeps double frees and foreign pointers
** from reaching the heap. */
static inline void imalloc_checkowned(lua_State *L, imalloc_Handle *h,
                                      void *p, int arg) {
  if (h->checks && imalloc_freed_didalloc(h->com, p) != 1)
    luaL_argerror(L, arg, "pointer is not a live block of this IMalloc");
}


/* Pushes the table of the blocks that buffers own (the user value of
** imalloc_Owned) and returns 1. A script with the debug library can put
** another value there (debug.setuservalue on the registry's
** "imalloc.owned"); then that value is pushed and 0 returned: the records
** are gone, as when it puts an empty table there, and no lua_raw* call may
** be handed what is not a table. */
static inline int imalloc_pushrecords(lua_State *L) {
  return lua_getiuservalue(L, IMALLOC_OWNED, 1) == LUA_TTABLE;
}

/* Whether a buffer of this Lua state owns block `p`. Allocates nothing:
** its callers have checked a handle and a pointer, and use them after. */
static inline int imalloc_isowned(lua_State *L, imalloc_Owned *o, void *p) {
  int owned;
  if (o->count == 0) return 0;
  if (!imalloc_pushrecords(L)) {
    lua_pop(L, 1);
    return 0;
  }
  owned = lua_rawgetp(L, -1, p) != LUA_TNIL;
  lua_pop(L, 2);
  return owned;
}


/* Raises unless `p` may be freed or moved through `h`: a live block of its
** allocator that no buffer owns. */
static inline void imalloc_checkfreeable(lua_State *L, imalloc_Handle *h,
                                         void *p, int arg) {
  if (!h->checks) return;
  imalloc_checkowned(L, h, p, arg);
  if (imalloc_isowned(L, (imalloc_Owned *)h->owned, p))
    luaL_argerror(L, arg, "pointer is owned by a buffer (free or detach the buffer)");
}

/* Room for a pointer in hex and a NUL. */
#define IMALLOC_HEXDIGITS (2 * sizeof(uintptr_t) + 1)

/* `v` in base `base` (10 or 16) with the digit set `digits`, at least
** `width` digits (zeros first), into `out` (IMALLOC_HEXDIGITS chars for a
** pointer, IMALLOC_DECIMAL for a size_t); returns `out`. lua_pushfstring
** has no %x, "%p" prints differently with glibc and msvcrt, %I exists
** only from Lua 5.3 on, and %d would cut a size_t to an int. `v` is a
** uintptr_t, not a uint64_t: a 64-bit division on 32-bit x86 would call
** libgcc, which a LuaRocks mingw-w64 build then needs at run time
** (wine32-rocks-mingw). */
IMALLOC_HIDDEN const char *imalloc_todigits(char *out, uintptr_t v,
                                            unsigned base, int width,
                                            const char *digits);

/* Pushes the message of an HRESULT ("E_INVALIDARG: ...", or "HRESULT
** 0x8000FFFF" for one it does not know). */
IMALLOC_HIDDEN void imalloc_pushhresultmessage(lua_State *L, HRESULT hr);

/* Pushes `nil, message, code` for a failed HRESULT; returns 3. */
IMALLOC_HIDDEN int imalloc_pushhresult(lua_State *L, HRESULT hr);

/* Pushes `nil, "not enough memory", E_OUTOFMEMORY`; returns 3. */
IMALLOC_HIDDEN int imalloc_pushnomem(lua_State *L);

/* The spy (spy.c). An allocation path passes its size through
** imalloc_spy_tag just before it calls m's Alloc or Realloc: while the spy
** is registered, the spy's report can then say which line of Lua asked for
** the block. Otherwise the cost is one relaxed atomic load. */
IMALLOC_HIDDEN extern imalloc_atomic_int imalloc_spy_tagging;
IMALLOC_HIDDEN void imalloc_spy_settag(lua_State *L, IMalloc *m);

static inline size_t imalloc_spy_tag(lua_State *L, IMalloc *m, size_t cb) {
  if (imalloc_atomic_get(&imalloc_spy_tagging))
    imalloc_spy_settag(L, m);
  return cb;
}

/* imalloc.spy: start, stop, report, fail (spy.c). */
IMALLOC_HIDDEN extern const luaL_Reg imalloc_spy_functions[];

/* The handle (handle.c): a new released one on top of the stack, made
** before any reference is taken, so that an error cannot leak one; its
** methods and metamethods. Called from functions whose upvalue 1 is the
** handle's metatable. */
IMALLOC_HIDDEN imalloc_Handle *imalloc_newhandle(lua_State *L);
IMALLOC_HIDDEN extern const luaL_Reg imalloc_handle_methods[];
IMALLOC_HIDDEN extern const luaL_Reg imalloc_handle_metamethods[];

/* Buffers (buffer.c): a new released one on top of the stack, made before
** its block exists, from a handle method (upvalue 3: the buffer's
** metatable); imalloc_own makes it own block `p` of `h`'s allocator. The
** buffer's methods and metamethods. */
IMALLOC_HIDDEN imalloc_Buffer *imalloc_newbuffer(lua_State *L);
IMALLOC_HIDDEN void imalloc_own(lua_State *L, imalloc_Buffer *b,
                                imalloc_Handle *h, void *p, size_t size);
IMALLOC_HIDDEN extern const luaL_Reg imalloc_buffer_methods[];
IMALLOC_HIDDEN extern const luaL_Reg imalloc_buffer_metamethods[];

#endif
