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

#include <limits.h>
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

/* Where a method finds its block: checks everything about it (the handle
** or buffer at 1, the pointer) and returns its address and size, or
** raises. A method calls it again after anything that may have run a
** finalizer (THE RULE, binding.h). */
typedef void *(*locate_fn)(lua_State *L, size_t *size);

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

/* Room for `n` bytes on top of the stack (a userdata), made before the
** block they are copied from is checked (again). */
static char *newroom(lua_State *L, size_t n) {
  return (char *)lua_newuserdatauv(L, n, 0);
}

/* read([n [, offset]]) of the block `locate` finds: args at `narg` and
** `narg + 1`. Lua 5.4's lua_pushlstring copies the bytes before it may
** collect; the others collect first, then copy, so there the bytes go
** through room made before the block is checked again. */
static int readbytes(lua_State *L, locate_fn locate, int narg) {
  size_t size, offset, n;
  const char *base = (const char *)locate(L, &size);
  offset = optcount(L, narg + 1, 0, "offset");
  if (offset > size) checkrange(L, narg + 1, size, offset, 0);
  n = optcount(L, narg, size - offset, "length");
  checkrange(L, narg, size, offset, n);
#if LUACOMPAT_PUSH_COPIES_FIRST
  lua_pushlstring(L, base + offset, n);
#else
  {
    char *room;
    lua_settop(L, narg + 1);  /* the room goes above the arguments */
    room = newroom(L, n);
    base = (const char *)locate(L, &size);
    checkrange(L, narg, size, offset, n);
    memcpy(room, base + offset, n);
    lua_pushlstring(L, room, n);
  }
#endif
  return 1;
}

/* write(s [, offset]) into the block `locate` finds: args at `sarg` and
** `sarg + 1`. */
static void writebytes(lua_State *L, locate_fn locate, int sarg) {
  size_t len, offset, size;
  char *base = (char *)locate(L, &size);
  const char *s = imalloc_checkstring(L, sarg, &len);
  offset = optcount(L, sarg + 1, 0, "offset");
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

/* Writes code point `cp` as UTF-8 at `out` (unless NULL); returns its
** length. */
static size_t pututf8(char *out, uint32_t cp) {
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
  if (out != NULL) memcpy(out, buf, n);
  return n;
}

/* Writes `units` UTF-16LE units at `in` as UTF-8 at `out`, or only counts
** the bytes when `out` is NULL; returns the count. A surrogate without its
** pair becomes U+FFFD, as Windows' WideCharToMultiByte does by default. */
static size_t toutf8(char *out, const unsigned char *in, size_t units) {
  size_t i, n = 0;
  for (i = 0; i < units; i++) {
    uint32_t u = get16(in + 2 * i);
    if (u >= 0xD800 && u <= 0xDBFF && i + 1 < units) {
      uint32_t lo = get16(in + 2 * (i + 1));
      if (lo >= 0xDC00 && lo <= 0xDFFF) {
        n += pututf8(out ? out + n : NULL,
                     0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
        i++;
        continue;
      }
    }
    n += pututf8(out ? out + n : NULL,
                 (u >= 0xD800 && u <= 0xDFFF) ? 0xFFFD : u);
  }
  return n;
}

/* }====================================================== */


/*
** {======================================================
** Handle methods
** =======================================================
*/

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
  return readbytes(L, handleblock, 3);
}

/* m:write(p, s [, offset]) */
static int m_write(lua_State *L) {
  writebytes(L, handleblock, 3);
  return 0;
}

/* The length of the C string at `p`: up to its first NUL, or `size`. */
static size_t cstrlen(const void *p, size_t size) {
  const char *nul = (const char *)memchr(p, '\0', size);
  return nul ? (size_t)(nul - (const char *)p) : size;
}

/* m:string(p), b:string(): the bytes of the block `locate` finds up to its
** first NUL (or its end): a C string that native code handed over. Where
** the bytes go through room (readbytes), a finalizer that ran while it was
** made may have written the block: measured again, and made again if the
** string grew. */
static int pushcstring(lua_State *L, locate_fn locate) {
  size_t size;
  const char *p = (const char *)locate(L, &size);
  size_t len = cstrlen(p, size);
#if !LUACOMPAT_PUSH_COPIES_FIRST
  char *room = NULL;
  size_t roomsize = 0;
  for (;;) {
    if (room != NULL) lua_pop(L, 1);
    room = newroom(L, len);
    roomsize = len;
    p = (const char *)locate(L, &size);
    len = cstrlen(p, size);
    if (len <= roomsize) break;
  }
  memcpy(room, p, len);
  p = room;
#endif
  lua_pushlstring(L, p, len);
  return 1;
}

static int m_string(lua_State *L) {
  return pushcstring(L, handleblock);
}

/* m:strdup(s): a NUL-terminated copy of s in a new block. */
static int m_strdup(lua_State *L) {
  IMalloc *m = imalloc_checklive(L, 1)->com;
  size_t len;
  const char *s = imalloc_checkstring(L, 2, &len);
  char *p;
  luaL_argcheck(L, len < (size_t)-1, 2, "string too long");
  p = (char *)m->lpVtbl->Alloc(m, imalloc_spy_tag(L, m, len + 1));
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
  const char *s = imalloc_checkstring(L, 2, &len);
  unsigned char *p, *out;
  units = utf16_length(L, s, len, 2);
  luaL_argcheck(L, units < ((size_t)-1) / 2 - 1, 2, "string too long");
  p = (unsigned char *)m->lpVtbl->Alloc(m, imalloc_spy_tag(L, m, (units + 1) * 2));
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

/* The UTF-16 units of a block of `size` bytes at `in` that wstring turns
** into UTF-8: up to the first NUL, or exactly the count at `narg` when
** given (NULs included), within the block. */
static size_t wunits(lua_State *L, const unsigned char *in, size_t size,
                     int narg) {
  size_t maxunits = size / 2, units;
  if (lua_isnoneornil(L, narg)) {
    for (units = 0; units < maxunits && get16(in + 2 * units) != 0; units++) {}
    return units;
  }
  units = optcount(L, narg, 0, "length");
  if (units > maxunits) {
    char dunits[DECIMAL], dsize[DECIMAL];
    luaL_argerror(L, narg, lua_pushfstring(L,
        "out of bounds: %s characters in a %s-byte block",
        todecimal(dunits, units), todecimal(dsize, size)));
  }
  return units;
}

/* m:wstring(p [, nchars]), b:wstring([nchars]): the UTF-16LE string in the
** block `locate` finds, as UTF-8. The UTF-8 is written into room made
** first, and the block is checked and measured again after: making the
** room may have run a finalizer that freed or wrote the block. */
static int pushwstring(lua_State *L, locate_fn locate, int narg) {
  size_t size, units, need;
  const unsigned char *in;
  char *room = NULL;
  size_t roomsize = 0;
  in = (const unsigned char *)locate(L, &size);
  units = wunits(L, in, size, narg);
  need = toutf8(NULL, in, units);
  lua_settop(L, narg);  /* the room goes above the arguments */
  for (;;) {
    if (room != NULL) lua_pop(L, 1);
    room = newroom(L, need);
    roomsize = need;
    in = (const unsigned char *)locate(L, &size);
    units = wunits(L, in, size, narg);
    need = toutf8(NULL, in, units);
    if (need <= roomsize) break;
  }
  lua_pushlstring(L, room, toutf8(room, in, units));
  return 1;
}

static int m_wstring(lua_State *L) {
  return pushwstring(L, handleblock, 3);
}

/* A released buffer, made before its block exists so that an error cannot
** leak the block. Called from handle methods (buffer metatable: upvalue 3). */
static imalloc_Buffer *newbuffer(lua_State *L) {
  imalloc_Buffer *b =
      (imalloc_Buffer *)lua_newuserdatauv(L, sizeof(imalloc_Buffer), 0);
  b->tag = IMALLOC_BUFFER_TAG;
  b->ptr = NULL;
  b->size = 0;
  b->com = NULL;
  b->checks = 0;
  lua_pushvalue(L, IMALLOC_OTHERMT);
  lua_setmetatable(L, -2);
  return b;
}

/* A Lua table does not shrink when its keys are removed, only when it
** grows past its room: once most of the blocks it recorded are gone, the
** live ones move to a new table and the old one is collected. */
static void shrinkowned(lua_State *L, imalloc_Owned *o) {
  lua_Integer changes = o->changes;
  if (o->count > INT_MAX / 2) return;
  lua_getiuservalue(L, IMALLOC_OWNED, 1);
  /* Made with room for every live record, so that filling it allocates
  ** nothing; making it may run finalizers that change the records, and
  ** then this try is given up. */
  lua_createtable(L, 0, (int)o->count);
  if (o->changes == changes) {
    lua_pushnil(L);
    while (lua_next(L, -3)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);  /* new[key] = value */
    }
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, IMALLOC_OWNED, 1);
    o->peak = o->count;
  }
  lua_pop(L, 2);
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
  o->changes++;
  if (o->count > o->peak) o->peak = o->count;
  if (!owned && o->peak >= 64 && o->count < o->peak / 4) shrinkowned(L, o);
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
  size_t n;
  imalloc_Buffer *b;
  imalloc_Handle *h;
  IMalloc *m;
  void *p;
  imalloc_checklive(L, 1);  /* each argument's error in order */
  n = imalloc_checksize(L, 2);
  b = newbuffer(L);  /* may run a finalizer: check again */
  h = imalloc_checklive(L, 1);
  m = h->com;
  p = m->lpVtbl->Alloc(m, imalloc_spy_tag(L, m, n));
  if (p == NULL) return imalloc_pushnomem(L);
  own(L, b, h, p, n);
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
  b = newbuffer(L);  /* may run a finalizer: check again */
  h = imalloc_checklive(L, 1);
  m = h->com;
  p = m->lpVtbl->Alloc(m, imalloc_spy_tag(L, m, len));
  if (p == NULL) return imalloc_pushnomem(L);
  memcpy(p, s, len);
  own(L, b, h, p, len);
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
  b = newbuffer(L);  /* may run a finalizer: check again */
  h = imalloc_checklive(L, 1);
  luaL_argcheck(L, p != NULL, 2, "NULL pointer");
  if (h->com->lpVtbl->DidAlloc(h->com, p) != 1)
    luaL_argerror(L, 2, "pointer is not a live block of this IMalloc");
  if (imalloc_isowned(L, imalloc_owned(L), p))
    luaL_argerror(L, 2, "pointer is owned by a buffer (free or detach the buffer)");
  size = h->com->lpVtbl->GetSize(h->com, p);
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
  imalloc_Buffer *b = imalloc_testbuffer(L, 1, IMALLOC_SELFMT);
  if (b == NULL) luaL_typeerror(L, 1, "IMalloc buffer");
  return b;
}

/* Forgets the block and gives back the allocator; returns the block.
** `stale`: the block was freed behind the buffer's back (see setowned). */
static void *disown(lua_State *L, imalloc_Buffer *b, int stale) {
  void *p = b->ptr;
  IMalloc *m = b->com;
  /* released before the record is touched: that may allocate (and run a
  ** finalizer that would free the block again through this buffer) */
  b->ptr = NULL;
  b->size = 0;
  b->com = NULL;
  setowned(L, p, b, 0, stale);
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
  return !b->checks || (m->lpVtbl->DidAlloc(m, b->ptr) == 1 &&
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
  m->lpVtbl->Free(m, p);
  m->lpVtbl->Release(m);
}

/* __gc and __close: frees the block unless freed or detached already, or
** freed behind the buffer's back. */
static int b_gc(lua_State *L) {
  /* anything else given the buffer's metatable is left alone (m_gc) */
  imalloc_Buffer *b = imalloc_testbuffer(L, 1, IMALLOC_SELFMT);
  if (b == NULL || b->ptr == NULL) return 0;
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

/* The block of b:read() and the like: the buffer's, still intact. */
static void *bufferblock(lua_State *L, size_t *size) {
  imalloc_Buffer *b = checkbuffer(L);
  *size = b->size;
  return b->ptr;
}

static int b_read(lua_State *L) {
  return readbytes(L, bufferblock, 2);
}

static int b_string(lua_State *L) {
  return pushcstring(L, bufferblock);
}

static int b_wstring(lua_State *L) {
  return pushwstring(L, bufferblock, 2);
}

static int b_write(lua_State *L) {
  writebytes(L, bufferblock, 2);
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
    q = m->lpVtbl->Alloc(m, imalloc_spy_tag(L, m, 0));
    if (q != NULL) m->lpVtbl->Free(m, old);
  } else {
    q = m->lpVtbl->Realloc(m, old, imalloc_spy_tag(L, m, n));
  }
  if (q == NULL) return imalloc_pushnomem(L);
  b->ptr = q;  /* the buffer owns the new block before anything can raise */
  b->size = n;
  if (q != old) {
    /* the new block first: recording it may run a finalizer that frees
    ** this buffer (and forgets q), or that makes a buffer of a block at the
    ** old address, whose record must stay (stale = 1) */
    setowned(L, q, b, 1, 0);
    setowned(L, old, b, 0, 1);
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
