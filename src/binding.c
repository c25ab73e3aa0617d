/*
** binding.c: what the files of the binding share (binding.h): HRESULTs as
** Lua values, the handle check's full path, and argument errors.
*/
#include "luacompat.h"

#include <string.h>

#include "binding.h"


/*
** {======================================================
** HRESULTs as Lua values
** =======================================================
*/

#define E_OUTOFMEMORY_CODE ((lua_Integer)0x8007000E)

static const struct {
  HRESULT hr;
  const char *text;
} known_hresults[] = {
  {E_NOTIMPL, "E_NOTIMPL: not implemented"},
  {E_NOINTERFACE, "E_NOINTERFACE: no such interface supported"},
  {E_POINTER, "E_POINTER: invalid pointer"},
  {E_FAIL, "E_FAIL: unspecified failure"},
  {E_ACCESSDENIED, "E_ACCESSDENIED: access is denied"},
  {E_OUTOFMEMORY, "E_OUTOFMEMORY: not enough memory"},
  {E_INVALIDARG, "E_INVALIDARG: one or more arguments are invalid"},
  {CO_E_OBJISREG, "CO_E_OBJISREG: object is already registered"},
  {CO_E_OBJNOTREG, "CO_E_OBJNOTREG: object is not registered"},
};

/* The code as Lua sees it: the 32 bits as a non-negative integer, the way
** HRESULTs are written (0x80070057), whatever the platform's HRESULT type. */
static lua_Integer hresult_code(HRESULT hr) {
  return (lua_Integer)(uint32_t)hr;
}

const char *imalloc_todigits(char *out, uintptr_t v, unsigned base, int width,
                             const char *digits) {
  uintptr_t rest = v;
  int n = 1, i;
  while ((rest /= base) != 0) n++;
  if (n < width) n = width;
  out[n] = '\0';
  for (i = n - 1; i >= 0; i--) {  /* from the last digit, zeros to width */
    out[i] = digits[v % base];
    v /= base;
  }
  return out;
}

void imalloc_pushhresultmessage(lua_State *L, HRESULT hr) {
  size_t i;
  for (i = 0; i < sizeof known_hresults / sizeof known_hresults[0]; i++) {
    if (known_hresults[i].hr == hr) {
      lua_pushstring(L, known_hresults[i].text);
      return;
    }
  }
  {
    char hex[IMALLOC_HEXDIGITS];
    lua_pushfstring(L, "HRESULT 0x%s", imalloc_todigits(hex, (uint32_t)hr, 16, 8, "0123456789ABCDEF"));
  }
}

int imalloc_pushhresult(lua_State *L, HRESULT hr) {
  luaL_pushfail(L);
  imalloc_pushhresultmessage(L, hr);
  lua_pushinteger(L, hresult_code(hr));
  return 3;
}

int imalloc_pushnomem(lua_State *L) {
  luaL_pushfail(L);
  lua_pushliteral(L, "not enough memory");
  lua_pushinteger(L, E_OUTOFMEMORY_CODE);
  return 3;
}

/* }====================================================== */


/*
** {======================================================
** Checks
** =======================================================
*/

imalloc_atomic_ptr imalloc_lastlive = IMALLOC_NOHANDLE;

imalloc_Handle *imalloc_checklive_full(lua_State *L, int arg) {
  imalloc_Handle *h = imalloc_tohandle(L, arg);
  if (h->com == NULL) luaL_error(L, "attempt to use a released IMalloc");
  imalloc_atomic_setptr(&imalloc_lastlive, h);
  return h;
}

/* }====================================================== */


/*
** {======================================================
** Argument errors
** =======================================================
*/

/* The name luaopen gave the function running at level 0 ("read",
** "imalloc.wrap", "imalloc.spy.start"), or NULL. */
static const char *functionname(lua_State *L, lua_Debug *ar) {
  const char *name = NULL;
  if (!lua_getinfo(L, "f", ar)) return NULL;
  lua_getfield(L, LUA_REGISTRYINDEX, IMALLOC_NAMES_KEY);
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_pushvalue(L, -2);
    lua_rawget(L, -2);
    name = lua_tostring(L, -1);  /* NULL unless a string */
  }
  return name;  /* left on the stack, as the error is raised */
}

#undef luaL_argerror

int imalloc_argerror(lua_State *L, int arg, const char *msg) {
  lua_Debug ar;
  const char *name;
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) &&
      ar.name == NULL && (name = functionname(L, &ar)) != NULL)
    return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, name, msg);
  /* Lua knows the name, and whether `self` is not to be counted */
  return luaL_argerror(L, arg, msg);
}

/* What a value is called in a type error: "IMalloc" or "IMalloc buffer"
** for one of this module's by its tag, else its metatable's __name, else
** NULL. */
static const char *kindname(lua_State *L, int arg) {
  if (imalloc_tagged(L, arg, sizeof(imalloc_Handle), IMALLOC_HANDLE_TAG))
    return "IMalloc";
  if (imalloc_tagged(L, arg, sizeof(imalloc_Buffer), IMALLOC_BUFFER_TAG))
    return "IMalloc buffer";
  if (luaL_getmetafield(L, arg, "__name") && lua_type(L, -1) == LUA_TSTRING)
    return lua_tostring(L, -1);
  return NULL;
}

/* "X expected, got Y", where Y is the value's kind if it has one: not when
** that is X itself, which only a value of X's kind with another metatable
** (debug.setmetatable) or X's metatable lent to another value has. */
int imalloc_typeerror(lua_State *L, int arg, const char *tname) {
  const char *got = kindname(L, arg);
  if (got == NULL || strcmp(got, tname) == 0)
    got = lua_type(L, arg) == LUA_TLIGHTUSERDATA ? "light userdata"
                                                  : luaL_typename(L, arg);
  return imalloc_argerror(L, arg,
                          lua_pushfstring(L, "%s expected, got %s", tname, got));
}

/* }====================================================== */
