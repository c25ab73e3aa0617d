/*
** spy_threads.c: the spy (src/spy.c, src/spy_books.c) under callbacks from several threads,
** and beside another module's spy.
**
** First, a spy registered from C by another module: spy.start answers
** CO_E_OBJISREG, spy.stop answers CO_E_OBJNOTREG and leaves it registered.
** Then:
** Lua states in threads allocate, resize and free through the binding
** (every allocation path, buffers left to the collector), and a thread
** with no Lua state calls CoTaskMemAlloc / CoTaskMemFree of the same
** allocator, while the main thread's state takes reports and sets and
** clears a fault rule. Checked:
**  1. every report is consistent (count, bytes, order by seq, where is a
**     worker's line or absent) while the books change under it;
**  2. at the end nothing is outstanding, allocs equal frees, and the
**     failures the spy counts are the failures the threads saw;
**  3. a stop refused while blocks live completes when the threads free
**     the last ones, concurrently, some in lua_close.
**
** Usage: spy_threads CPATH LPATH [rounds]
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"

#include "lua_state.h"
#include "fake_com.h"

#include "check.h"
#include "com_abi.h"

enum { NLUA = 3, NKEEP = 16 };

static const char *g_cpath, *g_lpath;
static long g_rounds = 20000;
static long g_bad;  /* inconsistent reports */
static _Atomic int g_done;      /* workers that have finished */
static _Atomic long g_failures;  /* allocations the threads saw fail */

static void *(*task_alloc)(SIZE_T);
static void (*task_free)(void *);
static HRESULT (*register_spy)(IMallocSpy *);
static HRESULT (*revoke_spy)(void);

/* CHECK with a message of its own (check.h's takes the condition's text) */
#undef CHECK
#define CHECK(cond, what) check_at((cond), __LINE__, (what))

/* What a worker state runs: run(rounds, seed) allocates, resizes and frees
** at random and returns the failures it saw; finish() frees what is left. */
static const char worker_side[] =
  "local imalloc = require 'imalloc'\n"
  "local m = assert(imalloc.get())\n"
  "local live, x = {}, 1\n"
  "local function rand(n) x = (x * 1103515245 + 12345) % 2147483648\n"
  "  return x % n end\n"
  "local function take(k, v, err)\n"
  "  if v then live[k] = v return 0 end\n"
  "  assert(err == 'not enough memory', err)\n"
  "  return 1\n"
  "end\n"
  "local W = {}\n"
  "function W.run(rounds, seed)\n"
  "  x = seed\n"
  "  local fails = 0\n"
  "  for i = 1, rounds do\n"
  "    local k, op = rand(64) + 1, rand(6)\n"
  "    local v = live[k]\n"
  "    if v == nil then\n"
  "      local n = rand(400)\n"
  "      if op == 0 then fails = fails + take(k, m:alloc(n))\n"
  "      elseif op == 1 then fails = fails + take(k, m:strdup(('s'):rep(n % 40)))\n"
  "      elseif op == 2 then fails = fails + take(k, m:wstrdup(('w'):rep(n % 40)))\n"
  "      elseif op == 3 then fails = fails + take(k, m:realloc(nil, n))\n"
  "      else fails = fails + take(k, m:buffer(n)) end\n"
  "    elseif imalloc.type(v) == 'buffer' then\n"
  "      if op < 3 then v:resize(rand(5000))\n"
  "      elseif op == 3 then v:free() live[k] = nil\n"
  "      else live[k] = nil end  -- for the collector\n"
  "    else\n"
  "      if op < 2 then live[k] = assert(m:realloc(v, rand(5000) + 1))\n"
  "      else m:free(v) live[k] = nil end\n"
  "    end\n"
  "    if i % 64 == 0 then collectgarbage('step') end\n"
  "  end\n"
  "  return fails\n"
  "end\n"
  "function W.finish()\n"
  "  for k, v in pairs(live) do\n"
  "    if imalloc.type(v) == 'buffer' then v:free() else m:free(v) end\n"
  "    live[k] = nil\n"
  "  end\n"
  "  collectgarbage()\n"
  "end\n"
  "return W\n";

/* What the main state runs: check() takes a report and checks it. */
static const char main_side[] =
  "local spy = require('imalloc').spy\n"
  "local C = {}\n"
  "function C.check()\n"
  "  local r = spy.report()\n"
  "  local bytes, seq = 0, 0\n"
  "  if r.count ~= #r.blocks then return 'count ' .. r.count end\n"
  "  for _, b in ipairs(r.blocks) do\n"
  "    if b.seq <= seq then return 'blocks out of order' end\n"
  "    seq = b.seq\n"
  "    bytes = bytes + b.size\n"
  "    if b.where ~= nil and not b.where:match('^worker:%d+$') then\n"
  "      return 'where ' .. b.where end\n"
  "  end\n"
  "  if bytes ~= r.bytes then return 'bytes' end\n"
  "  if r.count > r.allocs - r.frees then return 'more blocks than allocs' end\n"
  "  return nil, r.count\n"
  "end\n"
  "function C.report() return spy.report() end\n"
  "return C\n";

static lua_State *open_state(const char *code, size_t len, const char *name) {
  lua_State *L = new_lua_state(g_cpath, g_lpath);
  if (luaL_loadbuffer(L, code, len, name) || lua_pcall(L, 0, 1, 0)) {
    printf("FAIL: %s: %s\n", name, lua_tostring(L, -1));
    exit(1);
  }
  lua_setglobal(L, "T");
  return L;
}

/* Calls T.name(args...) in L; leaves its results; exits on an error. */
static void call(lua_State *L, const char *name, int nargs, int nres) {
  lua_getglobal(L, "T");
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  lua_insert(L, -1 - nargs);
  if (lua_pcall(L, nargs, nres, 0)) {
    printf("FAIL: %s: %s\n", name, lua_tostring(L, -1));
    exit(1);
  }
}

/* Runs Lua in the main state: returns the first result as a string. */
static const char *spy_call(lua_State *L, const char *code) {
  lua_settop(L, 0);
  if (luaL_dostring(L, code)) {
    printf("FAIL: %s: %s\n", code, lua_tostring(L, -1));
    exit(1);
  }
  return lua_tostring(L, 1);
}

struct worker {
  pthread_t thread;
  lua_State *L;
  int id, keep, close;
};

static void *lua_worker(void *arg) {
  struct worker *w = arg;
  if (w->close) {  /* the last blocks: freed, some by lua_close */
    call(w->L, "finish", 0, 0);
    lua_close(w->L);
    w->L = NULL;
    return NULL;
  }
  lua_pushinteger(w->L, g_rounds);
  lua_pushinteger(w->L, w->id * 7919 + 17);
  call(w->L, "run", 2, 1);
  atomic_fetch_add(&g_failures, (long)lua_tointeger(w->L, -1));
  lua_pop(w->L, 1);
  if (!w->keep) call(w->L, "finish", 0, 0);
  atomic_fetch_add(&g_done, 1);
  return NULL;
}

/* A thread with no Lua state: CoTaskMemAlloc / CoTaskMemFree. */
static void *c_worker(void *arg) {
  void *held[NKEEP] = {0};
  uint64_t s = 88172645463325252ull;
  long i, n = (long)(intptr_t)arg;
  int k;
  for (i = 0; i < n; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    k = (int)(s % NKEEP);
    if (held[k]) {
      task_free(held[k]);
      held[k] = NULL;
    } else if ((held[k] = task_alloc((SIZE_T)(s >> 40) % 300 + 1)) == NULL) {
      atomic_fetch_add(&g_failures, 1);
    }
  }
  for (k = 0; k < NKEEP; k++) task_free(held[k]);
  atomic_fetch_add(&g_done, 1);
  return NULL;
}

static void find_task_functions(lua_State *L) {
  const char *path;
  void *lib, *a, *f, *r, *v;
  path = lua_module_file(L, "imalloc.core");
  lib = path ? dlopen(path, RTLD_NOW | RTLD_NOLOAD) : NULL;
  a = lib ? dlsym(lib, "imalloc_CoTaskMemAlloc") : NULL;
  f = lib ? dlsym(lib, "imalloc_CoTaskMemFree") : NULL;
  r = lib ? dlsym(lib, "imalloc_CoRegisterMallocSpy") : NULL;
  v = lib ? dlsym(lib, "imalloc_CoRevokeMallocSpy") : NULL;
  if (!a || !f || !r || !v) {
    printf("FAIL: no CoTaskMem* in %s\n", path ? path : "imalloc.core");
    exit(1);
  }
  /* object pointers from dlsym to function pointers, as POSIX allows */
  memcpy(&task_alloc, &a, sizeof a);
  memcpy(&task_free, &f, sizeof f);
  memcpy(&register_spy, &r, sizeof r);
  memcpy(&revoke_spy, &v, sizeof v);
  lua_settop(L, 0);
}

static long field(lua_State *M, const char *name);

/* The fault rule the workers run under: every allocation fails with
** probability 0.05, and the third one after the rule is set fails anyway. */
#define FAULT_RULE \
  "require('imalloc').spy.fail { fraction = 0.05, seed = 5, nth = 3 }"

/* Runs the workers while the main state checks reports and toggles a
** fault rule; returns the number of reports taken. */
static long run_all(lua_State *M, struct worker *w, int keep) {
  pthread_t ct;
  long reports = 0;
  int i;
  long failed_before = field(M, "failures");
  int rule_on = 1;
  atomic_store(&g_done, 0);
  /* The rule is on before any thread allocates, and is cleared only once
  ** it has failed an allocation (nth = 3 makes sure one does): so some
  ** allocations fail however the threads happen to be scheduled. */
  spy_call(M, FAULT_RULE);
  for (i = 0; i < NLUA; i++) {
    w[i].keep = keep;
    w[i].close = 0;
    pthread_create(&w[i].thread, NULL, lua_worker, &w[i]);
  }
  pthread_create(&ct, NULL, c_worker, (void *)(intptr_t)(g_rounds * 2));
  while (atomic_load(&g_done) < NLUA + 1) {
    const char *bad;
    call(M, "check", 0, 1);
    bad = lua_tostring(M, -1);
    if (bad && g_bad++ < 10) printf("inconsistent report: %s\n", bad);
    lua_settop(M, 0);
    if (++reports % 20 != 0) continue;
    if (!rule_on) {
      failed_before = field(M, "failures");
      spy_call(M, FAULT_RULE);
      rule_on = 1;
    } else if (field(M, "failures") > failed_before) {
      spy_call(M, "require('imalloc').spy.fail(nil)");
      rule_on = 0;
    }
  }
  for (i = 0; i < NLUA; i++) pthread_join(w[i].thread, NULL);
  pthread_join(ct, NULL);
  spy_call(M, "require('imalloc').spy.fail(nil)");
  CHECK(g_bad == 0, "every report taken while the books changed is consistent");
  return reports;
}

/* A field of spy.report() as an integer (booleans as 0 or 1). */
static long field(lua_State *M, const char *name) {
  long v;
  lua_settop(M, 0);
  call(M, "report", 0, 1);
  lua_getfield(M, 1, name);
  v = lua_isboolean(M, -1) ? lua_toboolean(M, -1) : (long)lua_tointeger(M, -1);
  lua_settop(M, 0);
  return v;
}

/* Another module's spy: it sees calls, and is not ours to revoke. */
static long other_calls;

static SIZE_T STDMETHODCALLTYPE o_prealloc(IMallocSpy *This, SIZE_T cb) {
  (void)This;
  other_calls++;
  return cb;
}
static void *STDMETHODCALLTYPE o_pre(IMallocSpy *This, void *p, BOOL s) {
  (void)This, (void)s;
  other_calls++;
  return p;
}

static const IMallocSpyVtbl other_vtbl =
    FAKE_SPY_VTBL(o_prealloc, o_pre, pass_prerealloc, o_pre, o_pre);

static void other_spy(lua_State *M) {
  IMallocSpy other = { &other_vtbl };
  long calls;
  CHECK(register_spy(&other) == S_OK, "another module registers its spy");
  CHECK(strcmp(spy_call(M, "return select(2, require('imalloc').spy.start())"),
               "CO_E_OBJISREG: object is already registered") == 0,
        "start answers CO_E_OBJISREG");
  CHECK(strcmp(spy_call(M, "return select(2, require('imalloc').spy.stop())"),
               "CO_E_OBJNOTREG: object is not registered") == 0,
        "stop answers CO_E_OBJNOTREG");
  calls = other_calls;
  task_free(task_alloc(8));
  CHECK(other_calls == calls + 2, "the other spy is still registered");
  CHECK(revoke_spy() == S_OK, "and its owner revokes it");
  CHECK(field(M, "active") == 0 && field(M, "pending") == 0,
        "ours was never active");
}

int main(int argc, char **argv) {
  struct worker w[NLUA];
  lua_State *M;
  long reports;
  int i;
  if (!lua_test_args(argc, argv, &g_cpath, &g_lpath, &g_rounds)) return 2;
  M = open_state(main_side, sizeof main_side - 1, "=main");
  find_task_functions(M);
  for (i = 0; i < NLUA; i++) {
    w[i].L = open_state(worker_side, sizeof worker_side - 1, "=worker");
    w[i].id = i;
  }

  other_spy(M);

  /* 1 and 2: traffic from every thread, reports and rules meanwhile */
  CHECK(strcmp(spy_call(M, "return tostring(require('imalloc').spy.start())"),
               "true") == 0, "start");
  reports = run_all(M, w, 0);
  CHECK(field(M, "count") == 0, "nothing outstanding at the end");
  CHECK(field(M, "allocs") == field(M, "frees"), "allocs equal frees");
  CHECK(field(M, "failures") == atomic_load(&g_failures),
        "the failures counted are the failures seen");
  CHECK(field(M, "failures") > 0, "the rule failed some allocations");
  CHECK(field(M, "dropped") == 0, "no record dropped");
  printf("%ld reports; %ld allocs, %ld reallocs, %ld failures injected\n",
         reports, field(M, "allocs"), field(M, "reallocs"),
         field(M, "failures"));
  CHECK(strcmp(spy_call(M, "return tostring(require('imalloc').spy.stop())"),
               "true") == 0, "stop with nothing outstanding");

  /* 3: a pending stop completed by frees in several threads */
  spy_call(M, "assert(require('imalloc').spy.start())");
  run_all(M, w, 1);
  CHECK(field(M, "count") > 0, "blocks kept");
  CHECK(strcmp(spy_call(M, "return select(2, require('imalloc').spy.stop())"),
               "E_ACCESSDENIED: access is denied") == 0,
        "stop refused while blocks live");
  CHECK(field(M, "pending") == 1, "pending");
  for (i = 0; i < NLUA; i++) {
    w[i].close = 1;
    pthread_create(&w[i].thread, NULL, lua_worker, &w[i]);
  }
  for (i = 0; i < NLUA; i++) pthread_join(w[i].thread, NULL);
  CHECK(field(M, "pending") == 0 && field(M, "active") == 0,
        "released when the last block was freed");
  CHECK(field(M, "count") == 0, "no block left in the books");

  lua_close(M);
  return check_report();
}
