/*
** handle.c: the handle, the COM task allocator (IMalloc) as a Lua userdata,
** and every method it has.
**
** A handle owns the references it took (one from get, wrap or
** queryinterface, one more per addref) and gives back exactly those: by
** release, or by __gc / __close, which are one function that does nothing
** on a handle that owns none. Every method calls through the COM vtable;
** which allocator is behind it is the backend's business (backend.h).
*/
#include "luacompat.h"

#include <string.h>

#include "binding.h"
#include "bytes.h"


/*
** {======================================================
** Lifetime
** =======================================================
*/

/* A released handle, created before any reference is taken, so that an
** out-of-memory error cannot leak one (liolib's newprefile). Called from
** handle methods and module functions, whose upvalue 1 is its metatable. */
imalloc_Handle *imalloc_newhandle(lua_State *L) {
  imalloc_Handle *h =
      (imalloc_Handle *)lua_newuserdatauv(L, sizeof(imalloc_Handle), 0);
  imalloc_forgethandle(h);  /* a handle that died unreleased had this address */
  h->tag = IMALLOC_HANDLE_TAG;
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

/* __gc and __close. Anything else a script gave the handle's metatable is
** left alone: an error in a finalizer would surface in whatever code the
** collector interrupted (Lua 5.1). */
static int m_gc(lua_State *L) {
  imalloc_Handle *h = imalloc_testhandle(L, 1, IMALLOC_SELFMT);
  if (h != NULL) releaseall(h);
  return 0;
}

static int m_tostring(lua_State *L) {
  imalloc_Handle *h = imalloc_tohandle(L, 1);
  if (h->com == NULL) {
    lua_pushliteral(L, "IMalloc (released)");
  } else {
    char hex[IMALLOC_HEXDIGITS];
    lua_pushfstring(L, "IMalloc (0x%s)",
                    imalloc_todigits(hex, (uintptr_t)h->com, 16, 1, "0123456789abcdef"));
  }
  return 1;
}

/* Two handles are equal when they hold the same interface pointer. __eq
** can be called with a handle on either side (Lua calls the right
** operand's __eq when the left one has none): anything else is unequal. */
static int m_eq(lua_State *L) {
  imalloc_Handle *a = imalloc_testhandle(L, 1, IMALLOC_SELFMT);
  imalloc_Handle *b = imalloc_testhandle(L, 2, IMALLOC_SELFMT);
  lua_pushboolean(L, a != NULL && b != NULL && a->com != NULL &&
                         a->com == b->com);
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** IMalloc through its vtable
** =======================================================
*/

static int m_alloc(lua_State *L) {
  IMalloc *m = imalloc_checklive(L, 1)->com;
  void *p = imalloc_freed_forget(
      m->lpVtbl->Alloc(m, imalloc_spy_tag(L, m, imalloc_checksize(L, 2))));
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
  if (q != NULL && q != p) imalloc_freed_note(p);  /* moved */
  if (q == NULL && cb == 0) imalloc_freed_note(p);  /* freed by COM's rule */
  if (q != NULL) {
    imalloc_freed_forget(q);
    lua_pushlightuserdata(L, q);
    return 1;
  }
  if (cb == 0) {  /* Realloc(p, 0) frees p: not a failure */
    lua_pushnil(L);
    return 1;
  }
  /* Unchecked (setchecks(false)), a pointer the allocator does not know
  ** fails here too: that is the caller's mistake, not a lack of memory. */
  if (p != NULL && imalloc_freed_didalloc(h->com, p) != 1)
    luaL_argerror(L, 2, "pointer is not a live block of this IMalloc");
  return imalloc_pushnomem(L);
}

static int m_free(lua_State *L) {
  imalloc_Handle *h = imalloc_checklive(L, 1);
  void *p = imalloc_checkpointer(L, 2);
  if (p != NULL) imalloc_checkfreeable(L, h, p, 2);
  imalloc_freed_note(p);
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
  /* 0 for a freed block, even while the heap delays its free (freed.h) */
  lua_pushinteger(L, imalloc_freed_didalloc(m, p));
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
  size_t len;
  const char *s;
  imalloc_Handle *h;
  IMalloc *m;
  IID iid;
  void *out = NULL;
  HRESULT hr;
  imalloc_checklive(L, 1);  /* each argument's error in order */
  s = imalloc_checkstring(L, 2, &len);
  if (!parseiid(s, len, &iid))
    luaL_argerror(L, 2, "IID expected as \"{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}\"");
  h = imalloc_newhandle(L);  /* may run a finalizer: check again */
  m = imalloc_checklive(L, 1)->com;
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
  imalloc_checktype(L, 2, LUA_TBOOLEAN);  /* setchecks(0) must not mean true */
  h->checks = lua_toboolean(L, 2);
  lua_settop(L, 1);
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** Bytes, strings and buffers
** =======================================================
*/

/* The size of the block at `p`, which must be a live block of `h`'s
** allocator (not checked after setchecks(false)). */
static size_t blocksize(lua_State *L, imalloc_Handle *h, void *p, int arg) {
  SIZE_T size;
  luaL_argcheck(L, p != NULL, arg, "NULL pointer");
  imalloc_checkowned(L, h, p, arg);
  size = h->com->lpVtbl->GetSize(h->com, p);
  if (size == (SIZE_T)-1) luaL_argerror(L, arg, "block of unknown size");
  return (size_t)size;
}

/* The block of m:read(p), m:write(p, ...) and the like: the handle at 1,
** live, and the pointer at 2, a live block of its allocator. */
static void *handleblock(lua_State *L, size_t *size) {
  imalloc_Handle *h = imalloc_checklive(L, 1);
  void *p = imalloc_checkpointer(L, 2);
  *size = blocksize(L, h, p, 2);
  return p;
}

/* m:read(p [, n [, offset]]): n bytes (default: to the end of the block). */
static int m_read(lua_State *L) {
  return imalloc_readbytes(L, handleblock, 3);
}

/* m:write(p, s [, offset]) */
static int m_write(lua_State *L) {
  imalloc_writebytes(L, handleblock, 3);
  return 0;
}

static int m_string(lua_State *L) {
  return imalloc_pushcstring(L, handleblock);
}

/* m:strdup(s): a NUL-terminated copy of s in a new block. */
static int m_strdup(lua_State *L) {
  IMalloc *m = imalloc_checklive(L, 1)->com;
  size_t len;
  const char *s = imalloc_checkstring(L, 2, &len);
  char *p;
  /* len + 1 cannot wrap: every Lua keeps its strings below SIZE_MAX bytes */
  p = (char *)imalloc_freed_forget(
      m->lpVtbl->Alloc(m, imalloc_spy_tag(L, m, len + 1)));
  if (p == NULL) return imalloc_pushnomem(L);
  memcpy(p, s, len);
  p[len] = '\0';
  lua_pushlightuserdata(L, p);
  return 1;
}

/* m:wstrdup(s): UTF-8 to a NUL-terminated UTF-16LE string (an LPOLESTR) in
** a new block. Returns the pointer and the length in UTF-16 units. */
static int m_wstrdup(lua_State *L) {
  IMalloc *m = imalloc_checklive(L, 1)->com;
  size_t len, units;
  const char *s = imalloc_checkstring(L, 2, &len);
  unsigned char *p;
  units = imalloc_utf16_length(L, s, len, 2);
  luaL_argcheck(L, units < ((size_t)-1) / 2 - 1, 2, "string too long");
  p = (unsigned char *)imalloc_freed_forget(
      m->lpVtbl->Alloc(m, imalloc_spy_tag(L, m, (units + 1) * 2)));
  if (p == NULL) return imalloc_pushnomem(L);
  imalloc_toutf16(p, s, len);
  lua_pushlightuserdata(L, p);
  lua_pushinteger(L, (lua_Integer)units);
  return 2;
}

static int m_wstring(lua_State *L) {
  return imalloc_pushwstring(L, handleblock, 3);
}

/* m:buffer(n): a buffer owning a new block of n bytes. */
static int m_buffer(lua_State *L) {
  size_t n;
  imalloc_Buffer *b;
  imalloc_Handle *h;
  IMalloc *m;
  void *p;
  imalloc_checklive(L, 1);  /* each argument's error in order */
  n = imalloc_checksize(L, 2);
  b = imalloc_newbuffer(L);  /* may run a finalizer: check again */
  h = imalloc_checklive(L, 1);
  m = h->com;
  p = imalloc_freed_forget(m->lpVtbl->Alloc(m, imalloc_spy_tag(L, m, n)));
  if (p == NULL) return imalloc_pushnomem(L);
  imalloc_own(L, b, h, p, n);
  return 1;
}

/* m:bufferof(s): a buffer owning a new block that holds a copy of the
** bytes of s (no NUL added). */
static int m_bufferof(lua_State *L) {
  size_t len;
  const char *s;
  imalloc_Buffer *b;
  imalloc_Handle *h;
  IMalloc *m;
  void *p;
  imalloc_checklive(L, 1);  /* each argument's error in order */
  s = imalloc_checkstring(L, 2, &len);
  b = imalloc_newbuffer(L);  /* may run a finalizer: check again */
  h = imalloc_checklive(L, 1);
  m = h->com;
  p = imalloc_freed_forget(m->lpVtbl->Alloc(m, imalloc_spy_tag(L, m, len)));
  if (p == NULL) return imalloc_pushnomem(L);
  memcpy(p, s, len);
  imalloc_own(L, b, h, p, len);
  return 1;
}

/* m:adopt(p): a buffer that takes ownership of block p. Always checked,
** even after setchecks(false): a wrong pointer here would be freed later,
** far from the mistake. */
static int m_adopt(lua_State *L) {
  void *p;
  imalloc_Buffer *b;
  imalloc_Handle *h;
  SIZE_T size;
  imalloc_checklive(L, 1);  /* each argument's error in order */
  p = imalloc_checkpointer(L, 2);
  b = imalloc_newbuffer(L);  /* may run a finalizer: check again */
  h = imalloc_checklive(L, 1);
  luaL_argcheck(L, p != NULL, 2, "NULL pointer");
  if (imalloc_freed_didalloc(h->com, p) != 1)
    luaL_argerror(L, 2, "pointer is not a live block of this IMalloc");
  if (imalloc_isowned(L, imalloc_owned(L), p))
    luaL_argerror(L, 2, "pointer is owned by a buffer (free or detach the buffer)");
  size = h->com->lpVtbl->GetSize(h->com, p);
  imalloc_own(L, b, h, p, size);
  return 1;
}

/* }====================================================== */


const luaL_Reg imalloc_handle_methods[] = {
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
  {"read", m_read},
  {"write", m_write},
  {"string", m_string},
  {"strdup", m_strdup},
  {"wstrdup", m_wstrdup},
  {"wstring", m_wstring},
  {"buffer", m_buffer},
  {"bufferof", m_bufferof},
  {"adopt", m_adopt},
  {NULL, NULL}
};

const luaL_Reg imalloc_handle_metamethods[] = {
  {"__gc", m_gc},
#if LUACOMPAT_HAS_CLOSE
  {"__close", m_gc},
#endif
  {"__tostring", m_tostring},
  {"__eq", m_eq},
  {NULL, NULL}
};
