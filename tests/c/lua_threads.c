/*
** lua_threads.c: several Lua states, one per thread, share the one task
** allocator of the imalloc module they all require.
**
**  1. Mixed traffic: each state allocates blocks of random sizes (C fills
**     them with a pattern), passes them to the others through a C-level
**     queue, and takes theirs: it checks DidAlloc and GetSize from Lua and
**     through the vtable from C, checks the bytes, then reallocates or frees
**     a block that another state allocated. Lua-only churn (blocks, handles,
**     addref/release, <close>, collector steps) runs in between.
**  2. Hand-over: every state allocates a batch, waits for the others at a
**     barrier, then reallocates and frees the batch of its neighbour, so
**     that cross-state frees happen whatever the scheduling.
**  3. lua_close with live handles: each state keeps handles on a counting
**     IMalloc of its own (wrap, addref, queryinterface, a coroutine stopped
**     inside a <close> scope) and on the task allocator; after lua_close
**     every reference taken has been given back exactly once.
** At the end the allocator's live_blocks is back at its start value.
**
** Usage: lua_threads CPATH LPATH [rounds]
**   CPATH and LPATH are package.cpath / package.path templates that find
**   imalloc.core and imalloc.lua; rounds per thread for phase 1 (20000).
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"

#include "lua_state.h"
#include "fake_com.h"

#include "com_abi.h"
#include "taskalloc.h"  /* struct imalloc_taskstats only: see stats_fn */

enum { NTHREADS = 4, QCAP = 256, HANDOVER = 200 };

static const char *g_cpath, *g_lpath;
static long g_rounds = 20000;
static _Atomic int g_errors;
static _Atomic long g_ops, g_cross, g_handover;

/* Counts an error; prints the first 20 (a line at a time: stdout is line
** buffered, so that a crash loses no report). */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void fail(const char *fmt, ...) {
  if (atomic_fetch_add(&g_errors, 1) < 20) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    printf("ERROR %s\n", line);
  }
}

static uint64_t rnd(uint64_t *s) { /* xorshift64* */
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

static size_t rnd_size(uint64_t *s) {
  unsigned r = (unsigned)(rnd(s) % 1000);
  if (r < 700) return (size_t)(rnd(s) % 129);
  if (r < 980) return (size_t)(rnd(s) % 8192);
  return 65537 + (size_t)(rnd(s) % 200000);  /* a mapping of its own */
}

/* ---- blocks and their patterns -------------------------------------- */

struct item {
  unsigned char *p;
  size_t n;
  unsigned seed;
  int owner;  /* the thread whose state allocated it */
};

static unsigned char pat(unsigned seed, size_t i) {
  return (unsigned char)(seed + i * 131u + (i >> 8));
}

/* The first and last 64 bytes and a stride in between. */
#define EACH_SAMPLE(i, n) \
  for (i = 0; i < (n); i = (i < 64 || i + 64 >= (n)) ? i + 1 : i + 61)

/* Every byte, so that any prefix can be checked by samples. */
static void fill(const struct item *it) {
  size_t i;
  for (i = 0; i < it->n; i++) it->p[i] = pat(it->seed, i);
}

static int same(const struct item *it, size_t upto) {
  size_t i;
  EACH_SAMPLE(i, upto) if (it->p[i] != pat(it->seed, i)) return 0;
  return 1;
}

/* The C-level queue between states. */
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static struct item q_items[QCAP];
static size_t q_len;

static int q_push(const struct item *it) {
  int ok;
  pthread_mutex_lock(&q_lock);
  ok = q_len < QCAP;
  if (ok) q_items[q_len++] = *it;
  pthread_mutex_unlock(&q_lock);
  return ok;
}

/* Takes the item at a random place, so that blocks mix between states. */
static int q_pop(struct item *it, uint64_t *s) {
  int ok;
  pthread_mutex_lock(&q_lock);
  ok = q_len > 0;
  if (ok) {
    size_t k = (size_t)(rnd(s) % q_len);
    *it = q_items[k];
    q_items[k] = q_items[--q_len];
  }
  pthread_mutex_unlock(&q_lock);
  return ok;
}

/* ---- a counting IMalloc, one per state, for the lua_close phase ------- */

typedef struct Counting {
  IMalloc iface;
  long refs, addrefs, releases; /* touched by its own thread only */
} Counting;

static ULONG STDMETHODCALLTYPE c_addref(IMalloc *m) {
  Counting *c = (Counting *)(void *)m;
  c->addrefs++;
  return (ULONG)++c->refs;
}

static ULONG STDMETHODCALLTYPE c_release(IMalloc *m) {
  Counting *c = (Counting *)(void *)m;
  c->releases++;
  return (ULONG)--c->refs;
}

/* Its own AddRef and Release; blocks never come from it in this test. */
static const IMallocVtbl counting_vtbl = {
  fake_malloc_qi, c_addref, c_release, fake_malloc_no_alloc,
  fake_malloc_no_realloc, fake_malloc_no_free, fake_malloc_no_getsize,
  fake_malloc_no_didalloc, fake_malloc_heapminimize
};

/* ---- the Lua side ------------------------------------------------------ */

/* Functions each state offers to C, kept in the registry as T. */
static const char lua_side[] =
  "local imalloc = require 'imalloc'\n"
  "local m = assert(imalloc.get())\n"
  "local T = {}\n"
  "function T.pointer() return m:pointer() end\n"
  "function T.alloc(n)\n"
  "  return assert(m:alloc(n))\n"
  "end\n"
  "function T.check(p, n)\n"
  "  local d = m:didalloc(p)\n"
  "  if d ~= 1 then error(('didalloc %s: %d'):format(p, d)) end\n"
  "  local s = m:getsize(p)\n"
  "  if s ~= n then error(('getsize %s: %d, expected %d'):format(p, s, n)) end\n"
  "  if m:didalloc(imalloc.address(p) + 8) ~= 0 then\n"
  "    error(('interior pointer of %s owned'):format(p))\n"
  "  end\n"
  "end\n"
  "function T.realloc(p, n)\n"
  "  return assert(m:realloc(p, n))\n"
  "end\n"
  "function T.free(p) m:free(p) end\n"
  /* Lua-only traffic in this state: blocks and handles made and dropped. */
  "function T.churn(k, seed)\n"
  "  local blocks = {}\n"
  "  for i = 1, k do blocks[i] = assert(m:alloc((i * 37 + seed) % 300)) end\n"
  "  for i = k, 1, -1 do\n"
  "    local n = m:getsize(blocks[i])\n"
  "    if n ~= (i * 37 + seed) % 300 then error('churn getsize ' .. n) end\n"
  "    if i % 2 == 0 then m:free(blocks[i])\n"
  "    else assert(m:realloc(blocks[i], 0) == nil) end\n"
  "  end\n"
  "  do\n"
  "    local h <close> = assert(imalloc.get())\n"
  "    h:addref()\n"
  "    local q = assert(h:queryinterface(imalloc.IID_IMalloc))\n"
  "    q:release()\n"
  "    local w = imalloc.wrap(h:pointer())\n"
  "    if seed % 2 == 0 then w:release() end\n"
  "  end\n"
  "  collectgarbage('step')\n"
  "end\n"
  /* Handles left live for lua_close: on the counting IMalloc `c` and on the
  ** task allocator, in globals, in a table, and in a coroutine stopped
  ** inside a <close> scope; and buffers of the task allocator, which
  ** lua_close must free. Returns the references they own on `c`. */
  "function T.keep(c)\n"
  "  local a = imalloc.wrap(c)\n"
  "  a:addref(); a:addref()\n"
  "  local b = imalloc.wrap(c)\n"
  "  local q = assert(b:queryinterface(imalloc.IID_IUnknown))\n"
  "  local r = imalloc.wrap(c)\n"
  "  r:addref(); r:release()\n"
  "  KEEP = { a, b, q, r, imalloc.get(), m, m:buffer(100),\n"
  "           m:adopt(m:strdup('adopted')) }\n"
  "  local co = coroutine.wrap(function()\n"
  "    local h <close> = imalloc.wrap(c)\n"
  "    local t <close> = imalloc.get()\n"
  "    coroutine.yield()\n"
  "  end)\n"
  "  co()\n"
  "  KEEP.co = co\n"
  "  SELF = m\n"
  "  return 3 + 1 + 1 + 1 + 1\n"
  "end\n"
  "return T\n";

struct state {
  lua_State *L;
  IMalloc *m;  /* the task allocator, as the state's handle holds it */
  int id;
};

/* Calls T[name](args...) with nargs values pushed by the caller; leaves
** nres results. Returns 0 and reports the error on failure. */
static int call(struct state *st, const char *name, int nargs, int nres) {
  lua_State *L = st->L;
  lua_getfield(L, LUA_REGISTRYINDEX, "T");
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  lua_insert(L, -(nargs + 1));
  if (lua_pcall(L, nargs, nres, 0) != LUA_OK) {
    fail("state %d: T.%s: %s", st->id, name, lua_tostring(L, -1));
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

static int open_state(struct state *st, int id) {
  lua_State *L = new_lua_state(g_cpath, g_lpath);
  st->L = L;
  st->id = id;
  if (!L) return 0;
  if (luaL_loadbuffer(L, lua_side, sizeof lua_side - 1, "=lua_side") ||
      lua_pcall(L, 0, 1, 0)) {
    fail("state %d: setup: %s", id, lua_tostring(L, -1));
    return 0;
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "T");
  if (!call(st, "pointer", 0, 1)) return 0;
  st->m = (IMalloc *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  return st->m != NULL;
}

/* The vtable's answers, from C, for a block this test holds. */
static void check_c(struct state *st, const struct item *it) {
  IMalloc *m = st->m;
  SIZE_T n = m->lpVtbl->GetSize(m, it->p);
  if (m->lpVtbl->DidAlloc(m, it->p) != 1)
    fail("state %d: DidAlloc(%p) is not 1", st->id, (void *)it->p);
  if (n != it->n)
    fail("state %d: GetSize(%p) = %zu, expected %zu", st->id, (void *)it->p,
         (size_t)n, it->n);
  if (((uintptr_t)it->p & 15) != 0)
    fail("state %d: %p is not 16-aligned", st->id, (void *)it->p);
  if (!same(it, it->n))
    fail("state %d: the bytes of %p (%zu, from state %d) changed", st->id,
         (void *)it->p, it->n, it->owner);
}

static int lua_alloc(struct state *st, struct item *it, uint64_t *s) {
  it->n = rnd_size(s);
  it->seed = (unsigned)rnd(s);
  it->owner = st->id;
  lua_pushinteger(st->L, (lua_Integer)it->n);
  if (!call(st, "alloc", 1, 1)) return 0;
  it->p = (unsigned char *)lua_touserdata(st->L, -1);
  lua_pop(st->L, 1);
  fill(it);
  return 1;
}

static void lua_check(struct state *st, const struct item *it) {
  lua_pushlightuserdata(st->L, it->p);
  lua_pushinteger(st->L, (lua_Integer)it->n);
  call(st, "check", 2, 0);
}

/* Reallocates it in this state; the common prefix must survive. */
static int lua_realloc(struct state *st, struct item *it, uint64_t *s) {
  size_t n = rnd_size(s) + 1, keep = n < it->n ? n : it->n;
  lua_pushlightuserdata(st->L, it->p);
  lua_pushinteger(st->L, (lua_Integer)n);
  if (!call(st, "realloc", 2, 1)) return 0;
  it->p = (unsigned char *)lua_touserdata(st->L, -1);
  lua_pop(st->L, 1);
  if (!same(it, keep))
    fail("state %d: realloc to %zu did not keep the first %zu bytes",
         st->id, n, keep);
  it->n = n;
  fill(it);
  return 1;
}

static void lua_free(struct state *st, struct item *it) {
  lua_pushlightuserdata(st->L, it->p);
  call(st, "free", 1, 0);
  if (it->owner != st->id) atomic_fetch_add(&g_cross, 1);
  it->p = NULL;
}

/* ---- the threads ------------------------------------------------------- */

static pthread_barrier_t g_bar;
static struct item g_batches[NTHREADS][HANDOVER];

static void *worker(void *arg) {
  struct state st;
  int id = (int)(uintptr_t)arg, i;
  uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1);
  long ops = 0, r;
  Counting counting;
  long owned = 0;

  if (!open_state(&st, id)) {
    /* still meet the others at the barriers */
    pthread_barrier_wait(&g_bar);
    pthread_barrier_wait(&g_bar);
    if (st.L) lua_close(st.L);
    return NULL;
  }

  /* 1. mixed traffic through the queue */
  for (r = 0; r < g_rounds; r++) {
    unsigned op = (unsigned)(rnd(&s) % 16);
    struct item it;
    ops++;
    if (op < 6) {
      if (lua_alloc(&st, &it, &s) && !q_push(&it)) lua_free(&st, &it);
    } else if (op < 14) {
      if (!q_pop(&it, &s)) continue;
      check_c(&st, &it);
      lua_check(&st, &it);
      if (op < 9) {
        if (lua_realloc(&st, &it, &s) && !q_push(&it)) lua_free(&st, &it);
      } else {
        lua_free(&st, &it);
      }
    } else {
      lua_pushinteger(st.L, 1 + (lua_Integer)(rnd(&s) % 64));
      lua_pushinteger(st.L, (lua_Integer)(rnd(&s) % 1000));
      call(&st, "churn", 2, 0);
    }
  }

  /* 2. hand-over: my batch to my neighbour, and my neighbour's to me */
  for (i = 0; i < HANDOVER; i++) {
    struct item *it = &g_batches[id][i];
    if (!lua_alloc(&st, it, &s)) it->p = NULL;
  }
  pthread_barrier_wait(&g_bar);
  for (i = 0; i < HANDOVER; i++) {
    struct item *it = &g_batches[(id + 1) % NTHREADS][i];
    if (!it->p) continue;
    check_c(&st, it);
    lua_check(&st, it);
    if (i % 2 == 0 && !lua_realloc(&st, it, &s)) continue;
    lua_free(&st, it);
    atomic_fetch_add(&g_handover, 1);
    ops += 2;
  }
  pthread_barrier_wait(&g_bar);

  /* 3. lua_close with live handles on a counting IMalloc */
  counting.iface.lpVtbl = &counting_vtbl;
  counting.refs = 1;  /* this function's own */
  counting.addrefs = counting.releases = 0;
  lua_pushlightuserdata(st.L, &counting.iface);
  if (call(&st, "keep", 1, 1)) {
    owned = (long)lua_tointeger(st.L, -1);
    lua_pop(st.L, 1);
  }
  if (counting.refs != 1 + owned)
    fail("state %d: %ld references on the counting IMalloc before lua_close,"
         " expected %ld", id, counting.refs, 1 + owned);
  lua_close(st.L);
  if (counting.refs != 1)
    fail("state %d: %ld references after lua_close, expected 1", id,
         counting.refs);
  if (counting.releases != counting.addrefs)
    fail("state %d: %ld Release calls for %ld AddRef calls in all", id,
         counting.releases, counting.addrefs);
  atomic_fetch_add(&g_ops, ops);
  return NULL;
}

/* imalloc_taskalloc_stats of the allocator inside imalloc.core: the module
** has its own copy of the allocator, which is the one the states share. */
typedef void (*stats_fn)(struct imalloc_taskstats *);

static stats_fn find_stats(lua_State *L) {
  const char *path;
  void *lib;
  path = lua_module_file(L, "imalloc.core");
  if (!path) return NULL;
  lib = dlopen(path, RTLD_NOW | RTLD_NOLOAD);  /* loaded by require */
  if (!lib) return NULL;
  /* A function pointer from dlsym, as POSIX allows. */
  {
    union { void *obj; stats_fn fn; } u;
    u.obj = dlsym(lib, "imalloc_taskalloc_stats");
    return u.fn;
  }
}

static size_t live_blocks(stats_fn stats) {
  struct imalloc_taskstats st;
  stats(&st);
  return st.live_blocks;
}

int main(int argc, char **argv) {
  pthread_t t[NTHREADS];
  struct state main_state;
  stats_fn stats;
  size_t base, i;
  int failed = 0, passed = 0;
  if (!lua_test_args(argc, argv, &g_cpath, &g_lpath, &g_rounds)) return 2;

  /* This state loads the module first, finds its stats, and frees what
  ** is left in the queue at the end: blocks of the other states. */
  if (!open_state(&main_state, -1) ||
      (stats = find_stats(main_state.L)) == NULL) {
    printf("FAIL: cannot load imalloc.core from %s\n", g_cpath);
    printf("0 passed, 1 failed\n");
    return 1;
  }
  base = live_blocks(stats);

  pthread_barrier_init(&g_bar, NULL, NTHREADS);
  for (i = 0; i < NTHREADS; i++)
    pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
  for (i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&g_bar);
  {
    struct item it;
    uint64_t s = 1;
    while (q_pop(&it, &s)) {
      check_c(&main_state, &it);
      lua_check(&main_state, &it);
      lua_free(&main_state, &it);
    }
  }

  if (atomic_load(&g_errors) == 0) passed++; else failed++;
  /* every state freed blocks that another state allocated */
  if (atomic_load(&g_handover) == (long)NTHREADS * HANDOVER) {
    passed++;
  } else {
    printf("FAIL: %ld blocks handed over, expected %ld\n",
           atomic_load(&g_handover), (long)NTHREADS * HANDOVER);
    failed++;
  }
  if (live_blocks(stats) == base) {
    passed++;
  } else {
    printf("FAIL: live_blocks %zu, expected %zu\n", live_blocks(stats), base);
    failed++;
  }
  lua_close(main_state.L);
  printf("%ld operations in %d Lua states, %ld blocks freed by another state\n",
         atomic_load(&g_ops), NTHREADS, atomic_load(&g_cross));
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0 || passed == 0;  /* checked nothing: a failure */
}
