/*
** buffer.c: bytes in and out of task-allocator blocks, COM strings, and
** buffers (blocks owned by Lua).
**
** Every access is bounds-checked against GetSize of a block that DidAlloc
** says is the allocator's, so a script cannot read or write outside a
** block. A buffer holds its own reference to the allocator, so whatever
** order the collector finalizes handles and buffers in, the allocator is
** still there when the buffer frees its block.
*/
#include "luacompat.h"

#include <string.h>

#include "binding.h"

/*
** {======================================================
** Bounds
** =======================================================
*/

/* Room for a size_t in decimal (2^64 has 20 digits) and a NUL. */
#define DECIMAL 21

/* `v` in decimal, written at the end of `out` (DECIMAL chars); returns
** where it starts. lua_pushfstring's %I exists only from Lua 5.3 on, and %d
** would cut a size_t to an int. */
static const char *todecimal(char *out, size_t v) {
  char *p = out + DECIMAL - 1;
  *p = '\0';
  do {
    *--p = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return p;
}

/* An optional count (offset or length): `def` when absent or nil. */
static size_t optcount(lua_State *L, int arg, size_t def, const char *what) {
  return lua_isnoneornil(L, arg) ? def : imalloc_checkcount(L, arg, what);
}

/* Raises unless [offset, offset + n) lies within a block of `size` bytes. */
static void checkrange(lua_State *L, int arg, size_t size, size_t offset,
                       size_t n) {
  char dn[DECIMAL], doffset[DECIMAL], dsize[DECIMAL];
  if (offset > size || n > size - offset)
    luaL_argerror(L, arg, lua_pushfstring(L,
        "out of bounds: %s bytes at offset %s of a %s-byte block",
        todecimal(dn, n), todecimal(doffset, offset), todecimal(dsize, size)));
}

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

/* read([n [, offset]]) of a block: args at `narg` and `narg + 1`. */
static int readbytes(lua_State *L, const char *base, size_t size, int narg) {
  size_t offset = optcount(L, narg + 1, 0, "offset");
  size_t n;
  if (offset > size) checkrange(L, narg + 1, size, offset, 0);
  n = optcount(L, narg, size - offset, "length");
  checkrange(L, narg, size, offset, n);
  lua_pushlstring(L, base + offset, n);
  return 1;
}

/* write(s [, offset]) into a block: args at `sarg` and `sarg + 1`. */
static void writebytes(lua_State *L, char *base, size_t size, int sarg) {
  size_t len;
  const char *s = luaL_checklstring(L, sarg, &len);
  size_t offset = optcount(L, sarg + 1, 0, "offset");
  checkrange(L, sarg, size, offset, len);
  memcpy(base + offset, s, len);
}

/* }====================================================== */


/*
** {======================================================
** UTF-8 and UTF-16
** =======================================================
*/

/* Decodes one strict UTF-8 sequence at s[0..len) into *cp; returns its
** length, or 0 if it is not valid (overlong, surrogate, beyond U+10FFFF,
** truncated). */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp) {
  uint32_t c = s[0], min;
  size_t n, i;
  if (c < 0x80) { *cp = c; return 1; }
  else if ((c & 0xE0) == 0xC0) { n = 2; c &= 0x1F; min = 0x80; }
  else if ((c & 0xF0) == 0xE0) { n = 3; c &= 0x0F; min = 0x800; }
  else if ((c & 0xF8) == 0xF0) { n = 4; c &= 0x07; min = 0x10000; }
  else return 0;
  if (n > len) return 0;
  for (i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (s[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  *cp = c;
  return n;
}

/* Checks that `s` is UTF-8 and returns how many UTF-16 units it needs. */
static size_t utf16_length(lua_State *L, const char *s, size_t len, int arg) {
  size_t i = 0, units = 0;
  while (i < len) {
    uint32_t cp;
    size_t n = utf8_decode((const unsigned char *)s + i, len - i, &cp);
    if (n == 0) {
      char at[DECIMAL];
      luaL_argerror(L, arg, lua_pushfstring(L, "invalid UTF-8 at byte %s",
                                            todecimal(at, i + 1)));
    }
    units += cp >= 0x10000 ? 2 : 1;
    i += n;
  }
  return units;
}

/* Stores one UTF-16 unit little-endian, whatever the host's byte order. */
static unsigned char *put16(unsigned char *out, uint32_t u) {
  out[0] = (unsigned char)(u & 0xFF);
  out[1] = (unsigned char)(u >> 8);
  return out + 2;
}

static uint32_t get16(const unsigned char *in) {
  return (uint32_t)in[0] | ((uint32_t)in[1] << 8);
}

/* Appends code point `cp` to `b` as UTF-8. */
static void addutf8(luaL_Buffer *b, uint32_t cp) {
  char buf[4];
  size_t n;
  if (cp < 0x80) { buf[0] = (char)cp; n = 1; }
  else if (cp < 0x800) {
    buf[0] = (char)(0xC0 | (cp >> 6));
    buf[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    buf[0] = (char)(0xE0 | (cp >> 12));
    buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    buf[0] = (char)(0xF0 | (cp >> 18));
    buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  luaL_addlstring(b, buf, n);
}

/* Pushes `units` UTF-16LE units at `in` as UTF-8. A surrogate without its
** pair becomes U+FFFD, as Windows' WideCharToMultiByte does by default. */
static void pushutf8(lua_State *L, const unsigned char *in, size_t units) {
  luaL_Buffer b;
  size_t i;
  luaL_buffinit(L, &b);
  for (i = 0; i < units; i++) {
    uint32_t u = get16(in + 2 * i);
    if (u >= 0xD800 && u <= 0xDBFF && i + 1 < units) {
      uint32_t lo = get16(in + 2 * (i + 1));
      if (lo >= 0xDC00 && lo <= 0xDFFF) {
        addutf8(&b, 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
        i++;
        continue;
      }
    }
    addutf8(&b, (u >= 0xD800 && u <= 0xDFFF) ? 0xFFFD : u);
  }
  luaL_pushresult(&b);
}

/* }====================================================== */


/*
** {======================================================
** Handle methods
** =======================================================
*/

/* m:read(p [, n [, offset]]): n bytes (default: to the end of the block). */
static int m_read(lua_State *L) {
  imalloc_Handle *h = imalloc_checklive(L, 1);
  void *p = imalloc_checkpointer(L, 2);
  size_t size = blocksize(L, h, p, 2);
  return readbytes(L, (const char *)p, size, 3);
}

/* m:write(p, s [, offset]) */
static int m_write(lua_State *L) {
  imalloc_Handle *h = imalloc_checklive(L, 1);
  void *p = imalloc_checkpointer(L, 2);
  size_t size = blocksize(L, h, p, 2);
  writebytes(L, (char *)p, size, 3);
  return 0;
}

/* m:string(p): the bytes of a block up to its first NUL (or its end): a C
** string that native code handed over. */
static int pushcstring(lua_State *L, const void *p, size_t size) {
  const char *nul = (const char *)memchr(p, '\0', size);
  lua_pushlstring(L, (const char *)p, nul ? (size_t)(nul - (const char *)p) : size);
  return 1;
}

static int m_string(lua_State *L) {
  imalloc_Handle *h = imalloc_checklive(L, 1);
  void *p = imalloc_checkpointer(L, 2);
  return pushcstring(L, p, blocksize(L, h, p, 2));
}

/* m:strdup(s): a NUL-terminated copy of s in a new block. */
static int m_strdup(lua_State *L) {
  IMalloc *m = imalloc_checklive(L, 1)->com;
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  char *p;
  luaL_argcheck(L, len < (size_t)-1, 2, "string too long");
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
  size_t len, units, i = 0;
  const char *s = luaL_checklstring(L, 2, &len);
  unsigned char *p, *out;
  units = utf16_length(L, s, len, 2);
  luaL_argcheck(L, units < ((size_t)-1) / 2 - 1, 2, "string too long");
  p = (unsigned char *)imalloc_freed_forget(
      m->lpVtbl->Alloc(m, imalloc_spy_tag(L, m, (units + 1) * 2)));
  if (p == NULL) return imalloc_pushnomem(L);
  out = p;
  while (i < len) {
    uint32_t cp = 0;
    i += utf8_decode((const unsigned char *)s + i, len - i, &cp);
    if (cp >= 0x10000) {
      out = put16(out, 0xD800 + ((cp - 0x10000) >> 10));
      out = put16(out, 0xDC00 + ((cp - 0x10000) & 0x3FF));
    } else {
      out = put16(out, cp);
    }
  }
  put16(out, 0);
  lua_pushlightuserdata(L, p);
  lua_pushinteger(L, (lua_Integer)units);
  return 2;
}

/* m:wstring(p [, nchars]): a UTF-16LE string in a block as UTF-8. Without
** nchars, up to the first NUL or the end of the block; with it, exactly
** nchars units (NULs included), within the block. */
/* The UTF-16LE string in a block of `size` bytes at `p`, as UTF-8: up to
** the first NUL, or exactly the count of units at `narg` when given. */
static int pushwstring(lua_State *L, const void *p, size_t size, int narg) {
  size_t maxunits = size / 2, units;
  const unsigned char *in = (const unsigned char *)p;
  if (lua_isnoneornil(L, narg)) {
    for (units = 0; units < maxunits && get16(in + 2 * units) != 0; units++) {}
  } else {
    units = optcount(L, narg, 0, "length");
    if (units > maxunits) {
      char dunits[DECIMAL], dsize[DECIMAL];
      luaL_argerror(L, narg, lua_pushfstring(L,
          "out of bounds: %s characters in a %s-byte block",
          todecimal(dunits, units), todecimal(dsize, size)));
    }
  }
  pushutf8(L, in, units);
  return 1;
}

static int m_wstring(lua_State *L) {
  imalloc_Handle *h = imalloc_checklive(L, 1);
  void *p = imalloc_checkpointer(L, 2);
  return pushwstring(L, p, blocksize(L, h, p, 2), 3);
}

/* A released buffer, made before its block exists so that an error cannot
** leak the block. Called from handle methods (buffer metatable: upvalue 3). */
static imalloc_Buffer *newbuffer(lua_State *L) {
  imalloc_Buffer *b =
      (imalloc_Buffer *)lua_newuserdatauv(L, sizeof(imalloc_Buffer), 0);
  b->ptr = NULL;
  b->size = 0;
  b->com = NULL;
  b->checks = 0;
  lua_pushvalue(L, IMALLOC_OTHERMT);
  lua_setmetatable(L, -2);
  return b;
}

/* Records block `p` as owned by buffer `b` (owned = 1), or forgets it
** (owned = 0). The table maps each block to its buffer: a block freed
** behind its buffer's back may since be another buffer's, at the same
** address, and the stale buffer then forgets it only if it is still its
** own (stale = 1), which costs a lookup the common case does without. */
static void setowned(lua_State *L, void *p, const imalloc_Buffer *b,
                     int owned, int stale) {
  imalloc_Owned *o = imalloc_owned(L);
  lua_getiuservalue(L, IMALLOC_OWNED, 1);
  if (stale) {
    lua_rawgetp(L, -1, p);
    stale = lua_touserdata(L, -1) != b;  /* another buffer's now */
    lua_pop(L, 1);
  }
  if (!stale) {
    if (owned)
      lua_pushlightuserdata(L, (void *)(uintptr_t)b);
    else
      lua_pushnil(L);
    lua_rawsetp(L, -2, p);  /* may raise (memory) only when adding */
  }
  lua_pop(L, 1);
  o->count += owned ? 1 : -1;
}

/* Makes `b` own block `p` and takes a reference on `m`; then records the
** block as owned. Should recording raise (out of memory), the buffer
** already owns the block, and its __gc frees it. */
static void own(lua_State *L, imalloc_Buffer *b, imalloc_Handle *h, void *p,
                size_t size) {
  IMalloc *m = h->com;
  m->lpVtbl->AddRef(m);
  b->checks = h->checks;
  b->com = m;
  b->ptr = p;
  b->size = size;
  setowned(L, p, b, 1, 0);
}

/* m:buffer(n): a buffer owning a new block of n bytes. */
static int m_buffer(lua_State *L) {
  imalloc_Handle *h = imalloc_checklive(L, 1);
  IMalloc *m = h->com;
  size_t n = imalloc_checksize(L, 2);
  imalloc_Buffer *b = newbuffer(L);
  void *p = imalloc_freed_forget(m->lpVtbl->Alloc(m, imalloc_spy_tag(L, m, n)));
  if (p == NULL) return imalloc_pushnomem(L);
  own(L, b, h, p, n);
  return 1;
}

/* m:bufferof(s): a buffer owning a new block that holds a copy of the
** bytes of s (no NUL added). */
static int m_bufferof(lua_State *L) {
  imalloc_Handle *h = imalloc_checklive(L, 1);
  IMalloc *m = h->com;
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  imalloc_Buffer *b = newbuffer(L);
  void *p = imalloc_freed_forget(m->lpVtbl->Alloc(m, imalloc_spy_tag(L, m, len)));
  if (p == NULL) return imalloc_pushnomem(L);
  memcpy(p, s, len);
  own(L, b, h, p, len);
  return 1;
}

/* m:adopt(p): a buffer that takes ownership of block p. Always checked,
** even after setchecks(false): a wrong pointer here would be freed later,
** far from the mistake. */
static int m_adopt(lua_State *L) {
  imalloc_Handle *h = imalloc_checklive(L, 1);
  void *p = imalloc_checkpointer(L, 2);
  SIZE_T size;
  imalloc_Buffer *b;
  luaL_argcheck(L, p != NULL, 2, "NULL pointer");
  if (imalloc_freed_didalloc(h->com, p) != 1)
    luaL_argerror(L, 2, "pointer is not a live block of this IMalloc");
  if (imalloc_isowned(L, imalloc_owned(L), p))
    luaL_argerror(L, 2, "pointer is owned by a buffer (free or detach the buffer)");
  size = h->com->lpVtbl->GetSize(h->com, p);
  b = newbuffer(L);
  own(L, b, h, p, size);
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** Buffers
** =======================================================
*/

static imalloc_Buffer *tobuffer(lua_State *L) {
  imalloc_Buffer *b = (imalloc_Buffer *)lua_touserdata(L, 1);
  if (b == NULL || !lua_getmetatable(L, 1) ||
      !lua_rawequal(L, -1, IMALLOC_SELFMT))
    luaL_typeerror(L, 1, "IMalloc buffer");
  lua_pop(L, 1);
  return b;
}

/* Forgets the block and gives back the allocator; returns the block.
** `stale`: the block was freed behind the buffer's back (see setowned). */
static void *disown(lua_State *L, imalloc_Buffer *b, int stale) {
  void *p = b->ptr;
  IMalloc *m = b->com;
  setowned(L, p, b, 0, stale);
  b->ptr = NULL;
  b->size = 0;
  b->com = NULL;
  m->lpVtbl->Release(m);
  return p;
}

/* Whether the buffer's block is still what the buffer made it: a live
** block of its allocator, of the buffer's size. Something else (a handle
** with setchecks(false), native code given b:ptr()) may have freed it or
** Realloc may have moved or resized it. A new block of the same size at the
** same address cannot be told apart. */
static int blockintact(const imalloc_Buffer *b) {
  IMalloc *m = b->com;
  return !b->checks || (imalloc_freed_didalloc(m, b->ptr) == 1 &&
                        m->lpVtbl->GetSize(m, b->ptr) == (SIZE_T)b->size);
}

/* The buffer at 1, which must own a block that is still intact. A buffer
** whose block is gone is released, without freeing anything, and raises. */
static imalloc_Buffer *checkbuffer(lua_State *L) {
  imalloc_Buffer *b = tobuffer(L);
  if (b->ptr == NULL) luaL_error(L, "attempt to use a released buffer");
  if (!blockintact(b)) {
    disown(L, b, 1);
    luaL_error(L, "buffer's block was freed or resized behind its back");
  }
  return b;
}

static void freebuffer(lua_State *L, imalloc_Buffer *b) {
  IMalloc *m = b->com;
  void *p;
  m->lpVtbl->AddRef(m);  /* disown gives back the buffer's reference */
  p = disown(L, b, 0);
  imalloc_freed_note(p);
  m->lpVtbl->Free(m, p);
  m->lpVtbl->Release(m);
}

/* __gc and __close: frees the block unless freed or detached already, or
** freed behind the buffer's back. */
static int b_gc(lua_State *L) {
  imalloc_Buffer *b = tobuffer(L);
  if (b->ptr == NULL) return 0;
  if (blockintact(b))
    freebuffer(L, b);
  else
    disown(L, b, 1);
  return 0;
}

static int b_free(lua_State *L) {
  freebuffer(L, checkbuffer(L));
  return 0;
}

/* b:detach(): gives up ownership; returns the pointer, which the caller
** (or whoever it hands it to) must now free. */
static int b_detach(lua_State *L) {
  lua_pushlightuserdata(L, disown(L, checkbuffer(L), 0));
  return 1;
}

static int b_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)checkbuffer(L)->size);
  return 1;
}

static int b_ptr(lua_State *L) {
  lua_pushlightuserdata(L, checkbuffer(L)->ptr);
  return 1;
}

static int b_read(lua_State *L) {
  imalloc_Buffer *b = checkbuffer(L);
  return readbytes(L, (const char *)b->ptr, b->size, 2);
}

static int b_string(lua_State *L) {
  imalloc_Buffer *b = checkbuffer(L);
  return pushcstring(L, b->ptr, b->size);
}

static int b_wstring(lua_State *L) {
  imalloc_Buffer *b = checkbuffer(L);
  return pushwstring(L, b->ptr, b->size, 2);
}

static int b_write(lua_State *L) {
  imalloc_Buffer *b = checkbuffer(L);
  writebytes(L, (char *)b->ptr, b->size, 2);
  lua_settop(L, 1);
  return 1;
}

/* b:resize(n): Realloc. Returns the buffer, or fail with the buffer as it
** was. resize(0) keeps a valid zero-length block (Realloc(p, 0) would
** free it). */
static int b_resize(lua_State *L) {
  imalloc_Buffer *b = checkbuffer(L);
  size_t n = imalloc_checksize(L, 2);
  IMalloc *m = b->com;
  void *old = b->ptr, *q;
  if (n == 0) {
    q = imalloc_freed_forget(m->lpVtbl->Alloc(m, imalloc_spy_tag(L, m, 0)));
    if (q != NULL) {
      imalloc_freed_note(old);
      m->lpVtbl->Free(m, old);
    }
  } else {
    q = m->lpVtbl->Realloc(m, old, imalloc_spy_tag(L, m, n));
    if (q != NULL && q != old) imalloc_freed_note(old);  /* moved */
    imalloc_freed_forget(q);
  }
  if (q == NULL) return imalloc_pushnomem(L);
  b->ptr = q;  /* the buffer owns the new block before anything can raise */
  b->size = n;
  if (q != old) {
    setowned(L, old, b, 0, 0);
    setowned(L, q, b, 1, 0);
  }
  lua_settop(L, 1);
  return 1;
}

static int b_tostring(lua_State *L) {
  imalloc_Buffer *b = tobuffer(L);
  if (b->ptr == NULL)
    lua_pushliteral(L, "IMalloc buffer (released)");
  else {
    char dsize[DECIMAL];
    char hex[IMALLOC_HEXDIGITS];
    lua_pushfstring(L, "IMalloc buffer (%s bytes at 0x%s)",
                    todecimal(dsize, b->size),
                    imalloc_tohex(hex, (uintptr_t)b->ptr, 1, "0123456789abcdef"));
  }
  return 1;
}

/* }====================================================== */


const luaL_Reg imalloc_memory_methods[] = {
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

const luaL_Reg imalloc_buffer_methods[] = {
  {"read", b_read},
  {"write", b_write},
  {"string", b_string},
  {"wstring", b_wstring},
  {"resize", b_resize},
  {"ptr", b_ptr},
  {"detach", b_detach},
  {"free", b_free},
  {NULL, NULL}
};

const luaL_Reg imalloc_buffer_metamethods[] = {
  {"__gc", b_gc},
#if LUACOMPAT_HAS_CLOSE
  {"__close", b_gc},
#endif
  {"__len", b_len},
  {"__tostring", b_tostring},
  {NULL, NULL}
};
