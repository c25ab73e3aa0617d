/*
** bytes.h: bytes and strings in and out of a block (bytes.c), shared by
** the handle's methods (m:read(p), ...) and the buffer's (b:read(), ...).
*/
#ifndef IMALLOC_BYTES_H
#define IMALLOC_BYTES_H

#include "binding.h"

/* Where a method finds its block: checks everything about it (the handle
** or buffer at 1, the pointer) and returns its address and size, or
** raises. The functions here call it again after anything that may have
** run a finalizer (THE RULE, binding.h). */
typedef void *(*imalloc_locate_fn)(lua_State *L, size_t *size);

/* Room for a size_t in decimal (2^64 has 20 digits) and a NUL. */
#define IMALLOC_DECIMAL 21

/* `v` in decimal into `out` (IMALLOC_DECIMAL chars); returns `out`. */
static inline const char *imalloc_todecimal(char *out, size_t v) {
  return imalloc_todigits(out, v, 10, 1, "0123456789");
}

/* read([n [, offset]]) of the block `locate` finds, the arguments at
** `narg` and `narg + 1`: pushes the bytes; returns 1. */
IMALLOC_HIDDEN int imalloc_readbytes(lua_State *L, imalloc_locate_fn locate,
                                     int narg);

/* write(s [, offset]) into the block `locate` finds, the arguments at
** `sarg` and `sarg + 1`. */
IMALLOC_HIDDEN void imalloc_writebytes(lua_State *L, imalloc_locate_fn locate,
                                       int sarg);

/* Pushes the block's bytes up to its first NUL (or its end); returns 1. */
IMALLOC_HIDDEN int imalloc_pushcstring(lua_State *L, imalloc_locate_fn locate);

/* Pushes the block's UTF-16LE string as UTF-8: up to the first NUL, or
** exactly the count of units at `narg` when given; returns 1. */
IMALLOC_HIDDEN int imalloc_pushwstring(lua_State *L, imalloc_locate_fn locate,
                                       int narg);

/* Checks that s[0..len) is UTF-8 (raising for argument `arg` if not) and
** returns how many UTF-16 units it needs. */
IMALLOC_HIDDEN size_t imalloc_utf16_length(lua_State *L, const char *s,
                                           size_t len, int arg);

/* Writes s[0..len), checked by imalloc_utf16_length, as UTF-16LE at
** `out`, with a NUL unit after it. */
IMALLOC_HIDDEN void imalloc_toutf16(unsigned char *out, const char *s,
                                    size_t len);

#endif
