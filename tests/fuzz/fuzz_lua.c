/*
** fuzz_lua.c: libFuzzer target over the argument checking of the Lua API.
**
** Each input runs in a fresh lua_State with imalloc.core (compiled into
** this binary from src/). The input is a byte-coded program: call one of
** the module's functions, handle methods, buffer methods or metamethods
** (all of them, found at run time) with 0 to 4 arguments decoded from the
** input: every Lua type, edge numbers, NaN, strings, live and released
** handles and buffers, live, freed, interior, foreign and NULL pointers,
** integer addresses. The call runs in lua_pcall. Allowed outcomes: results,
** or an error whose message is one the binding raises (argument errors,
** "attempt to use a released ..." and Lua's own "not enough memory"); a
** crash, a sanitizer report or any other message aborts.
**
** Pointers that calls return are collected; after lua_close every block is
** freed, and the allocator's live_blocks and the fake IMalloc's references
** must be back where they started: an error path that leaks a block or a
** reference is found too.
**
** Two uses are outside the API's contract and are not generated:
** imalloc.wrap of a pointer that is not an interface (wrap calls through
** it; only NULL, the two IMalloc pointers, live blocks, which wrap refuses,
** and non-pointers are passed), and setchecks(false), whose documented
** contract is that the script's pointers are good (it gets a true value).
*/
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "com_abi.h"
#include "imalloc.h"
#include "taskalloc.h"
#include "fake_com.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int luaopen_imalloc_core(lua_State *L);

/* A call returns at most 3 values: the pool never overflows. */
enum { MAX_CALLS = 48, NPOOL = 3 * MAX_CALLS, NOBJ = 8, FAKE_LIVE = 64 };
#define LUA_MEM_LIMIT ((size_t)256 << 20)

static void die(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_lua: %s%s%s\n", what, detail ? ": " : "",
          detail ? detail : "");
  abort();
}

/* ---- a fake IMalloc: a foreign allocator that is safe with any pointer -- */

typedef struct {
  IMalloc iface;
  long refs;
  void *live[FAKE_LIVE];
  size_t sizes[FAKE_LIVE];
} Fake;

static Fake fake;

static int fake_find(const void *p) {
  int i;
  if (!p) return -1;
  for (i = 0; i < FAKE_LIVE; i++)
    if (fake.live[i] == p) return i;
  return -1;
}

static ULONG STDMETHODCALLTYPE f_addref(IMalloc *m) {
  (void)m;
  return (ULONG)++fake.refs;
}
static ULONG STDMETHODCALLTYPE f_release(IMalloc *m) {
  (void)m;
  if (fake.refs <= 1) die("fake IMalloc: Release of a reference not taken", NULL);
  return (ULONG)--fake.refs;
}
static void *STDMETHODCALLTYPE f_alloc(IMalloc *m, SIZE_T cb) {
  int k;
  void *p;
  (void)m;
  for (k = 0; k < FAKE_LIVE && fake.live[k]; k++) {}
  if (k == FAKE_LIVE || cb > ((SIZE_T)1 << 20)) return NULL;
  p = malloc(cb ? cb : 1);
  if (!p) return NULL;
  fake.live[k] = p;
  fake.sizes[k] = cb;
  return p;
}
static void STDMETHODCALLTYPE f_free(IMalloc *m, void *p) {
  int i = fake_find(p);
  (void)m;
  if (i < 0) return;
  fake.live[i] = NULL;
  free(p);
}
static void *STDMETHODCALLTYPE f_realloc(IMalloc *m, void *p, SIZE_T cb) {
  int i;
  void *q;
  if (!p) return f_alloc(m, cb);
  if (cb == 0) {
    f_free(m, p);
    return NULL;
  }
  i = fake_find(p);
  if (i < 0 || cb > ((SIZE_T)1 << 20)) return NULL;
  q = realloc(p, cb);
  if (!q) return NULL;
  fake.live[i] = q;
  fake.sizes[i] = cb;
  return q;
}
static SIZE_T STDMETHODCALLTYPE f_getsize(IMalloc *m, void *p) {
  int i = fake_find(p);
  (void)m;
  return i < 0 ? (SIZE_T)-1 : fake.sizes[i];
}
static int STDMETHODCALLTYPE f_didalloc(IMalloc *m, void *p) {
  (void)m;
  if (!p) return -1;
  return fake_find(p) >= 0;
}

static const IMallocVtbl fake_vtbl = {
  fake_malloc_qi, f_addref, f_release, f_alloc, f_realloc, f_free, f_getsize,
  f_didalloc, fake_malloc_heapminimize
};

/* ---- the state ------------------------------------------------------------ */

/* Input, u8, u64: fuzz_input.h */

static IMalloc *task;           /* the task allocator */
static void *pool[NPOOL];       /* pointers calls returned, this input */
static unsigned npool;
static size_t lua_mem;          /* bytes the state holds */
static char foreign_static[64];

/* The state's allocator, with a ceiling, so that reading a huge block is
** Lua's "not enough memory" and not the fuzzer's out-of-memory. */
static void *lalloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (ptr == NULL) osize = 0;
  if (nsize == 0) {
    free(ptr);
    lua_mem -= osize;
    return NULL;
  }
  if (nsize > osize && lua_mem + (nsize - osize) > LUA_MEM_LIMIT) return NULL;
  ptr = realloc(ptr, nsize);
  if (ptr) lua_mem = lua_mem - osize + nsize;
  return ptr;
}

/* Builds F = { {name, fn}, ... } sorted by name: every function of the
** module, every method and metamethod of handles and buffers; and the
** first handles (the task allocator, the fake) and buffers. */
static const char prelude[] =
  "local core, fakep = ...\n"
  "local F, seen = {}, {}\n"
  "local function add(prefix, t)\n"
  "  for k, v in pairs(t) do\n"
  "    if type(v) == 'function' and not seen[v] then\n"
  "      seen[v] = true\n"
  "      F[#F + 1] = { prefix .. k, v }\n"
  "    end\n"
  "  end\n"
  "end\n"
  "add('imalloc.', core)\n"
  "local m = core.get()\n"
  "local hmt = debug.getmetatable(m)\n"
  "add('m:', hmt.__index)\n"
  "add('m.', hmt)\n"
  "local b = m:buffer(1)\n"
  "local bmt = debug.getmetatable(b)\n"
  "add('b:', bmt.__index)\n"
  "add('b.', bmt)\n"
  "b:free()\n"
  "table.sort(F, function(x, y) return x[1] < y[1] end)\n"
  "local w = core.wrap(fakep)\n"
  "return F, { m, w }, { m:buffer(32), w:buffer(8) }\n";

/* Slots in the registry: handles and buffers that calls returned. */
static void put_object(lua_State *L, const char *kind, int idx, unsigned k) {
  idx = lua_absindex(L, idx);
  lua_getfield(L, LUA_REGISTRYINDEX, kind);
  lua_pushvalue(L, idx);
  lua_rawseti(L, -2, (lua_Integer)(k % NOBJ) + 1);
  lua_pop(L, 1);
}

static void push_object(lua_State *L, const char *kind, unsigned k) {
  lua_getfield(L, LUA_REGISTRYINDEX, kind);
  lua_rawgeti(L, -1, (lua_Integer)(k % NOBJ) + 1);
  lua_remove(L, -2);
}

static void remember(void *p) {
  if (p && npool < NPOOL) pool[npool++] = p;
}

static void *pool_at(Input *in) {
  return npool ? pool[u8(in) % npool] : NULL;
}

/* Pushes one argument decoded from the input. */
static void push_arg(lua_State *L, Input *in, int for_wrap) {
  static const lua_Integer ints[] = {
    0, 1, -1, 2, 8, 16, 64, 100, 4096, 65536, 65537, 0x7FFFFFFF,
    0xFFFFFFFF, 0x100000000, (lua_Integer)1 << 40, (lua_Integer)1 << 46,
    (lua_Integer)1 << 53, LUA_MAXINTEGER, LUA_MININTEGER, 0x80070057,
  };
  static const char *const strings[] = {
    "", "x", "hello", "{00000000-0000-0000-C000-000000000046}",
    "{00000002-0000-0000-C000-000000000046}",
    "{00000002-0000-0000-c000-000000000046}",
    "{0000001D-0000-0000-C000-000000000046}",
    "{00000002-0000-0000-C000-00000000004G}",
    "{00000002-0000-0000-C0000-00000000046}", "10", "0x10", "1e3",
    "Gr\xC3\xBC\xC3\x9F\x65", "\xF0\x9F\x98\x80", "\xED\xA0\x80", "\xC0\x80",
    "\xF4\x90\x80\x80", "\xE2\x82", "a\0b",
  };
  uint8_t kind = u8(in);
  void *p;
  switch (kind % 26) {
    case 0: lua_pushnil(L); break;
    case 1: lua_pushboolean(L, kind & 0x80); break;
    case 2: lua_pushinteger(L, (int8_t)u8(in)); break;
    case 3: lua_pushinteger(L, (lua_Integer)u64(in)); break;
    case 4: lua_pushinteger(L, ints[u8(in) % (sizeof ints / sizeof ints[0])]); break;
    case 5: {
      static const double f[] = { 0.5, 1.5, -0.0, 8.0, -1.5, 1e308, -1e308,
                                  9007199254740993.0, 18446744073709551616.0,
                                  9223372036854775808.0, 4096.0 };
      uint8_t k = u8(in);
      if (k % 16 == 13) lua_pushnumber(L, NAN);
      else if (k % 16 == 14) lua_pushnumber(L, HUGE_VAL);
      else if (k % 16 == 15) lua_pushnumber(L, -HUGE_VAL);
      else lua_pushnumber(L, f[k % (sizeof f / sizeof f[0])]);
      break;
    }
    case 6: {
      size_t len = u8(in) % 40;
      char buf[40];
      size_t i;
      for (i = 0; i < len; i++) buf[i] = (char)u8(in);
      lua_pushlstring(L, buf, len);
      break;
    }
    case 7: lua_pushstring(L, strings[u8(in) % (sizeof strings / sizeof strings[0])]); break;
    case 8: {  /* a long string */
      size_t len = (size_t)u8(in) * 257;
      luaL_Buffer b;
      char *s = luaL_buffinitsize(L, &b, len + 1);
      memset(s, 'a' + (int)(len % 26), len);
      luaL_pushresultsize(&b, len);
      break;
    }
    case 9: lua_newtable(L); break;
    case 10: lua_getglobal(L, "print"); break;
    case 11: {  /* another module's full userdata */
      lua_getglobal(L, "io");
      lua_getfield(L, -1, "stdout");
      lua_remove(L, -2);
      break;
    }
    case 12: lua_newthread(L); break;
    case 13: case 14: push_object(L, "H", u8(in)); break;
    case 15: push_object(L, "B", u8(in)); break;
    case 16: case 17: /* a pointer a call returned: live, freed or moved */
      p = pool_at(in);
      if (for_wrap && p && task->lpVtbl->DidAlloc(task, p) != 1) p = NULL;
      lua_pushlightuserdata(L, p);
      break;
    case 18:  /* an interior pointer, or one past the end */
      p = pool_at(in);
      if (for_wrap || !p) lua_pushnil(L);
      else lua_pushlightuserdata(L, (char *)p + 1 + u8(in) % 64);
      break;
    case 19:  /* an integer address */
      p = pool_at(in);
      lua_pushinteger(L, (lua_Integer)(uintptr_t)p + (kind & 0x80 ? 16 : 0));
      break;
    case 20: lua_pushlightuserdata(L, NULL); break;
    case 21:
      if (for_wrap) lua_pushlightuserdata(L, &fake.iface);
      else lua_pushlightuserdata(L, foreign_static + 16);
      break;
    case 22: lua_pushlightuserdata(L, task); break;
    case 23: lua_pushlightuserdata(L, &fake.iface); break;
    case 24:  /* a made-up address */
      if (for_wrap) lua_pushnil(L);
      else lua_pushlightuserdata(L, (void *)(uintptr_t)u64(in));
      break;
    default: lua_pushinteger(L, (lua_Integer)(uintptr_t)(void *)foreign_static);
      break;
  }
}

/* What the binding may raise: its argument errors, a released object,
** and Lua's out-of-memory. */
static int allowed_error(const char *msg) {
  const char *q;
  if (!strcmp(msg, "attempt to use a released IMalloc") ||
      !strcmp(msg, "attempt to use a released buffer") ||
      !strcmp(msg, "not enough memory"))
    return 1;
  if (strncmp(msg, "bad argument #", 14) != 0 &&
      strncmp(msg, "calling '", 9) != 0)
    return 0;
  q = strstr(msg, " (");
  return q != NULL && msg[strlen(msg) - 1] == ')';
}

static void run_call(lua_State *L, Input *in, int nfuncs) {
  int f = 1 + u8(in) % nfuncs, nargs = u8(in) % 5, i, top, status;
  const char *name;
  int is_wrap, is_setchecks;
  const char *self = NULL;  /* the registry table of self's kind */
  lua_getfield(L, LUA_REGISTRYINDEX, "F");
  lua_rawgeti(L, -1, f);
  lua_rawgeti(L, -1, 1);
  name = lua_tostring(L, -1);
  is_wrap = !strcmp(name, "imalloc.wrap");
  is_setchecks = !strcmp(name, "m:setchecks");
  if (name[0] == 'm' && (name[1] == ':' || name[1] == '.')) self = "H";
  if (name[0] == 'b' && (name[1] == ':' || name[1] == '.')) self = "B";
  lua_pop(L, 1);
  lua_rawgeti(L, -1, 2);
  lua_replace(L, -3);
  lua_pop(L, 1);
  top = lua_gettop(L) - 1;  /* below the function */
  if (self && nargs == 0) nargs = 1;
  for (i = 0; i < nargs; i++) {
    uint8_t pick = u8(in);
    /* mostly a handle or buffer as self, so that the calls go deeper */
    if (i == 0 && self && pick % 8 != 0) push_object(L, self, pick >> 3);
    else push_arg(L, in, is_wrap && i == 0);
    if (is_setchecks && i == 1 && !lua_toboolean(L, -1)) {
      lua_pop(L, 1);
      lua_pushboolean(L, 1);
    }
  }
  status = lua_pcall(L, nargs, LUA_MULTRET, 0);
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (status != LUA_ERRRUN && status != LUA_ERRMEM) die("status", name);
    if (msg == NULL) die("error that is not a string from", name);
    if (!allowed_error(msg)) {
      fprintf(stderr, "fuzz_lua: %s raised: %s\n", name, msg);
      die("unexpected error message", name);
    }
    lua_settop(L, top);
    return;
  }
  for (i = top + 1; i <= lua_gettop(L); i++) {
    if (lua_type(L, i) == LUA_TLIGHTUSERDATA) {
      remember(lua_touserdata(L, i));
    } else if (luaL_testudata(L, i, IMALLOC_HANDLE)) {
      put_object(L, "H", i, u8(in));
    } else if (luaL_testudata(L, i, IMALLOC_BUFFER)) {
      imalloc_Buffer *b = (imalloc_Buffer *)lua_touserdata(L, i);
      put_object(L, "B", i, u8(in));
      remember(b->ptr);
    }
  }
  lua_settop(L, top);
}

static size_t live_blocks(void) {
  struct imalloc_taskstats st;
  imalloc_taskalloc_stats(&st);
  return st.live_blocks;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fake.iface.lpVtbl = &fake_vtbl;
  fake.refs = 1;  /* the fuzzer's own */
  if (imalloc_CoGetMalloc(1, &task) != S_OK) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Input in = { data, size };
  lua_State *L;
  size_t base = live_blocks();
  int nfuncs, calls = 0, i;
  npool = 0;
  lua_mem = 0;
  L = lua_newstate(lalloc, NULL);
  if (!L) abort();
  luaL_openlibs(L);
  luaL_requiref(L, "imalloc.core", luaopen_imalloc_core, 0);
  if (luaL_loadbuffer(L, prelude, sizeof prelude - 1, "=prelude")) abort();
  lua_insert(L, -2);
  lua_pushlightuserdata(L, &fake.iface);
  if (lua_pcall(L, 2, 3, 0) != LUA_OK) die("prelude", lua_tostring(L, -1));
  lua_setfield(L, LUA_REGISTRYINDEX, "B");
  lua_setfield(L, LUA_REGISTRYINDEX, "H");
  nfuncs = (int)luaL_len(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "F");
  if (nfuncs < 30) die("too few functions found", NULL);

  while (in.n > 0 && calls++ < MAX_CALLS) run_call(L, &in, nfuncs);

  lua_close(L);
  /* What the script left: free every pointer that is still a block. */
  for (i = 0; i < (int)npool; i++) {
    if (task->lpVtbl->DidAlloc(task, pool[i]) == 1)
      task->lpVtbl->Free(task, pool[i]);
    f_free(&fake.iface, pool[i]);
  }
  if (live_blocks() != base) die("blocks leaked by the binding", NULL);
  for (i = 0; i < FAKE_LIVE; i++) {
    if (fake.live[i]) die("fake IMalloc blocks leaked by the binding", NULL);
  }
  if (fake.refs != 1) die("references to the fake IMalloc not given back", NULL);
  return 0;
}
