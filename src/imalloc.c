/*
** imalloc.c: the COM task allocator (IMalloc) as a Lua userdata.
**
** A handle owns the references it took (one from get, wrap or
** queryinterface, one more per addref) and gives back exactly those: by
** release, or by __gc / __close, which are one function that does nothing
** on a handle that owns none. Every method calls through the COM vtable;
** the platform is behind backend.h.
*/
#include "luacompat.h"

#include <string.h>

#include "backend.h"
#include "binding.h"

#define E_OUTOFMEMORY_CODE ((lua_Integer)0x8007000E)

/* IMalloc's vtable: IUnknown's three methods and its own six. */
#define IMALLOC_VTBL_SLOTS 9

/*
** {======================================================
** HRESULTs as Lua values
** =======================================================
*/

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

const char *imalloc_tohex(char *out, uintptr_t v, int width,
                          const char *digits) {
  char rev[IMALLOC_HEXDIGITS];
  int n = 0, i;
  do {
    rev[n++] = digits[v & 0xF];
    v >>= 4;
  } while (v != 0 || n < width);
  for (i = 0; i < n; i++) out[i] = rev[n - 1 - i];
  out[n] = '\0';
  return out;
}

static void pushhresultmessage(lua_State *L, HRESULT hr) {
  size_t i;
  for (i = 0; i < sizeof known_hresults / sizeof known_hresults[0]; i++) {
    if (known_hresults[i].hr == hr) {
      lua_pushstring(L, known_hresults[i].text);
      return;
    }
  }
  {
    char hex[IMALLOC_HEXDIGITS];
    lua_pushfstring(L, "HRESULT 0x%s", imalloc_tohex(hex, (uint32_t)hr, 8, "0123456789ABCDEF"));
  }
}

int imalloc_pushhresult(lua_State *L, HRESULT hr) {
  luaL_pushfail(L);
  pushhresultmessage(L, hr);
  lua_pushinteger(L, hresult_code(hr));
  return 3;
}

int imalloc_pushnomem(lua_State *L) {
  luaL_pushfail(L);
  lua_pushliteral(L, "not enough memory");
  lua_pushinteger(L, E_OUTOFMEMORY_CODE);
  return 3;
}

/* imalloc.hresult(code): the message for an HRESULT code. */
static int l_hresult(lua_State *L) {
  lua_Integer code = imalloc_checkinteger(L, 1);
  luaL_argcheck(L, code >= 0 && code <= 0xFFFFFFFF, 1,
                "HRESULT out of range (0 to 0xFFFFFFFF)");
  pushhresultmessage(L, (HRESULT)(uint32_t)code);
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** Handles
** =======================================================
*/

imalloc_atomic_ptr imalloc_lastlive;

/* A released handle, created before any reference is taken, so that an
** out-of-memory error cannot leak one (liolib's newprefile). Called from
** handle methods and module functions, whose upvalue 1 is its metatable. */
static imalloc_Handle *newhandle(lua_State *L) {
  imalloc_Handle *h =
      (imalloc_Handle *)lua_newuserdatauv(L, sizeof(imalloc_Handle), 0);
  h->com = NULL;
  h->refs = 0;
  h->checks = 1;
  h->owned = imalloc_owned(L);  /* a handle never leaves its Lua state */
  lua_pushvalue(L, IMALLOC_SELFMT);
  lua_setmetatable(L, -2);
  return h;
}

/* Gives back every reference the handle owns; nothing if it owns none. */
static void releaseall(imalloc_Handle *h) {
  IMalloc *com = h->com;
  lua_Integer refs = h->refs;
  imalloc_forgethandle(h);
  h->com = NULL;  /* released before the calls, whatever they do */
  h->refs = 0;
  while (refs-- > 0) com->lpVtbl->Release(com);
}

/* __gc and __close */
static int m_gc(lua_State *L) {
  imalloc_Handle *h = imalloc_tohandle(L, 1);
  releaseall(h);
  return 0;
}

static int m_tostring(lua_State *L) {
  imalloc_Handle *h = imalloc_tohandle(L, 1);
  if (h->com == NULL) {
    lua_pushliteral(L, "IMalloc (released)");
  } else {
    char hex[IMALLOC_HEXDIGITS];
    lua_pushfstring(L, "IMalloc (0x%s)",
                    imalloc_tohex(hex, (uintptr_t)h->com, 1, "0123456789abcdef"));
  }
  return 1;
}

/* The handle at `idx`, or NULL for any other value: __eq can be called
** with a handle on either side (Lua calls the right operand's __eq when
** the left one has none), and must answer false, not raise. */
static imalloc_Handle *testhandle(lua_State *L, int idx) {
  imalloc_Handle *h = (imalloc_Handle *)lua_touserdata(L, idx);
  int ishandle = h != NULL && lua_getmetatable(L, idx);
  if (ishandle) {
    ishandle = lua_rawequal(L, -1, IMALLOC_SELFMT);
    lua_pop(L, 1);
  }
  return ishandle ? h : NULL;
}

/* Two handles are equal when they hold the same interface pointer. */
static int m_eq(lua_State *L) {
  imalloc_Handle *a = testhandle(L, 1), *b = testhandle(L, 2);
  lua_pushboolean(L, a != NULL && b != NULL && a->com != NULL &&
                         a->com == b->com);
  return 1;
}

static int m_alloc(lua_State *L) {
  IMalloc *m = imalloc_checklive(L, 1)->com;
  void *p = m->lpVtbl->Alloc(m, imalloc_spy_tag(L, m, imalloc_checksize(L, 2)));
  if (p == NULL) return imalloc_pushnomem(L);
  lua_pushlightuserdata(L, p);
  return 1;
}

static int m_realloc(lua_State *L) {
  imalloc_Handle *h = imalloc_checklive(L, 1);
  void *p = imalloc_checkpointer(L, 2);
  size_t cb = imalloc_checksize(L, 3);
  void *q;
  if (p != NULL) imalloc_checkfreeable(L, h, p, 2);
  q = h->com->lpVtbl->Realloc(h->com, p, imalloc_spy_tag(L, h->com, cb));
  if (q != NULL) {
    lua_pushlightuserdata(L, q);
    return 1;
  }
  if (cb == 0) {  /* Realloc(p, 0) frees p: not a failure */
    lua_pushnil(L);
    return 1;
  }
  return imalloc_pushnomem(L);
}

static int m_free(lua_State *L) {
  imalloc_Handle *h = imalloc_checklive(L, 1);
  void *p = imalloc_checkpointer(L, 2);
  if (p != NULL) imalloc_checkfreeable(L, h, p, 2);
  h->com->lpVtbl->Free(h->com, p);
  return 0;
}

static int m_getsize(lua_State *L) {
  imalloc_Handle *h = imalloc_checklive(L, 1);
  void *p = imalloc_checkpointer(L, 2);
  SIZE_T size;
  if (p != NULL) imalloc_checkowned(L, h, p, 2);
  size = h->com->lpVtbl->GetSize(h->com, p);
  /* (SIZE_T)-1, GetSize(NULL)'s answer, is -1 to Lua */
  lua_pushinteger(L, size == (SIZE_T)-1 ? -1 : (lua_Integer)size);
  return 1;
}

static int m_didalloc(lua_State *L) {
  IMalloc *m = imalloc_checklive(L, 1)->com;
  void *p = imalloc_checkpointer(L, 2);
  lua_pushinteger(L, m->lpVtbl->DidAlloc(m, p));
  return 1;
}

static int m_heapminimize(lua_State *L) {
  IMalloc *m = imalloc_checklive(L, 1)->com;
  m->lpVtbl->HeapMinimize(m);
  return 0;
}

static int hexdigit(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Reads `n` hex digits at *s into *out; 0 if one is not a hex digit. */
static int readhex(const char **s, int n, uint32_t *out) {
  uint32_t v = 0;
  while (n-- > 0) {
    int d = hexdigit((unsigned char)*(*s)++);
    if (d < 0) return 0;
    v = (v << 4) | (uint32_t)d;
  }
  *out = v;
  return 1;
}

/* "{00000002-0000-0000-C000-000000000046}": the registry form of an IID. */
static int parseiid(const char *s, size_t len, IID *iid) {
  uint32_t v;
  int i;
  if (len != 38 || s[0] != '{' || s[9] != '-' || s[14] != '-' ||
      s[19] != '-' || s[24] != '-' || s[37] != '}')
    return 0;
  s++;
  if (!readhex(&s, 8, &v)) return 0;
  iid->Data1 = v;
  s++;
  if (!readhex(&s, 4, &v)) return 0;
  iid->Data2 = (uint16_t)v;
  s++;
  if (!readhex(&s, 4, &v)) return 0;
  iid->Data3 = (uint16_t)v;
  s++;
  for (i = 0; i < 8; i++) {
    if (i == 2) s++;  /* the dash inside the last two groups */
    if (!readhex(&s, 2, &v)) return 0;
    iid->Data4[i] = (uint8_t)v;
  }
  return 1;
}

static int m_queryinterface(lua_State *L) {
  IMalloc *m = imalloc_checklive(L, 1)->com;
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  IID iid;
  imalloc_Handle *h;
  void *out = NULL;
  HRESULT hr;
  if (!parseiid(s, len, &iid))
    luaL_argerror(L, 2, "IID expected as \"{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}\"");
  h = newhandle(L);
  hr = m->lpVtbl->QueryInterface(m, &iid, &out);
  if (hr < 0) return imalloc_pushhresult(L, hr);
  if (out != (void *)m) {
    /* Another interface of the object: the binding knows only IMalloc's
    ** vtable, so it gives the reference back rather than mistype it. */
    if (out != NULL) ((IUnknown *)out)->lpVtbl->Release((IUnknown *)out);
    return imalloc_pushhresult(L, E_NOINTERFACE);
  }
  h->com = m;
  h->refs = 1;
  return 1;
}

static int m_addref(lua_State *L) {
  imalloc_Handle *h = imalloc_checklive(L, 1);
  ULONG count = h->com->lpVtbl->AddRef(h->com);
  h->refs++;
  lua_pushinteger(L, (lua_Integer)count);
  return 1;
}

/* Returns what Release returned (COM's own count, which the task
** allocator's singleton does not keep) and the references the handle
** still owns. */
static int m_release(lua_State *L) {
  imalloc_Handle *h = imalloc_checklive(L, 1);
  IMalloc *com = h->com;
  ULONG count;
  if (--h->refs == 0) {
    imalloc_forgethandle(h);
    h->com = NULL;
  }
  count = com->lpVtbl->Release(com);
  lua_pushinteger(L, (lua_Integer)count);
  lua_pushinteger(L, h->refs);
  return 2;
}

static int m_pointer(lua_State *L) {
  lua_pushlightuserdata(L, imalloc_checklive(L, 1)->com);
  return 1;
}

/* setchecks(false) lets free, realloc and getsize skip the DidAlloc check,
** for hot paths whose pointers are known good. Returns the handle. */
static int m_setchecks(lua_State *L) {
  imalloc_Handle *h = imalloc_checklive(L, 1);
  luaL_checktype(L, 2, LUA_TBOOLEAN);  /* setchecks(0) must not mean true */
  h->checks = lua_toboolean(L, 2);
  lua_settop(L, 1);
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** Module functions
** =======================================================
*/

static int l_get(lua_State *L) {
  lua_Integer context = lua_isnoneornil(L, 1) ? 1 : imalloc_checkinteger(L, 1);
  imalloc_Handle *h;
  IMalloc *m = NULL;
  HRESULT hr;
  luaL_argcheck(L, context >= 0 && context <= 0xFFFFFFFF, 1,
                "context out of range (0 to 0xFFFFFFFF)");
  h = newhandle(L);
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
  imalloc_Handle *h = newhandle(L);
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
    int owned = task != m && task->lpVtbl->DidAlloc(task, m) == 1;
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
  luaL_checkany(L, 1);
  if (!lua_getmetatable(L, 1)) {
    luaL_pushfail(L);
  } else if (lua_rawequal(L, -1, IMALLOC_SELFMT)) {
    imalloc_Handle *h = (imalloc_Handle *)lua_touserdata(L, 1);
    lua_pushstring(L, h->com ? "IMalloc" : "released IMalloc");
  } else if (lua_rawequal(L, -1, IMALLOC_OTHERMT)) {
    imalloc_Buffer *b = (imalloc_Buffer *)lua_touserdata(L, 1);
    lua_pushstring(L, b->ptr ? "buffer" : "released buffer");
  } else {
    luaL_pushfail(L);
  }
  return 1;
}

/* address(p): a pointer as an integer. */
static int l_address(lua_State *L) {
  if (!luacompat_pushunsigned(L, (uintptr_t)imalloc_checkpointer(L, 1)))
    luaL_error(L, "address beyond 2^53: no exact number for it in this Lua");
  return 1;
}

/* }====================================================== */


static const luaL_Reg handle_methods[] = {
  {"alloc", m_alloc},
  {"realloc", m_realloc},
  {"free", m_free},
  {"getsize", m_getsize},
  {"didalloc", m_didalloc},
  {"heapminimize", m_heapminimize},
  {"queryinterface", m_queryinterface},
  {"addref", m_addref},
  {"release", m_release},
  {"pointer", m_pointer},
  {"setchecks", m_setchecks},
  {NULL, NULL}
};

static const luaL_Reg handle_metamethods[] = {
  {"__gc", m_gc},
#if LUACOMPAT_HAS_CLOSE
  {"__close", m_gc},
#endif
  {"__tostring", m_tostring},
  {"__eq", m_eq},
  {NULL, NULL}
};

static const luaL_Reg module_functions[] = {
  {"get", l_get},
  {"wrap", l_wrap},
  {"type", l_type},
  {"address", l_address},
  {"hresult", l_hresult},
  {NULL, NULL}
};

/* Sets the functions `l` into the table on top of the stack, each with the
** binding's three upvalues (binding.h), given as stack indices. */
static void setfuncs(lua_State *L, const luaL_Reg *l, int selfmt, int owned,
                     int othermt) {
  lua_pushvalue(L, selfmt);
  lua_pushvalue(L, owned);
  lua_pushvalue(L, othermt);
  luaL_setfuncs(L, l, 3);
}

/* A metatable with its methods table as __index. */
static void newmetatable(lua_State *L, const char *key, const char *name) {
  luaL_newmetatable(L, key);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");  /* what type errors call it */
  lua_newtable(L);
  lua_setfield(L, -2, "__index");
}

/* Pushes the blocks owned by buffers of this Lua state, made by the first
** load: a second load (package.loaded cleared, require again) must see
** the blocks that buffers of the first own, and the other way round. */
static void pushowned(lua_State *L) {
  imalloc_Owned *o;
  if (lua_getfield(L, LUA_REGISTRYINDEX, IMALLOC_OWNED_KEY) == LUA_TUSERDATA)
    return;
  lua_pop(L, 1);
  o = (imalloc_Owned *)lua_newuserdatauv(L, sizeof(imalloc_Owned), 1);
  o->count = 0;
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, IMALLOC_OWNED_KEY);
}

IMALLOC_EXPORT int luaopen_imalloc_core(lua_State *L);

IMALLOC_EXPORT int luaopen_imalloc_core(lua_State *L) {
  int handlemt, buffermt, owned;
  newmetatable(L, IMALLOC_HANDLE, "IMalloc");
  handlemt = lua_gettop(L);
  newmetatable(L, IMALLOC_BUFFER, "IMalloc buffer");
  buffermt = lua_gettop(L);
  pushowned(L);
  owned = lua_gettop(L);

  lua_pushvalue(L, handlemt);
  setfuncs(L, handle_metamethods, handlemt, owned, buffermt);
  lua_getfield(L, -1, "__index");
  setfuncs(L, handle_methods, handlemt, owned, buffermt);
  setfuncs(L, imalloc_memory_methods, handlemt, owned, buffermt);
  lua_pop(L, 2);

  lua_pushvalue(L, buffermt);
  setfuncs(L, imalloc_buffer_metamethods, buffermt, owned, handlemt);
  lua_getfield(L, -1, "__index");
  setfuncs(L, imalloc_buffer_methods, buffermt, owned, handlemt);
  lua_pop(L, 2);

  luaL_newlibtable(L, module_functions);
  setfuncs(L, module_functions, handlemt, owned, buffermt);
  /* The same functions again, closures of their own, for lua/imalloc.lua
  ** to export. A call Lua cannot name (pcall(imalloc.wrap, x)) is named by
  ** the loaded module that holds the closure; were it in both imalloc and
  ** imalloc.core, the name would depend on the hash order of
  ** package.loaded: 'imalloc.wrap' in one run, 'imalloc.core.wrap' in the
  ** next. */
  luaL_newlibtable(L, module_functions);
  setfuncs(L, module_functions, handlemt, owned, buffermt);
  lua_setfield(L, -2, "api");
  lua_pushstring(L, imalloc_backend_name);
  lua_setfield(L, -2, "backend");
  lua_newtable(L);
  setfuncs(L, imalloc_spy_functions, handlemt, owned, buffermt);
  lua_setfield(L, -2, "spy");
  return 1;
}
