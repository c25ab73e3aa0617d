/*
** buffer.c: buffers, blocks of the task allocator owned by Lua.
**
** A buffer frees its block in __gc / __close unless it was freed or
** detached first, and holds its own reference to the allocator, so that
** whatever order the collector finalizes handles and buffers in, the
** allocator is still there when the buffer frees its block. The blocks
** that buffers own are recorded per Lua state (binding.h), so that no
** handle method frees one behind its buffer's back.
*/
#include "luacompat.h"

#include <limits.h>
#include <string.h>

#include "binding.h"
#include "bytes.h"


/*
** {======================================================
** Blocks owned by buffers
** =======================================================
*/

/* A released buffer, made before its block exists so that an error cannot
** leak the block. Called from handle methods (buffer metatable: upvalue 3). */
imalloc_Buffer *imalloc_newbuffer(lua_State *L) {
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
  lua_getiuservalue(L, IMALLOC_OWNED, 1);  /* a table: setowned checked */
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
** imalloc_own (stale = 1), which costs a lookup the common case does without. */
static void setowned(lua_State *L, void *p, const imalloc_Buffer *b,
                     int owned, int stale) {
  imalloc_Owned *o = imalloc_owned(L);
  int records;
  /* Counted before anything can raise: a buffer whose record fails below
  ** still owns its block, and is counted out when it lets it go. Counted
  ** after, such a buffer took one from the count of others, and at 0
  ** imalloc_isowned stops looking. */
  o->count += owned ? 1 : -1;
  o->changes++;
  if (o->count > o->peak) o->peak = o->count;
  records = imalloc_pushrecords(L);
  /* Without the table nothing can be recorded, and nothing is left to
  ** forget. Raising here is no worse than lua_rawsetp's raising for memory
  ** below (see imalloc_own). */
  if (!records && owned)
    luaL_error(L, "the record of buffer-owned blocks is not a table "
                  "(replaced with the debug library)");
  if (records && stale) {
    lua_rawgetp(L, -1, p);
    stale = lua_touserdata(L, -1) != b;  /* another buffer's now */
    lua_pop(L, 1);
  }
  if (records && !stale) {
    if (owned)
      lua_pushlightuserdata(L, (void *)(uintptr_t)b);
    else
      lua_pushnil(L);
    lua_rawsetp(L, -2, p);  /* may raise (memory) only when adding */
  }
  lua_pop(L, 1);
  if (records && !owned && o->peak >= 64 && o->count < o->peak / 4)
    shrinkowned(L, o);
}

/* Makes `b` imalloc_own block `p` and takes a reference on `m`; then records the
** block as owned. Should recording raise (out of memory), the buffer
** already owns the block, and its __gc frees it. */
void imalloc_own(lua_State *L, imalloc_Buffer *b, imalloc_Handle *h, void *p,
                size_t size) {
  IMalloc *m = h->com;
  m->lpVtbl->AddRef(m);
  b->checks = h->checks;
  b->com = m;
  b->ptr = p;
  b->size = size;
  setowned(L, p, b, 1, 0);
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
  return !b->checks || (imalloc_freed_didalloc(m, b->ptr) == 1 &&
                        m->lpVtbl->GetSize(m, b->ptr) == (SIZE_T)b->size);
}

/* The buffer at 1, which must imalloc_own a block that is still intact. A buffer
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
  return imalloc_readbytes(L, bufferblock, 2);
}

static int b_string(lua_State *L) {
  return imalloc_pushcstring(L, bufferblock);
}

static int b_wstring(lua_State *L) {
  return imalloc_pushwstring(L, bufferblock, 2);
}

static int b_write(lua_State *L) {
  imalloc_writebytes(L, bufferblock, 2);
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
    /* the new block first: b owns it if recording raises (memory). The
    ** old address's record goes only if still b's (stale = 1): freed behind
    ** b's back, the block there may be another buffer's of b's size now */
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
    char dsize[IMALLOC_DECIMAL];
    char hex[IMALLOC_HEXDIGITS];
    lua_pushfstring(L, "IMalloc buffer (%s bytes at 0x%s)",
                    imalloc_todecimal(dsize, b->size),
                    imalloc_todigits(hex, (uintptr_t)b->ptr, 16, 1, "0123456789abcdef"));
  }
  return 1;
}

/* }====================================================== */


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
