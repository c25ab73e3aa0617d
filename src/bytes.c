/*
** bytes.c: bytes and strings in and out of a block, bounds-checked, for
** the handle's methods and the buffer's alike (bytes.h).
**
** Every function here finds its block through an imalloc_locate_fn, and
** calls it again after anything that may run a finalizer (THE RULE,
** binding.h): the block it copies from or into is always one just checked.
*/
#include "luacompat.h"

#include <string.h>

#include "binding.h"
#include "bytes.h"


/*
** {======================================================
** Bounds and bytes
** =======================================================
*/

/* An optional count (offset or length): `def` when absent or nil. */
static size_t optcount(lua_State *L, int arg, size_t def, const char *what) {
  return lua_isnoneornil(L, arg) ? def : imalloc_checkcount(L, arg, what);
}

/* Raises unless [offset, offset + n) lies within a block of `size` bytes. */
static void checkrange(lua_State *L, int arg, size_t size, size_t offset,
                       size_t n) {
  char dn[IMALLOC_DECIMAL], doffset[IMALLOC_DECIMAL], dsize[IMALLOC_DECIMAL];
  if (offset > size || n > size - offset)
    luaL_argerror(L, arg, lua_pushfstring(L,
        "out of bounds: %s bytes at offset %s of a %s-byte block",
        imalloc_todecimal(dn, n), imalloc_todecimal(doffset, offset), imalloc_todecimal(dsize, size)));
}

/* Room for `n` bytes on top of the stack (a userdata), made before the
** block they are copied from is checked (again). */
static char *newroom(lua_State *L, size_t n) {
  return (char *)lua_newuserdatauv(L, n, 0);
}

/* read([n [, offset]]) of the block `locate` finds: args at `narg` and
** `narg + 1`. Lua 5.3 and 5.4's lua_pushlstring copy the bytes before they may
** collect; the others collect first, then copy, so there the bytes go
** through room made before the block is checked again. */
int imalloc_readbytes(lua_State *L, imalloc_locate_fn locate, int narg) {
  size_t size, offset, n;
  const char *base = (const char *)locate(L, &size);
  offset = optcount(L, narg + 1, 0, "offset");
  checkrange(L, narg + 1, size, offset, 0);  /* so that size - offset cannot wrap */
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
void imalloc_writebytes(lua_State *L, imalloc_locate_fn locate, int sarg) {
  size_t len, offset, size;
  char *base = (char *)locate(L, &size);
  const char *s = imalloc_checkstring(L, sarg, &len);
  offset = optcount(L, sarg + 1, 0, "offset");
  checkrange(L, sarg, size, offset, len);
  memcpy(base + offset, s, len);
}

/* The length of the C string at `p`: up to its first NUL, or `size`. */
static size_t cstrlen(const void *p, size_t size) {
  const char *nul = (const char *)memchr(p, '\0', size);
  return nul ? (size_t)(nul - (const char *)p) : size;
}

/* m:string(p), b:string(): the bytes of the block `locate` finds up to its
** first NUL (or its end): a C string that native code handed over. Where
** the bytes go through room (imalloc_readbytes), a finalizer that ran while it was
** made may have written the block: measured again, and made again if the
** string grew. */
int imalloc_pushcstring(lua_State *L, imalloc_locate_fn locate) {
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
size_t imalloc_utf16_length(lua_State *L, const char *s, size_t len, int arg) {
  size_t i = 0, units = 0;
  while (i < len) {
    uint32_t cp;
    size_t n = utf8_decode((const unsigned char *)s + i, len - i, &cp);
    if (n == 0) {
      char at[IMALLOC_DECIMAL];
      luaL_argerror(L, arg, lua_pushfstring(L, "invalid UTF-8 at byte %s",
                                            imalloc_todecimal(at, i + 1)));
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
  units = imalloc_checkcount(L, narg, "length");
  if (units > maxunits) {
    char dunits[IMALLOC_DECIMAL], dsize[IMALLOC_DECIMAL];
    luaL_argerror(L, narg, lua_pushfstring(L,
        "out of bounds: %s characters in a %s-byte block",
        imalloc_todecimal(dunits, units), imalloc_todecimal(dsize, size)));
  }
  return units;
}

/* m:wstring(p [, nchars]), b:wstring([nchars]): the UTF-16LE string in the
** block `locate` finds, as UTF-8. The UTF-8 is written into room made
** first, and the block is checked and measured again after: making the
** room may have run a finalizer that freed or wrote the block. */
int imalloc_pushwstring(lua_State *L, imalloc_locate_fn locate, int narg) {
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

/* Writes the UTF-8 string s[0..len), already checked by
** imalloc_utf16_length, as UTF-16LE at `out`, with a NUL unit after it. */
void imalloc_toutf16(unsigned char *out, const char *s, size_t len) {
  size_t i = 0;
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
}

/* }====================================================== */
