/*
** spy_books.c: the spy (src/spy_books.c, driven through imalloc.spy) seen from outside, where the specs
** cannot look: the C runtime heap its books take, what happens when that
** heap refuses, what the spy does for calls the built-in allocator never
** makes, and a platform that fails.
**
** The binding is linked into this program over a backend of its own (below:
** the built-in allocator, with failures on demand and the registered spy
** kept), and spy_books.c is compiled with its calloc, realloc, free and spin lock
** renamed to the counting ones here (spy_books_hooks.h). So a leak of the
** books is a count that does not come back to 0, their size a count of
** bytes, their out-of-memory paths a switch, a record read before it was
** written a pattern that realloc leaves in the new room, and a critical
** section that forgot its lock a lock released while free: no sanitizer,
** no timing.
**
** Usage: spy_books LPATH (the tree's lua/?.lua)
** Prints "N passed, N failed"; exits non-zero on a failure. A failed case
** can leave the spy registered for those after it: read the first failure.
*/
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"

#include "lua_state.h"

#include "backend.h"
#include "check.h"
#include "fake_com.h"
#include "platform.h"
#include "spy_books.h"
#include "taskalloc.h"

int luaopen_imalloc_core(lua_State *L);

/*
** {======================================================
** spy_books.c's C heap: counted, refused on demand
** =======================================================
*/

void *spy_books_calloc(size_t n, size_t size);
void *spy_books_realloc(void *p, size_t size);
void spy_books_free(void *p);
void spy_books_lock(imalloc_spinlock *l);
void spy_books_unlock(imalloc_spinlock *l);
void spy_books_settagtext(const char *where, IMalloc *m);

static long heap_blocks;  /* blocks of the C heap that spy_books.c holds */
static size_t heap_bytes; /* and their bytes */
static int refuse_at;     /* the nth next request is refused (0: none) */

/* What realloc leaves in the room it adds: the C standard says nothing of
** it; here every byte is POISON, so a record the books read there before
** writing it has this address (see `poison` below). */
#define POISON 0xA5

static int refused(void) {
  return refuse_at > 0 && --refuse_at == 0;
}

/* Each block has its size in front. */
typedef union Header {
  size_t size;
  max_align_t align;
} Header;

static void *new_block(size_t size) {
  Header *h = (Header *)malloc(sizeof *h + size);
  if (!h) return NULL;
  h->size = size;
  heap_blocks++;
  heap_bytes += size;
  return h + 1;
}

void *spy_books_calloc(size_t n, size_t size) {
  void *p;
  if (refused() || (size != 0 && n > ((size_t)-1 - sizeof(Header)) / size))
    return NULL;
  p = new_block(n * size);
  if (p) memset(p, 0, n * size);
  return p;
}

/* Always moves the block, and fills what it adds with POISON. */
void *spy_books_realloc(void *p, size_t size) {
  size_t old = p ? ((Header *)p - 1)->size : 0;
  void *q = refused() ? NULL : new_block(size);
  if (!q) return NULL;
  if (p) memcpy(q, p, old < size ? old : size);
  if (size > old) memset((char *)q + old, POISON, size - old);
  spy_books_free(p);
  return q;
}

void spy_books_free(void *p) {
  Header *h;
  if (!p) return;
  h = (Header *)p - 1;
  heap_blocks--;
  heap_bytes -= h->size;
  free(h);
}

/* One thread runs here: a lock found free when it is released was never
** taken. */
static int unlocks_of_free_locks;

void spy_books_lock(imalloc_spinlock *l) {
  imalloc_spin_lock(l);
}

void spy_books_unlock(imalloc_spinlock *l) {
  if (!atomic_flag_test_and_set_explicit(l, memory_order_relaxed))
    unlocks_of_free_locks++;
  imalloc_spin_unlock(l);
}

/* The binding's tags (binding.h) pass here on their way to spy_books.c
** (spy_books_hooks.h renames its function): each is a walk of the Lua
** stack that the binding makes only while a spy records where blocks
** come from. */
static long tags;

void imalloc_spy_settagtext(const char *where, IMalloc *m) {
  tags++;
  spy_books_settagtext(where, m);
}

/* }====================================================== */


/*
** {======================================================
** The backend (backend.h): the built-in allocator, and failures
** =======================================================
*/

const char imalloc_backend_name[] = "builtin";

static HRESULT getmalloc_answer;  /* S_OK: ask the allocator */
static int getmalloc_null;        /* answer S_OK with no IMalloc */
static HRESULT revoke_answer;     /* S_OK: ask the allocator */
static int revoke_raced;          /* another module revokes the spy first */
static IMallocSpy *registered;    /* the last spy registered */

/* counted(true): the backend answers with a stand-in for the allocator
** that forwards every call and counts the references it handed out and
** got back, so that a reference kept (a missing Release) is a count left
** above 0. The built-in allocator and ole32's ignore their counts. */
static int counted;
static long counted_refs;
static IMalloc *counted_real;
static long counted_allocs, counted_frees;  /* calls through the stand-in */
static SIZE_T counted_last_cb;              /* the last Alloc's size */

static HRESULT STDMETHODCALLTYPE c_QueryInterface(IMalloc *This, REFIID riid,
                                                  void **ppv) {
  (void)This;
  return counted_real->lpVtbl->QueryInterface(counted_real, riid, ppv);
}
static ULONG STDMETHODCALLTYPE c_AddRef(IMalloc *This) {
  (void)This;
  counted_refs++;
  return counted_real->lpVtbl->AddRef(counted_real);
}
static ULONG STDMETHODCALLTYPE c_Release(IMalloc *This) {
  (void)This;
  counted_refs--;
  return counted_real->lpVtbl->Release(counted_real);
}
static void *STDMETHODCALLTYPE c_Alloc(IMalloc *This, SIZE_T cb) {
  (void)This;
  counted_allocs++;
  counted_last_cb = cb;
  return counted_real->lpVtbl->Alloc(counted_real, cb);
}
static void *STDMETHODCALLTYPE c_Realloc(IMalloc *This, void *pv, SIZE_T cb) {
  (void)This;
  return counted_real->lpVtbl->Realloc(counted_real, pv, cb);
}
static void STDMETHODCALLTYPE c_Free(IMalloc *This, void *pv) {
  (void)This;
  counted_frees++;
  counted_real->lpVtbl->Free(counted_real, pv);
}
static SIZE_T STDMETHODCALLTYPE c_GetSize(IMalloc *This, void *pv) {
  (void)This;
  return counted_real->lpVtbl->GetSize(counted_real, pv);
}
static int STDMETHODCALLTYPE c_DidAlloc(IMalloc *This, void *pv) {
  (void)This;
  return counted_real->lpVtbl->DidAlloc(counted_real, pv);
}
static void STDMETHODCALLTYPE c_HeapMinimize(IMalloc *This) {
  (void)This;
  counted_real->lpVtbl->HeapMinimize(counted_real);
}
static const IMallocVtbl counted_vtbl = {
  c_QueryInterface, c_AddRef, c_Release, c_Alloc, c_Realloc, c_Free,
  c_GetSize, c_DidAlloc, c_HeapMinimize
};
static IMalloc counted_malloc = { &counted_vtbl };

HRESULT imalloc_backend_getmalloc(DWORD context, IMalloc **out) {
  HRESULT hr;
  if (getmalloc_answer != S_OK || getmalloc_null) {
    *out = NULL;
    return getmalloc_answer;
  }
  if (!counted) return imalloc_CoGetMalloc(context, out);
  hr = imalloc_CoGetMalloc(context, &counted_real);
  if (hr < 0) return hr;
  counted_refs++;
  *out = &counted_malloc;
  return hr;
}

HRESULT imalloc_backend_registerspy(IMallocSpy *spy) {
  registered = spy;
  return imalloc_CoRegisterMallocSpy(spy);
}

HRESULT imalloc_backend_revokespy(void) {
  if (revoke_answer != S_OK) return revoke_answer;
  if (revoke_raced) {  /* another module's CoRevokeMallocSpy came first */
    HRESULT hr = imalloc_CoRevokeMallocSpy();
    revoke_raced = 0;
    if (hr < 0) return hr;
  }
  return imalloc_CoRevokeMallocSpy();
}

/* imalloc.wrap is not called here: no pointer is an interface. */
int imalloc_backend_isinterface(const void *p, int nslots, int flags) {
  (void)p;
  (void)nslots;
  (void)flags;
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** What the Lua side of a case can call
** =======================================================
*/

static int l_heap(lua_State *L) {
  lua_pushinteger(L, heap_blocks);
  return 1;
}

static int l_heap_bytes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)heap_bytes);
  return 1;
}

/* tags(): the binding's tags so far. */
static int l_tags(lua_State *L) {
  lua_pushinteger(L, tags);
  return 1;
}

/* settag(text): a tag for this thread's next allocation from the task
** allocator, as the binding gives one, but of any length. */
static int l_settag(lua_State *L) {
  IMalloc *task = NULL;
  if (imalloc_CoGetMalloc(MEMCTX_TASK, &task) < 0 || !task)
    return luaL_error(L, "no task allocator");
  imalloc_spy_settagtext(luaL_checkstring(L, 1), task);
  return 0;
}

/* draw(seed, k): the kth number in [0, 1) of splitmix64 seeded with
** `seed`, from its top 53 bits: what decides the kth allocation a rule
** { fraction = f, seed = seed } counts (docs/spy.md). Written here from
** the generator's definition, not taken from spy_books.c. */
static int l_draw(lua_State *L) {
  uint64_t x = (uint64_t)luaL_checkinteger(L, 1), z = 0;
  lua_Integer k = luaL_checkinteger(L, 2);
  for (; k > 0; k--) {
    x += UINT64_C(0x9E3779B97F4A7C15);
    z = x;
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    z ^= z >> 31;
  }
  lua_pushnumber(L, (lua_Number)(z >> 11) / 9007199254740992.0);
  return 1;
}

/* fake(n): the address n, as an allocator that hands out addresses of its
** own would give it: the spy only records addresses, and these, unlike
** real ones, are the same in every run. */
static int l_fake(lua_State *L) {
  lua_pushlightuserdata(L, (void *)(uintptr_t)luaL_checkinteger(L, 1));
  return 1;
}

/* revoke_race(): the next revoke finds the spy revoked by another module
** just before it (between stop's change of state and its revoke). */
static int l_revoke_race(lua_State *L) {
  (void)L;
  revoke_raced = 1;
  return 0;
}

/* stand_in(): the Alloc and Free calls through the counting stand-in, and
** the last Alloc's size; resets the counts. */
static int l_stand_in(lua_State *L) {
  lua_pushinteger(L, counted_allocs);
  lua_pushinteger(L, counted_frees);
  lua_pushinteger(L, (lua_Integer)counted_last_cb);
  counted_allocs = counted_frees = 0;
  return 3;
}

/* Another module's spy: passes every call through, and counts them. */
static long foreign_calls;
static SIZE_T STDMETHODCALLTYPE f_prealloc(IMallocSpy *This, SIZE_T cb) {
  foreign_calls++;
  return pass_prealloc(This, cb);
}
static void *STDMETHODCALLTYPE f_pre(IMallocSpy *This, void *p, BOOL f) {
  foreign_calls++;
  return pass_pre(This, p, f);
}
static SIZE_T STDMETHODCALLTYPE f_prerealloc(IMallocSpy *This, void *p,
                                             SIZE_T cb, void **pnew, BOOL f) {
  foreign_calls++;
  return pass_prerealloc(This, p, cb, pnew, f);
}
static const IMallocSpyVtbl foreign_vtbl =
    FAKE_SPY_VTBL(f_prealloc, f_pre, f_prerealloc, f_pre, f_pre);
static IMallocSpy foreign_spy = { &foreign_vtbl };

/* foreign(on): registers or revokes another module's spy; returns the
** calls it saw. */
static int l_foreign(lua_State *L) {
  HRESULT hr = lua_toboolean(L, 1) ? imalloc_CoRegisterMallocSpy(&foreign_spy)
                                   : imalloc_CoRevokeMallocSpy();
  if (hr < 0) return luaL_error(L, "foreign spy: 0x%08x", (unsigned)hr);
  lua_pushinteger(L, foreign_calls);
  return 1;
}

/* refuse(n): the nth next request of spy_books.c to the C heap fails. */
static int l_refuse(lua_State *L) {
  refuse_at = (int)luaL_checkinteger(L, 1);
  return 0;
}

/* getmalloc(hr [, null]): what the backend answers for CoGetMalloc. */
static int l_getmalloc(lua_State *L) {
  getmalloc_answer = (HRESULT)(uint32_t)luaL_checkinteger(L, 1);
  getmalloc_null = lua_toboolean(L, 2);
  return 0;
}

static int l_revoke(lua_State *L) {
  revoke_answer = (HRESULT)(uint32_t)luaL_checkinteger(L, 1);
  return 0;
}

/* counted(on): see imalloc_backend_getmalloc; returns the references the
** stand-in handed out and did not get back. */
static int l_counted(lua_State *L) {
  counted = lua_toboolean(L, 1);
  lua_pushinteger(L, counted_refs);
  return 1;
}

/* A pointer as the binding gives it: NULL is nil. */
static void pushpointer(lua_State *L, void *p) {
  if (p) lua_pushlightuserdata(L, p); else lua_pushnil(L);
}

static IMallocSpy *spy_of(lua_State *L) {
  if (registered == NULL) luaL_error(L, "no spy was registered");
  return registered;
}

/* spy_alloc(p, size): a PreAlloc of `size` and a PostAlloc answering p, as
** an allocator would for an address freed behind the spy's back. */
static int l_spy_alloc(lua_State *L) {
  IMallocSpy *s = spy_of(L);
  void *p = lua_touserdata(L, 1);
  SIZE_T cb = (SIZE_T)luaL_checkinteger(L, 2);
  lua_pushinteger(L, (lua_Integer)s->lpVtbl->PreAlloc(s, cb));
  pushpointer(L, s->lpVtbl->PostAlloc(s, p));
  return 2;
}

/* spy_realloc(p, size, answer): PreRealloc(p, size), PostRealloc(answer). */
static int l_spy_realloc(lua_State *L) {
  IMallocSpy *s = spy_of(L);
  void *pnew = NULL;
  SIZE_T cb = (SIZE_T)luaL_checkinteger(L, 2);
  cb = s->lpVtbl->PreRealloc(s, lua_touserdata(L, 1), cb, &pnew, 1);
  lua_pushinteger(L, (lua_Integer)cb);
  pushpointer(L, s->lpVtbl->PostRealloc(s, lua_touserdata(L, 3), 1));
  return 2;
}

/* spy_free(p): PreFree(p) and PostFree. */
static int l_spy_free(lua_State *L) {
  IMallocSpy *s = spy_of(L);
  void *p = s->lpVtbl->PreFree(s, lua_touserdata(L, 1), 1);
  s->lpVtbl->PostFree(s, 1);
  pushpointer(L, p);
  return 1;
}

/* spy_addref(), spy_release(): a reference to the spy held elsewhere. */
static int l_spy_addref(lua_State *L) {
  IMallocSpy *s = spy_of(L);
  lua_pushinteger(L, (lua_Integer)s->lpVtbl->AddRef(s));
  return 1;
}

static int l_spy_release(lua_State *L) {
  IMallocSpy *s = spy_of(L);
  lua_pushinteger(L, (lua_Integer)s->lpVtbl->Release(s));
  return 1;
}

/* task_alloc(n), task_free(p): the allocator called from C, as another
** module would: nothing of the binding tags these calls. */
static int l_task_alloc(lua_State *L) {
  pushpointer(L, imalloc_CoTaskMemAlloc((SIZE_T)luaL_checkinteger(L, 1)));
  return 1;
}

static int l_task_realloc(lua_State *L) {
  pushpointer(L, imalloc_CoTaskMemRealloc(lua_touserdata(L, 1),
                                          (SIZE_T)luaL_checkinteger(L, 2)));
  return 1;
}

static int l_task_free(lua_State *L) {
  imalloc_CoTaskMemFree(lua_touserdata(L, 1));
  return 0;
}

/* }====================================================== */


/* A state whose imalloc.core is the one linked in, with the functions
** above as globals. */
static lua_State *new_state(const char *lpath) {
  static const luaL_Reg globals[] = {
    {"heap", l_heap}, {"refuse", l_refuse}, {"getmalloc", l_getmalloc},
    {"revoke", l_revoke}, {"spy_alloc", l_spy_alloc},
    {"spy_realloc", l_spy_realloc}, {"spy_free", l_spy_free},
    {"spy_addref", l_spy_addref}, {"spy_release", l_spy_release},
    {"task_alloc", l_task_alloc}, {"task_free", l_task_free},
    {"counted", l_counted}, {"task_realloc", l_task_realloc},
    {"heap_bytes", l_heap_bytes}, {"tags", l_tags}, {"settag", l_settag},
    {"draw", l_draw}, {"revoke_race", l_revoke_race},
    {"stand_in", l_stand_in}, {"foreign", l_foreign}, {"fake", l_fake},
    {NULL, NULL}
  };
  static char fake_block;  /* an address no allocator gives */
  void *poison;
  lua_State *L = new_lua_state("", lpath);
  if (!L) return NULL;
  memset(&poison, POISON, sizeof poison);
  lua_pushlightuserdata(L, poison);
  lua_setglobal(L, "poison");
  lua_pushlightuserdata(L, &fake_block);
  lua_setglobal(L, "fake_block");
  lua_pushinteger(L, (lua_Integer)sizeof(imalloc_SpyRecord));
  lua_setglobal(L, "record_size");
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_imalloc_core);
  lua_setfield(L, -2, "imalloc.core");
  lua_pop(L, 1);
  lua_pushglobaltable(L);
  luaL_setfuncs(L, globals, 0);
  lua_pop(L, 1);
  return L;
}

/* Runs one case's chunk; prints its error, if any. */
static int run(lua_State *L, const char *name, const char *chunk) {
  int ok = luaL_loadbuffer(L, chunk, strlen(chunk), name) == LUA_OK &&
           lua_pcall(L, 0, 0, 0) == LUA_OK;
  if (!ok) printf("%s: %s\n", name, lua_tostring(L, -1));
  lua_settop(L, 0);
  return ok;
}

#define CASE(L, name, chunk) check_at(run((L), (name), (chunk)), __LINE__, (name))

/* What every case starts with. */
#define PRELUDE                                                        \
  "local imalloc = require 'imalloc'\n"                                \
  "local spy = imalloc.spy\n"                                          \
  "local m = assert(imalloc.get())\n"                                  \
  "local function eq(a, b, what)\n"                                    \
  "  if a ~= b then\n"                                                 \
  "    error(what .. ': ' .. tostring(a) .. ', expected ' .. tostring(b), 2)\n" \
  "  end\n"                                                            \
  "end\n"

/* The books find every outstanding block whatever was freed before it:
** sets of 63 addresses (the most the first index holds) freed one by one
** in scrambled orders, each still live block found after each free (an
** allocator that gives its address again finds its record replaced, the
** count unchanged). The addresses are the same in every run, so the
** clusters the index forms, those that wrap round its end included, are
** too. */
static const char index_deletions[] = PRELUDE
  "for set = 1, 96 do\n"
  "  assert(spy.start())\n"
  "  local addrs, live = {}, {}\n"
  "  for i = 1, 63 do\n"
  "    addrs[i] = fake(set * 0x1000000 + i * 16 * (set % 7 + 1))\n"
  "    spy_alloc(addrs[i], i)\n"
  "    live[i] = true\n"
  "  end\n"
  "  local left = 63\n"
  "  for step = 1, 63 do\n"
  "    local gone = (step * 29 + set) % 63 + 1\n"
  "    eq(spy_free(addrs[gone]), addrs[gone], 'PreFree')\n"
  "    live[gone], left = nil, left - 1\n"
  "    local r = spy.report()\n"
  "    eq(r.frees, step, 'frees, set ' .. set .. ' step ' .. step)\n"
  "    eq(r.count, left, 'count')\n"
  "    for i in pairs(live) do spy_alloc(addrs[i], i) end\n"
  "    eq(spy.report().count, left, 'count after the live ones came again, set ' .. set .. ' step ' .. step)\n"
  "  end\n"
  "  assert(spy.stop())\n"
  "end\n";

/* While a stop is pending the allocator still calls the spy, but the
** fault rule is off for good: spy.fail raises and sets nothing. */
static const char fail_while_pending[] = PRELUDE
  "assert(spy.start { fail = { above = 1000 } })\n"
  "local p = assert(m:alloc(8))\n"
  "local ok, msg, code = spy.stop()\n"
  "eq(code, 0x80070005, 'stop with a live block (E_ACCESSDENIED)')\n"
  "eq(pcall(spy.fail, { nth = 1 }), false, 'spy.fail while the stop is pending')\n"
  "local q = m:alloc(8)\n"
  "eq(q ~= nil, true, 'an allocation while the stop is pending')\n"
  "local big = m:alloc(2000)\n"
  "eq(big ~= nil, true, 'an allocation above the start rule while pending')\n"
  "eq(spy.report().failures, 0, 'failures')\n"
  "m:free(big); m:free(q); m:free(p)\n"
  "eq(spy.report().pending, false, 'pending after the last free')\n";

/* Run first: the first session of the process, numbered 1. The tag a
** block took is gone (its session is 0, not this one's), so the next
** block, which C allocates, has no where. */
static const char first_session[] = PRELUDE
  "assert(spy.start())\n"
  "local p = assert(m:alloc(8))  -- line 10\n"
  "local q = assert(task_alloc(16))\n"
  "local r = spy.report()\n"
  "eq(r.blocks[1].where, '[string \"first_session\"]:10', 'where of the block from Lua')\n"
  "eq(r.blocks[2].address, q, 'the block from C')\n"
  "eq(r.blocks[2].where, nil, 'its where')\n"
  "task_free(q); m:free(p)\n"
  "assert(spy.stop())\n";

/* What the books take from the C heap (docs/spy.md): room for 64
** records, doubled when full, each record with two 4-byte slots of the
** index; all of it given back when the spy is let go. */
static const char books_memory[] = PRELUDE
  "local function room(n) local c = 64; while c < n do c = 2 * c end; return c end\n"
  "eq(heap_bytes(), 0, 'the C heap before the spy')\n"
  "assert(spy.start())\n"
  "eq(heap_bytes(), 0, 'the C heap of a spy with no block')\n"
  "local ps = {}\n"
  "for i = 1, 300 do\n"
  "  ps[i] = assert(m:alloc(1))\n"
  "  eq(heap_bytes(), room(i) * (record_size + 8), 'the books of ' .. i .. ' blocks')\n"
  "end\n"
  "for i = 1, 300 do m:free(ps[i]) end\n"
  "eq(heap_bytes(), 512 * (record_size + 8), 'the books, all blocks freed')\n"
  "assert(spy.stop())\n"
  "eq(heap_bytes(), 0, 'the C heap after the spy was let go')\n";

/* The 65th block grows both tables. The room realloc adds to the records
** holds the pattern `poison` (an address of bytes 0xA5), and the 65th
** block is at that address: the books must not take the room's garbage
** for a record of it. */
static const char books_unwritten[] = PRELUDE
  "assert(spy.start())\n"
  "local ps = {}\n"
  "for i = 1, 64 do ps[i] = assert(m:alloc(1)) end\n"
  "local cb, got = spy_alloc(poison, 10)\n"
  "eq(got, poison, 'PostAlloc')\n"
  "local r = spy.report()\n"
  "eq(r.count, 65, 'count'); eq(r.bytes, 74, 'bytes')\n"
  "eq(r.blocks[65].address, poison, 'the 65th block'); eq(r.blocks[65].size, 10, 'its size')\n"
  "eq(spy_free(poison), poison, 'PreFree')\n"
  "for i = 1, 64 do m:free(ps[i]) end\n"
  "r = spy.report()\n"
  "eq(r.count, 0, 'count at the end'); eq(r.bytes, 0, 'bytes at the end'); eq(r.frees, 65, 'frees')\n"
  "assert(spy.stop())\n";

/* A record the allocator has no block for (freed behind the spy's back):
** the spy is let go all the same, and its books are emptied then. */
static const char books_emptied[] = PRELUDE
  "assert(spy.start())\n"
  "spy_alloc(fake_block, 10)\n"
  "local r = spy.report()\n"
  "eq(r.count, 1, 'count'); eq(r.bytes, 10, 'bytes')\n"
  "assert(spy.stop())\n"
  "r = spy.report()\n"
  "eq(r.active, false, 'active'); eq(r.pending, false, 'pending')\n"
  "eq(r.count, 0, 'count after the spy was let go'); eq(r.bytes, 0, 'bytes after it')\n"
  "eq(r.allocs, 1, 'allocs after it')\n"
  "assert(spy.start())\n"
  "r = spy.report()\n"
  "eq(r.count, 0, 'count after a start'); eq(r.bytes, 0, 'bytes after it')\n"
  "eq(r.allocs, 0, 'allocs after it')\n"
  "assert(spy.stop())\n";

/* Every counter starts again at 0 with each start. (A Realloc to 0 bytes
** right after a Realloc that moved a block frees the block.) */
static const char counters_restart[] = PRELUDE
  "assert(spy.start { fail = { nth = 1 } })\n"
  "eq(m:alloc(8), nil, 'the failed allocation')\n"
  "local p = assert(m:alloc(8))\n"
  "p = assert(m:realloc(p, 16))\n"
  "eq(task_realloc(p, 0), nil, 'Realloc to 0 bytes')\n"
  "local r = spy.report()\n"
  "eq(r.count, 0, 'count'); eq(r.bytes, 0, 'bytes')\n"
  "eq(r.failures, 1, 'failures'); eq(r.allocs, 1, 'allocs')\n"
  "eq(r.reallocs, 1, 'reallocs'); eq(r.frees, 1, 'frees')\n"
  "assert(spy.stop())\n"
  "assert(spy.start())\n"
  "r = spy.report()\n"
  "eq(r.failures, 0, 'failures after a start'); eq(r.dropped, 0, 'dropped after it')\n"
  "eq(r.allocs, 0, 'allocs after it'); eq(r.reallocs, 0, 'reallocs after it')\n"
  "eq(r.frees, 0, 'frees after it')\n"
  "assert(spy.stop())\n";

/* The fraction rule draws splitmix64 (docs/spy.md): an allocation fails
** when its draw is below the fraction, and not when it equals it. */
static const char fraction_draws[] = PRELUDE
  "assert(spy.start())\n"
  "for _, seed in ipairs { 0, 42, -7, 123456789 } do\n"
  "  for k = 1, 6 do\n"
  "    local u = draw(seed, k)\n"
  "    for _, f in ipairs { u, u + 2^-53 } do\n"
  "      assert(spy.fail { fraction = f, seed = seed })\n"
  "      for i = 1, 8 do\n"
  "        local p = m:alloc(4)\n"
  "        eq(p == nil, draw(seed, i) < f, 'seed ' .. seed .. ', fraction ' ..\n"
  "           string.format('%.17g', f) .. ', allocation ' .. i .. ' failed')\n"
  "        if p then m:free(p) end\n"
  "      end\n"
  "    end\n"
  "  end\n"
  "end\n"
  "assert(spy.fail(nil))\n"
  "assert(spy.stop())\n";

/* Realloc(NULL, n) is an allocation: the rule counts and fails it, but for
** 0 bytes, which it neither fails nor counts. */
static const char realloc_null_rule[] = PRELUDE
  "assert(spy.start { fail = { nth = 1 } })\n"
  "local z = task_realloc(nil, 0)\n"
  "eq(task_realloc(nil, 1), nil, 'Realloc(NULL, 1), the first counted')\n"
  "local p = assert(task_realloc(nil, 1))\n"
  "local r = spy.report()\n"
  "eq(r.failures, 1, 'failures')\n"
  "task_free(p)\n"
  "if z then task_free(z) end\n"
  "assert(spy.stop())\n";

/* The binding walks the Lua stack for a tag only while a spy records where
** blocks come from: not once the spy is let go, nor for where = false. */
static const char tags_only_when_asked[] = PRELUDE
  "local before = tags()\n"
  "assert(spy.start())\n"
  "local p = assert(m:alloc(8))\n"
  "eq(tags() - before, 1, 'tags of a spy that records where')\n"
  "m:free(p)\n"
  "assert(spy.stop())\n"
  "before = tags()\n"
  "p = assert(m:alloc(8)); m:free(p)\n"
  "eq(tags() - before, 0, 'tags with the spy let go')\n"
  "assert(spy.start { where = false })\n"
  "p = assert(m:alloc(8)); m:free(p)\n"
  "eq(tags() - before, 0, 'tags of a spy with where = false')\n"
  "assert(spy.stop())\n";

/* A tag left from an earlier session (its allocation never came) is not
** given to a block of the next. */
static const char tag_of_another_session[] = PRELUDE
  "assert(spy.start())\n"
  "settag('stale:1')\n"
  "assert(spy.stop())\n"
  "assert(spy.start())\n"
  "local q = assert(task_alloc(8))\n"
  "local r = spy.report()\n"
  "eq(r.blocks[1].address, q, 'the block'); eq(r.blocks[1].where, nil, 'its where')\n"
  "task_free(q)\n"
  "assert(spy.stop())\n";

/* A where has at most IMALLOC_WHERE_MAX - 1 = 75 characters: a longer tag
** is cut there. */
static const char tag_length[] = PRELUDE
  "assert(spy.start())\n"
  "for _, n in ipairs { 0, 1, 74, 75, 76, 77, 200 } do\n"
  "  local text = ('0123456789'):rep(21):sub(1, n)\n"
  "  settag(text)\n"
  "  local q = assert(task_alloc(8))\n"
  "  local r = spy.report()\n"
  "  eq(r.blocks[1].address, q, 'the block')\n"
  "  eq(r.blocks[1].where, n > 0 and text:sub(1, 75) or nil, 'the where of a tag of ' .. n)\n"
  "  task_free(q)\n"
  "end\n"
  "assert(spy.stop())\n";

/* Another module's spy is registered: start answers CO_E_OBJISREG, and
** makes no call of the allocator that spy would see. */
static const char another_spy[] = PRELUDE
  "local seen = foreign(true)\n"
  "local ok, msg, code = spy.start()\n"
  "eq(ok, nil, 'start'); eq(code, 0x800401FC, 'its code (CO_E_OBJISREG)')\n"
  "eq(foreign(false) - seen, 0, 'calls the other spy saw')\n"
  "eq(spy.report().active, false, 'active')\n"
  "assert(spy.start())\n"
  "assert(spy.stop())\n";

/* Another module revokes the spy just before stop does (any module may
** call CoRevokeMallocSpy): stop answers CO_E_OBJNOTREG, and the spy is
** let go, not left active. */
static const char revoked_meanwhile[] = PRELUDE
  "assert(spy.start())\n"
  "revoke_race()\n"
  "local ok, msg, code = spy.stop()\n"
  "eq(ok, nil, 'stop'); eq(code, 0x800401FB, 'its code (CO_E_OBJNOTREG)')\n"
  "local r = spy.report()\n"
  "eq(r.active, false, 'active'); eq(r.pending, false, 'pending')\n"
  "assert(spy.start())\n"
  "assert(spy.stop())\n";

/* start makes the allocator's first spied allocation itself (docs/spy.md,
** for Wine): one zero-byte Alloc, freed at once, in no report. */
static const char start_allocates_once[] = PRELUDE
  "counted(true)\n"
  "stand_in()\n"
  "assert(spy.start())\n"
  "local allocs, frees, cb = stand_in()\n"
  "eq(allocs, 1, 'Alloc calls of start'); eq(cb, 0, 'their size'); eq(frees, 1, 'Free calls')\n"
  "local r = spy.report()\n"
  "eq(r.count, 0, 'count'); eq(r.allocs, 0, 'allocs'); eq(r.frees, 0, 'frees')\n"
  "assert(spy.stop())\n"
  "counted(false)\n";

/* The books grow by doubling, each time into new tables; the old ones go
** back to the heap, and the last ones when the spy is let go. */
static const char books_given_back[] = PRELUDE
  "eq(heap(), 0, 'the C heap before any spy')\n"
  "assert(spy.start())\n"
  "local ps = {}\n"
  "for i = 1, 1000 do ps[i] = m:alloc(8) end\n"
  "eq(spy.report().count, 1000, 'blocks in the books')\n"
  "eq(heap(), 2, 'C heap blocks: the records and their index')\n"
  "for i = 1, 1000 do m:free(ps[i]) end\n"
  "eq(heap(), 2, 'the tables stay while the spy is registered')\n"
  "assert(spy.stop())\n"
  "eq(heap(), 0, 'the C heap after the spy was let go')\n";

/* A Realloc(NULL, n) from C after a tagged Realloc of a recorded block on
** the same thread: a new block, with no where, whatever the thread's last
** Realloc took out of the books. */
static const char realloc_null_after_move[] = PRELUDE
  "assert(spy.start())\n"
  "local p = assert(m:alloc(8))\n"
  "p = assert(m:realloc(p, 100))\n"
  "local q = assert(task_realloc(nil, 16))\n"
  "local r = spy.report()\n"
  "eq(r.count, 2, 'blocks')\n"
  "for _, b in ipairs(r.blocks) do\n"
  "  if b.address == q then eq(b.where, nil, 'where of the untagged block') end\n"
  "end\n"
  "task_free(q)\n"
  "m:free(p)\n"
  "assert(spy.stop())\n";

/* spy.start asks for the allocator and gives its reference back (it keeps
** only the address): COM's rule, which an allocator that counts enforces. */
static const char start_gives_back[] = PRELUDE
  "eq(counted(true), 0, 'references before')\n"
  "assert(spy.start())\n"
  "eq(counted(true), 0, 'references kept by spy.start')\n"
  "local p = assert(m:alloc(8))\n"
  "eq(spy.report().count, 1, 'a block spied')\n"
  "m:free(p)\n"
  "assert(spy.stop())\n"
  "eq(counted(false), 0, 'references kept by spy.stop')\n";

/* No memory for the books: the block is the caller's all the same, and the
** report says how many went unrecorded. */
static const char books_out_of_memory[] = PRELUDE
  "assert(spy.start())\n"
  "assert(spy.fail { nth = 1000 }); assert(spy.fail(nil))\n"
  "refuse(1)  -- the records' array\n"
  "local a = assert(m:alloc(10))\n"
  "refuse(2)  -- the index, after the records' array\n"
  "local b = assert(m:alloc(20))\n"
  "local c = assert(m:alloc(30))\n"
  "local r = spy.report()\n"
  "eq(r.dropped, 2, 'dropped')\n"
  "eq(r.allocs, 3, 'allocs')\n"
  "eq(r.count, 1, 'count')\n"
  "eq(r.bytes, 30, 'bytes')\n"
  "eq(r.blocks[1].address, c, 'the recorded block')\n"
  "eq(heap(), 2, 'C heap blocks')\n"
  "m:free(a); m:free(b)\n"
  "eq(spy.report().frees, 0, 'frees of unrecorded blocks')\n"
  "m:free(c)\n"
  "r = spy.report()\n"
  "eq(r.frees, 1, 'frees')\n"
  "eq(r.count, 0, 'count at the end')\n"
  "assert(spy.stop())\n"
  "eq(heap(), 0, 'the C heap after the spy was let go')\n";

/* An allocator that hands out an address again without a free the spy
** saw (a block freed behind its back): the new block replaces the record. */
static const char address_again[] = PRELUDE
  "assert(spy.start())\n"
  "local p = assert(m:alloc(100))\n"
  "local q = assert(m:alloc(30))\n"
  "local cb, got = spy_alloc(p, 10)\n"
  "eq(cb, 10, 'PreAlloc'); eq(got, p, 'PostAlloc')\n"
  "local r = spy.report()\n"
  "eq(r.count, 2, 'count')\n"
  "eq(r.bytes, 40, 'bytes')\n"
  "eq(r.allocs, 3, 'allocs')\n"
  "eq(r.blocks[1].address, q, 'the older record'); eq(r.blocks[1].size, 30, 'its size')\n"
  "eq(r.blocks[2].address, p, 'the replaced record'); eq(r.blocks[2].size, 10, 'its size')\n"
  "eq(r.blocks[2].where, nil, 'where of a block not allocated from Lua')\n"
  "m:free(p); m:free(q)\n"
  "r = spy.report()\n"
  "eq(r.count, 0, 'count at the end'); eq(r.bytes, 0, 'bytes at the end')\n"
  "eq(r.frees, 2, 'frees')\n"
  "assert(spy.stop())\n";

/* Calls the built-in allocator never makes: a free of NULL, a Realloc(NULL,
** n) that fails, a Realloc of a block that fails; none changes the books
** but the last, which leaves the block as it was. */
static const char other_calls[] = PRELUDE
  "assert(spy.start())\n"
  "local p = assert(m:alloc(16))\n"
  "eq(spy_free(nil), nil, 'PreFree(NULL)')\n"
  "local cb, got = spy_realloc(nil, 24, nil)\n"
  "eq(cb, 24, 'PreRealloc(NULL, 24)'); eq(got, nil, 'PostRealloc(NULL)')\n"
  "cb, got = spy_realloc(p, 64, nil)\n"
  "eq(cb, 64, 'PreRealloc(p, 64)')\n"
  "local r = spy.report()\n"
  "eq(r.count, 1, 'count'); eq(r.bytes, 16, 'bytes')\n"
  "eq(r.allocs, 1, 'allocs'); eq(r.reallocs, 0, 'reallocs'); eq(r.frees, 0, 'frees')\n"
  "eq(r.blocks[1].address, p, 'the block'); eq(r.blocks[1].size, 16, 'its size')\n"
  "m:free(p)\n"
  "eq(spy.report().count, 0, 'count at the end')\n"
  "assert(spy.stop())\n";

/* A Realloc from Lua takes the binding's tag: the next block, which C
** allocates, has no "where". */
static const char tag_taken[] = PRELUDE
  "assert(spy.start())\n"
  "local p = assert(m:alloc(8))\n"
  "p = assert(m:realloc(p, 64))  -- line 11\n"
  "local q = assert(task_alloc(32))\n"
  "local r = spy.report()\n"
  "eq(r.count, 2, 'count')\n"
  "eq(r.blocks[1].address, p, 'the block from Lua')\n"
  "eq(r.blocks[1].where, '[string \"tag_taken\"]:11', 'its where')\n"
  "eq(r.blocks[2].address, q, 'the block from C')\n"
  "eq(r.blocks[2].where, nil, 'its where')\n"
  "task_free(q); m:free(p)\n"
  "assert(spy.stop())\n";

/* The line of a call made through C functions (pcall): the nearest Lua
** function within 7 of them; deeper, none. */
static const char where_depth[] = PRELUDE
  "assert(spy.start())\n"
  "local function alloc_through(n)  -- m:alloc beneath n pcalls\n"
  "  local args = {}\n"
  "  for i = 1, n - 1 do args[i] = pcall end\n"
  "  args[n], args[n + 1], args[n + 2] = m.alloc, m, 8\n"
  "  local r = {pcall(table.unpack(args))}  -- line 14\n"
  "  for i = 1, n do assert(r[i] == true) end\n"
  "  return assert(r[n + 1])\n"
  "end\n"
  "local p7 = alloc_through(7)\n"
  "local p6 = alloc_through(6)\n"
  "local r = spy.report()\n"
  "eq(r.blocks[1].address, p7, 'the block beneath 7 pcalls')\n"
  "eq(r.blocks[1].where, nil, 'its where')\n"
  "eq(r.blocks[2].address, p6, 'the block beneath 6 pcalls')\n"
  "eq(r.blocks[2].where, '[string \"where_depth\"]:14', 'its where')\n"
  "m:free(p7); m:free(p6)\n"
  "assert(spy.stop())\n";

/* A stop while another holder has a reference to the spy: revoked, the
** spy stays pending until that reference goes too. */
static const char held_elsewhere[] = PRELUDE
  "assert(spy.start())\n"
  "eq(spy_addref(), 2, 'AddRef: the allocator\\'s reference and this one')\n"
  "assert(spy.stop())\n"
  "local r = spy.report()\n"
  "eq(r.active, false, 'active after the stop'); eq(r.pending, true, 'pending after it')\n"
  "eq(spy_release(), 0, 'Release: the last reference')\n"
  "r = spy.report()\n"
  "eq(r.active, false, 'active at the end'); eq(r.pending, false, 'pending at the end')\n"
  "assert(spy.start())\n"
  "assert(spy.stop())\n";

/* The platform fails: no allocator for get, wrap's check of a block or
** spy.start; a revoke refused. */
static const char platform_fails[] = PRELUDE
  "local p = assert(m:alloc(8))\n"
  "local function wrap_error()\n"
  "  local ok, err = pcall(imalloc.wrap, p)\n"
  "  assert(not ok)\n"
  "  return err\n"
  "end\n"
  "assert(wrap_error():find('pointer is a memory block, not an interface', 1, true))\n"
  "getmalloc(0x8007000E)\n"
  "-- no allocator to ask about the block: the backend's check answers\n"
  "assert(wrap_error():find('pointer is not a COM interface', 1, true))\n"
  "local ok, msg, code = imalloc.get()\n"
  "eq(ok, nil, 'get without an allocator'); eq(code, 0x8007000E, 'its code')\n"
  "ok, msg, code = spy.start()\n"
  "eq(ok, nil, 'start without an allocator'); eq(code, 0x8007000E, 'its code')\n"
  "eq(spy.report().active, false, 'active after it')\n"
  "getmalloc(0, true)\n"
  "assert(wrap_error():find('pointer is not a COM interface', 1, true))\n"
  "ok, msg, code = imalloc.get()\n"
  "eq(ok, nil, 'get given NULL'); eq(code, 0x80004003, 'its code (E_POINTER)')\n"
  "ok, msg, code = spy.start()\n"
  "eq(ok, nil, 'start given NULL'); eq(code, 0x80004003, 'its code (E_POINTER)')\n"
  "getmalloc(0)\n"
  "m:free(p)\n"
  "assert(spy.start())\n"
  "revoke(0x8000FFFF)\n"
  "ok, msg, code = spy.stop()\n"
  "eq(ok, nil, 'a refused stop'); eq(code, 0x8000FFFF, 'its code')\n"
  "local r = spy.report()\n"
  "eq(r.active, true, 'active after it'); eq(r.pending, false, 'pending after it')\n"
  "revoke(0)\n"
  "assert(spy.stop())\n"
  "eq(spy.report().active, false, 'active after the stop')\n";

/* A call from C with no Lua function on the stack: nothing to tag with. */
static int untagged_alloc(lua_State *L) {
  int ok;
  if (!run(L, "untagged_alloc", PRELUDE "assert(spy.start()) _G.m = m"))
    return 0;
  lua_getglobal(L, "m");
  lua_getfield(L, -1, "alloc");
  lua_insert(L, -2);
  lua_pushinteger(L, 12);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    printf("m:alloc from C: %s\n", lua_tostring(L, -1));
    return 0;
  }
  lua_setglobal(L, "p");
  ok = run(L, "untagged_alloc", PRELUDE
           "local r = spy.report()\n"
           "eq(r.count, 1, 'count'); eq(r.blocks[1].address, p, 'the block')\n"
           "eq(r.blocks[1].where, nil, 'where')\n"
           "m:free(p)\n"
           "assert(spy.stop())\n");
  return ok;
}

/* The spy's IUnknown, called as any COM client would. */
static void unknown(void) {
  static const IID iid_unknown = IMALLOC_IID_IUNKNOWN;
  static const IID iid_spy = IMALLOC_IID_IMALLOCSPY;
  static const IID iid_malloc = IMALLOC_IID_IMALLOC;
  IMallocSpy *s = registered;
  void *out = &out;
  if (s == NULL) {
    CHECK(!"a spy was registered");
    return;
  }
  CHECK(s->lpVtbl->QueryInterface(s, &iid_spy, NULL) == E_POINTER);
  CHECK(s->lpVtbl->QueryInterface(s, NULL, &out) == E_NOINTERFACE);
  CHECK(out == NULL);
  out = &out;
  CHECK(s->lpVtbl->QueryInterface(s, &iid_malloc, &out) == E_NOINTERFACE);
  CHECK(out == NULL);
  /* held once by the allocator while registered */
  CHECK(s->lpVtbl->QueryInterface(s, &iid_unknown, &out) == S_OK);
  CHECK(out == s);
  CHECK(s->lpVtbl->AddRef(s) == 3);
  CHECK(s->lpVtbl->Release(s) == 2);
  CHECK(s->lpVtbl->Release(s) == 1);
}

int main(int argc, char **argv) {
  lua_State *L;
  if (argc < 2) {
    fprintf(stderr, "usage: spy_books LPATH\n");
    return 2;
  }
  L = new_state(argv[1]);
  if (!L) {
    printf("no memory for a Lua state\n");
    return 1;
  }
  CASE(L, "first_session", first_session);  /* first: session 1 */
  CASE(L, "books_given_back", books_given_back);
  CASE(L, "books_memory", books_memory);
  CASE(L, "books_unwritten", books_unwritten);
  CASE(L, "index_deletions", index_deletions);
  CASE(L, "fail_while_pending", fail_while_pending);
  CASE(L, "books_emptied", books_emptied);
  CASE(L, "counters_restart", counters_restart);
  CASE(L, "fraction_draws", fraction_draws);
  CASE(L, "realloc_null_rule", realloc_null_rule);
  CASE(L, "tags_only_when_asked", tags_only_when_asked);
  CASE(L, "tag_of_another_session", tag_of_another_session);
  CASE(L, "tag_length", tag_length);
  CASE(L, "another_spy", another_spy);
  CASE(L, "revoked_meanwhile", revoked_meanwhile);
  CASE(L, "start_allocates_once", start_allocates_once);
  CASE(L, "books_out_of_memory", books_out_of_memory);
  CASE(L, "start_gives_back", start_gives_back);
  CASE(L, "realloc_null_after_move", realloc_null_after_move);
  CASE(L, "address_again", address_again);
  CASE(L, "other_calls", other_calls);
  CASE(L, "tag_taken", tag_taken);
  CASE(L, "where_depth", where_depth);
  CASE(L, "held_elsewhere", held_elsewhere);
  CASE(L, "platform_fails", platform_fails);
  CHECK(untagged_alloc(L));
  CHECK(run(L, "unknown", PRELUDE "assert(spy.start())"));
  unknown();
  CHECK(run(L, "unknown", PRELUDE "assert(spy.stop())"));
  CHECK(heap_blocks == 0);
  CHECK(unlocks_of_free_locks == 0);
  lua_close(L);
  return check_report();
}
