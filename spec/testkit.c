/*
** testkit.c: native pointers and objects for the specs (built only for
** tests, never installed).
**
** Lua cannot make a stack address, a CRT block or a foreign IMalloc by
** itself; this module does, so the specs can hand them to imalloc.
*/
#define _DEFAULT_SOURCE  /* MAP_ANONYMOUS (POSIX) */
#include "luacompat.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>


#include "com_abi.h"
#include "imalloc.h"

/*
** {======================================================
** A counting IMalloc: a foreign allocator that records every call
** =======================================================
*/

#define MAX_LIVE 1024
/* Larger requests fail, as a real allocator's would, without asking the C
** runtime: 1 TiB on 64-bit, 1 GiB on 32-bit (a constant shift by 40 would
** not fit a 32-bit SIZE_T). */
#define COUNTING_MAX_SIZE \
  (((SIZE_T)1 << 30) * (sizeof(SIZE_T) > 4 ? 1024 : 1))

typedef struct Counting {
  IMalloc iface;
  int used;
  long refs;     /* COM count; the object is never freed (static pool) */
  long addrefs;  /* AddRef calls */
  long releases; /* Release calls */
  long allocs, frees;
  long minimizes;     /* HeapMinimize calls */
  int size_unknown;   /* GetSize answers (SIZE_T)-1 for live blocks too */
  int qi_mode;        /* QueryInterface(IMalloc) answers: QI_SELF, ... */
  IMalloc *qi_answer; /* ... QI_OTHER: this object, AddRef'd; QI_NULL:
                      ** S_OK with NULL, as a broken object might;
                      ** QI_FAIL: qi_fail and NULL */
  HRESULT qi_fail;
  void *live[MAX_LIVE];
  size_t sizes[MAX_LIVE];
} Counting;

enum { QI_SELF, QI_OTHER, QI_NULL, QI_FAIL };

static Counting pool[64];

static Counting *counting(IMalloc *m) { return (Counting *)(void *)m; }

static int findlive(Counting *c, const void *p) {
  int i;
  if (p == NULL) return -1;
  for (i = 0; i < MAX_LIVE; i++)
    if (c->live[i] == p) return i;
  return -1;
}

static HRESULT STDMETHODCALLTYPE c_qi(IMalloc *m, REFIID riid, void **out) {
  static const IID unk = IMALLOC_IID_IUNKNOWN, mal = IMALLOC_IID_IMALLOC;
  if (memcmp(riid, &unk, sizeof unk) == 0 ||
      memcmp(riid, &mal, sizeof mal) == 0) {
    if (counting(m)->qi_mode == QI_NULL) {
      *out = NULL;
      return S_OK;
    }
    if (counting(m)->qi_mode == QI_FAIL) {
      *out = NULL;
      return counting(m)->qi_fail;
    }
    if (counting(m)->qi_mode == QI_OTHER) m = counting(m)->qi_answer;
    *out = m;
    m->lpVtbl->AddRef(m);
    return S_OK;
  }
  *out = NULL;
  return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE c_addref(IMalloc *m) {
  Counting *c = counting(m);
  c->addrefs++;
  return (ULONG)++c->refs;
}

static ULONG STDMETHODCALLTYPE c_release(IMalloc *m) {
  Counting *c = counting(m);
  c->releases++;
  return (ULONG)--c->refs;
}

static void *STDMETHODCALLTYPE c_alloc(IMalloc *m, SIZE_T cb) {
  Counting *c = counting(m);
  int i;
  void *p;
  for (i = 0; i < MAX_LIVE && c->live[i] != NULL; i++) {}
  if (i == MAX_LIVE || cb > COUNTING_MAX_SIZE) return NULL;
  p = malloc(cb ? cb : 1);
  if (p == NULL) return NULL;
  c->live[i] = p;
  c->sizes[i] = cb;
  c->allocs++;
  return p;
}

static void STDMETHODCALLTYPE c_free(IMalloc *m, void *p) {
  Counting *c = counting(m);
  int i = findlive(c, p);
  if (i < 0) return;
  c->live[i] = NULL;
  c->frees++;
  free(p);
}

static void *STDMETHODCALLTYPE c_realloc(IMalloc *m, void *p, SIZE_T cb) {
  Counting *c = counting(m);
  int i;
  void *q;
  if (p == NULL) return c_alloc(m, cb);
  if (cb == 0) {
    c_free(m, p);
    return NULL;
  }
  i = findlive(c, p);
  if (i < 0) return NULL;
  q = realloc(p, cb);
  if (q == NULL) return NULL;
  c->live[i] = q;
  c->sizes[i] = cb;
  return q;
}

static SIZE_T STDMETHODCALLTYPE c_getsize(IMalloc *m, void *p) {
  Counting *c = counting(m);
  int i = findlive(c, p);
  return i < 0 || c->size_unknown ? (SIZE_T)-1 : c->sizes[i];
}

static int STDMETHODCALLTYPE c_didalloc(IMalloc *m, void *p) {
  if (p == NULL) return -1;
  return findlive(counting(m), p) >= 0;
}

static void STDMETHODCALLTYPE c_heapminimize(IMalloc *m) {
  counting(m)->minimizes++;
}

static const IMallocVtbl counting_vtbl = {
  c_qi, c_addref, c_release, c_alloc, c_realloc,
  c_free, c_getsize, c_didalloc, c_heapminimize
};

static Counting *checkcounting(lua_State *L, int arg) {
  Counting *c = (Counting *)lua_touserdata(L, arg);
  luaL_argcheck(L, c >= pool && c < pool + sizeof pool / sizeof pool[0], arg,
                "not a counting IMalloc");
  return c;
}

/* counting([where]): a new counting IMalloc, with one reference for the
** caller. With where "heap", its vtable is a copy in the heap, as an object
** built at run time (by an FFI) has it: a table outside every loaded image
** whose slots point into this module's code. The copy is a userdata kept
** in the registry: it lives as long as the Lua state, and goes with it. */
static int t_counting(lua_State *L) {
  static const char *const wheres[] = {"image", "heap", NULL};
  int heap = luaL_checkoption(L, 1, "image", wheres) == 1;
  const IMallocVtbl *vtbl = &counting_vtbl;
  size_t i;
  if (heap) {
    IMallocVtbl *copy =
        (IMallocVtbl *)lua_newuserdatauv(L, sizeof *copy, 0);
    memcpy(copy, &counting_vtbl, sizeof *copy);
    (void)luaL_ref(L, LUA_REGISTRYINDEX);
    vtbl = copy;
  }
  for (i = 0; i < sizeof pool / sizeof pool[0]; i++) {
    if (!pool[i].used) {
      memset(&pool[i], 0, sizeof pool[i]);
      pool[i].iface.lpVtbl = vtbl;
      pool[i].used = 1;
      pool[i].refs = 1;
      lua_pushlightuserdata(L, &pool[i].iface);
      return 1;
    }
  }
  return luaL_error(L, "counting pool exhausted");
}

/* counts(p): {refs=, addrefs=, releases=, allocs=, frees=, minimizes=} */
static int t_counts(lua_State *L) {
  Counting *c = checkcounting(L, 1);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, c->refs);
  lua_setfield(L, -2, "refs");
  lua_pushinteger(L, c->addrefs);
  lua_setfield(L, -2, "addrefs");
  lua_pushinteger(L, c->releases);
  lua_setfield(L, -2, "releases");
  lua_pushinteger(L, c->allocs);
  lua_setfield(L, -2, "allocs");
  lua_pushinteger(L, c->frees);
  lua_setfield(L, -2, "frees");
  lua_pushinteger(L, c->minimizes);
  lua_setfield(L, -2, "minimizes");
  return 1;
}

/* answer_qi_with(a, b): a's QueryInterface answers with counting IMalloc
** b, as an object that hands out another of its interfaces would; with
** b false, it answers S_OK and NULL. */
static int t_answer_qi_with(lua_State *L) {
  Counting *c = checkcounting(L, 1);
  if (lua_toboolean(L, 2)) {
    c->qi_mode = QI_OTHER;
    c->qi_answer = &checkcounting(L, 2)->iface;
  } else {
    c->qi_mode = QI_NULL;
  }
  return 0;
}

/* fail_qi_with(a, hr): a's QueryInterface(IMalloc) fails with hr, as an
** object in a bad state might (not E_NOINTERFACE: the IID is known). */
static int t_fail_qi_with(lua_State *L) {
  Counting *c = checkcounting(L, 1);
  c->qi_mode = QI_FAIL;
  c->qi_fail = (HRESULT)(uint32_t)luaL_checkinteger(L, 2);
  return 0;
}

/* size_unknown(a, on): a's GetSize answers (SIZE_T)-1, "unknown", for its
** live blocks too, as an allocator that keeps no sizes may. */
static int t_size_unknown(lua_State *L) {
  checkcounting(L, 1)->size_unknown = lua_toboolean(L, 2);
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** Addresses no task allocator handed out
** =======================================================
*/

static char static_block[64];

static int t_static_pointer(lua_State *L) {
  lua_pushlightuserdata(L, static_block + 16);
  return 1;
}

static int t_stack_pointer(lua_State *L) {
  char local[32];
  /* Only the address travels; nobody reads it after this returns. */
  lua_pushlightuserdata(L, (void *)(uintptr_t)local);
  return 1;
}

static int t_crt_malloc(lua_State *L) {
  void *p = malloc((size_t)luaL_checkinteger(L, 1));
  if (p == NULL) return luaL_error(L, "malloc failed");
  lua_pushlightuserdata(L, p);
  return 1;
}

static int t_crt_free(lua_State *L) {
  free(lua_touserdata(L, 1));
  return 0;
}

/*
** CoTaskMemAlloc / Realloc / Free, the functions every native module uses:
** ole32's on Windows; on POSIX the built-in allocator's exports, looked up
** in the already loaded imalloc.core (its path is the argument of
** cotaskmem_open), since the module is loaded RTLD_LOCAL.
*/
static void *(STDMETHODCALLTYPE *task_alloc)(SIZE_T);
static void *(STDMETHODCALLTYPE *task_realloc)(void *, SIZE_T);
static void (STDMETHODCALLTYPE *task_free)(void *);
static HRESULT (STDMETHODCALLTYPE *task_getmalloc)(DWORD, IMalloc **);

#ifdef _WIN32
static int t_cotaskmem_open(lua_State *L) {
  task_alloc = CoTaskMemAlloc;
  task_realloc = CoTaskMemRealloc;
  task_free = CoTaskMemFree;
  task_getmalloc = CoGetMalloc;
  lua_pushboolean(L, 1);
  return 1;
}
#else
#include <dlfcn.h>

static int t_cotaskmem_open(lua_State *L) {
  void *lib = dlopen(luaL_checkstring(L, 1), RTLD_NOW | RTLD_NOLOAD);
  if (lib == NULL) return luaL_error(L, "imalloc.core is not loaded");
  /* POSIX dlsym returns object pointers for functions; memcpy keeps
  ** -pedantic quiet about the conversion. */
  {
    void *a = dlsym(lib, "imalloc_CoTaskMemAlloc");
    void *r = dlsym(lib, "imalloc_CoTaskMemRealloc");
    void *f = dlsym(lib, "imalloc_CoTaskMemFree");
    void *g = dlsym(lib, "imalloc_CoGetMalloc");
    if (!a || !r || !f || !g) return luaL_error(L, "CoTaskMem* not exported");
    memcpy(&task_alloc, &a, sizeof a);
    memcpy(&task_realloc, &r, sizeof r);
    memcpy(&task_free, &f, sizeof f);
    memcpy(&task_getmalloc, &g, sizeof g);
  }
  dlclose(lib);  /* the module itself keeps it loaded */
  lua_pushboolean(L, 1);
  return 1;
}
#endif

static int t_cotaskmem_alloc(lua_State *L) {
  void *p;
  luaL_argcheck(L, task_alloc != NULL, 1, "call cotaskmem_open first");
  p = task_alloc((SIZE_T)luaL_checkinteger(L, 1));
  if (p) lua_pushlightuserdata(L, p); else lua_pushnil(L);
  return 1;
}

static int t_cotaskmem_realloc(lua_State *L) {
  void *p;
  luaL_argcheck(L, task_realloc != NULL, 1, "call cotaskmem_open first");
  p = task_realloc(lua_touserdata(L, 1), (SIZE_T)luaL_checkinteger(L, 2));
  if (p) lua_pushlightuserdata(L, p); else lua_pushnil(L);
  return 1;
}

static int t_cotaskmem_free(lua_State *L) {
  luaL_argcheck(L, task_free != NULL, 1, "call cotaskmem_open first");
  task_free(lua_touserdata(L, 1));
  return 0;
}

/* The task allocator's own DidAlloc and GetSize of a pointer, as native
** code sees them (no check of the module's in between): on a heap that
** delays frees, 1 and -1 for a block it keeps aside (Wine's checking heap,
** the delayfree test build). */
static IMalloc *task_malloc(lua_State *L) {
  IMalloc *m = NULL;
  luaL_argcheck(L, task_getmalloc != NULL, 1, "call cotaskmem_open first");
  if (task_getmalloc(MEMCTX_TASK, &m) < 0 || m == NULL)
    luaL_error(L, "CoGetMalloc failed");
  return m;
}

static int t_cotaskmem_didalloc(lua_State *L) {
  IMalloc *m = task_malloc(L);
  lua_pushinteger(L, m->lpVtbl->DidAlloc(m, lua_touserdata(L, 1)));
  m->lpVtbl->Release(m);
  return 1;
}

static int t_cotaskmem_getsize(lua_State *L) {
  IMalloc *m = task_malloc(L);
  SIZE_T n = m->lpVtbl->GetSize(m, lua_touserdata(L, 1));
  m->lpVtbl->Release(m);
  lua_pushinteger(L, n == (SIZE_T)-1 ? -1 : (lua_Integer)n);
  return 1;
}

#ifdef _WIN32
/* A block of the process heap: on Windows, the task allocator's DidAlloc
** answers 1 for it, because it asks the heap, not where a block came from. */
static int t_heap_alloc(lua_State *L) {
  void *p = HeapAlloc(GetProcessHeap(), 0, (SIZE_T)luaL_checkinteger(L, 1));
  if (p == NULL) return luaL_error(L, "HeapAlloc failed");
  lua_pushlightuserdata(L, p);
  return 1;
}

static int t_heap_free(lua_State *L) {
  HeapFree(GetProcessHeap(), 0, lua_touserdata(L, 1));
  return 0;
}
#define PLATFORM "windows"
#else
#define PLATFORM "posix"
#endif

/*
** threads(ptr, nthreads, rounds): nthreads threads, none of which
** initialises COM, allocate, check and free through the IMalloc at ptr at
** once; returns the number of inconsistencies they saw (DidAlloc, GetSize
** or a block's bytes not what the thread wrote).
*/
typedef struct Worker {
  IMalloc *m;
  long rounds;
  unsigned seed;
  long errors;
} Worker;

static void work(Worker *w) {
  enum { SLOTS = 64 };
  unsigned char *live[SLOTS] = {0};
  size_t sizes[SLOTS] = {0};
  unsigned x = w->seed;
  long r;
  int i;
  for (r = 0; r < w->rounds; r++) {
    x = x * 1103515245u + 12345u;
    i = (int)((x >> 16) % SLOTS);
    if (live[i]) {  /* check and free */
      size_t k;
      for (k = 0; k < sizes[i]; k++)
        if (live[i][k] != (unsigned char)(sizes[i] + k)) { w->errors++; break; }
      if (w->m->lpVtbl->DidAlloc(w->m, live[i]) != 1) w->errors++;
      if (w->m->lpVtbl->GetSize(w->m, live[i]) != sizes[i]) w->errors++;
      w->m->lpVtbl->Free(w->m, live[i]);
      live[i] = NULL;
    } else {
      size_t n = (x >> 8) % 512, k;
      unsigned char *p = (unsigned char *)w->m->lpVtbl->Alloc(w->m, n);
      if (p == NULL) { w->errors++; continue; }
      for (k = 0; k < n; k++) p[k] = (unsigned char)(n + k);
      live[i] = p;
      sizes[i] = n;
    }
  }
  for (i = 0; i < SLOTS; i++)
    if (live[i]) w->m->lpVtbl->Free(w->m, live[i]);
}

#ifdef _WIN32
static DWORD WINAPI worker_main(LPVOID arg) {
  work((Worker *)arg);
  return 0;
}
#else
#include <pthread.h>
static void *worker_main(void *arg) {
  work((Worker *)arg);
  return NULL;
}
#endif

static int t_threads(lua_State *L) {
  enum { MAXTHREADS = 16 };
  IMalloc *m = (IMalloc *)lua_touserdata(L, 1);
  int n = (int)luaL_checkinteger(L, 2), i, started = 0;
  long rounds = (long)luaL_checkinteger(L, 3), errors = 0;
  Worker w[MAXTHREADS];
#ifdef _WIN32
  HANDLE t[MAXTHREADS];
#else
  pthread_t t[MAXTHREADS];
#endif
  luaL_argcheck(L, m != NULL, 1, "IMalloc pointer expected");
  luaL_argcheck(L, n >= 1 && n <= MAXTHREADS, 2, "1 to 16 threads");
  for (i = 0; i < n; i++) {
    w[i].m = m;
    w[i].rounds = rounds;
    w[i].seed = 7919u * (unsigned)(i + 1);
    w[i].errors = 0;
#ifdef _WIN32
    t[i] = CreateThread(NULL, 0, worker_main, &w[i], 0, NULL);
    if (t[i] == NULL) break;
#else
    if (pthread_create(&t[i], NULL, worker_main, &w[i]) != 0) break;
#endif
    started++;
  }
  for (i = 0; i < started; i++) {
#ifdef _WIN32
    WaitForSingleObject(t[i], INFINITE);
    CloseHandle(t[i]);
#else
    pthread_join(t[i], NULL);
#endif
    errors += w[i].errors;
  }
  if (started < n) return luaL_error(L, "could not start %d threads", n);
  lua_pushinteger(L, errors);
  return 1;
}

/* peek(p, n): n bytes at p as a string, for checking what a block holds. */
static int t_peek(lua_State *L) {
  const char *p = (const char *)lua_touserdata(L, 1);
  luaL_argcheck(L, p != NULL, 1, "pointer expected");
  lua_pushlstring(L, p, (size_t)luaL_checkinteger(L, 2));
  return 1;
}

/* poke(p, s): copies s to p. */
static int t_poke(lua_State *L) {
  char *p = (char *)lua_touserdata(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  luaL_argcheck(L, p != NULL, 1, "pointer expected");
  memcpy(p, s, len);
  return 0;
}

/* pointer_bytes(p): the bytes of the pointer p itself (its address, in
** the machine's order), for writing it into a block as a script could. */
static int t_pointer_bytes(lua_State *L) {
  void *p = lua_touserdata(L, 1);
  luaL_checktype(L, 1, LUA_TLIGHTUSERDATA);
  lua_pushlstring(L, (const char *)&p, sizeof p);
  return 1;
}

/* deref(p): the pointer stored at p (an object's vtable pointer). */
static int t_deref(lua_State *L) {
  void *const *p = (void *const *)lua_touserdata(L, 1);
  luaL_argcheck(L, p != NULL, 1, "pointer expected");
  lua_pushlightuserdata(L, *p);
  return 1;
}

/* null(): the NULL pointer as a light userdata. */
static int t_null(lua_State *L) {
  lua_pushlightuserdata(L, NULL);
  return 1;
}

/* offset(p, n): p + n, for interior pointers. */
static int t_offset(lua_State *L) {
  char *p = (char *)lua_touserdata(L, 1);
  luaL_argcheck(L, p != NULL, 1, "pointer expected");
  lua_pushlightuserdata(L, p + luaL_checkinteger(L, 2));
  return 1;
}

/* address_of(u): the memory of full userdata u, as a light userdata: the
** value a forged `self` would need to pass for u. */
static int t_address_of(lua_State *L) {
  luaL_checktype(L, 1, LUA_TUSERDATA);
  lua_pushlightuserdata(L, lua_touserdata(L, 1));
  return 1;
}

/* }====================================================== */

/* userdata(n): a new full userdata of n bytes with no metatable, zeroed. */
static int t_userdata(lua_State *L) {
  size_t n = (size_t)luaL_checkinteger(L, 1);
  memset(lua_newuserdatauv(L, n, 0), 0, n);
  return 1;
}

/* tointegerx(v): what lua_tointegerx answers for v, and whether it took
** v for an integer (src/luacompat.h's before 5.3). */
static int t_tointegerx(lua_State *L) {
  int isint = -1;
  lua_Integer i;
  luaL_checkany(L, 1);
  i = lua_tointegerx(L, 1, &isint);
  lua_pushnumber(L, (lua_Number)i);
  lua_pushboolean(L, isint);
  return 2;
}

/* The user-value calls as src/luacompat.h gives them to every runtime
** (5.4's own on 5.4), for spec/module/luacompat_spec.lua to hold them to
** 5.4's contract. uv_new(nuv): a userdata of one byte with nuv values;
** uv_get(u, n): the type lua_getiuservalue answers, how many values it
** left on the stack, and the value on top; uv_set(u, n, v): what
** lua_setiuservalue answers, and how many values the stack lost. */
static int t_uv_new(lua_State *L) {
  lua_newuserdatauv(L, 1, (int)luaL_checkinteger(L, 1));
  return 1;
}

static int t_uv_get(lua_State *L) {
  int n = (int)luaL_checkinteger(L, 2), type, left;
  lua_settop(L, 2);
  type = lua_getiuservalue(L, 1, n);
  left = lua_gettop(L) - 2;
  lua_pushinteger(L, type);
  lua_pushinteger(L, left);
  if (left > 0)
    lua_pushvalue(L, -3);
  else
    lua_pushnil(L);
  return 3;
}

static int t_uv_set(lua_State *L) {
  int n = (int)luaL_checkinteger(L, 2), set, lost;
  lua_settop(L, 3);
  set = lua_setiuservalue(L, 1, n);
  lost = 3 - lua_gettop(L);
  lua_pushinteger(L, set);
  lua_pushinteger(L, lost);
  return 2;
}

/* A fresh page no one can read (PAGE_NOACCESS, PROT_NONE), or with a true
** argument on Windows a guard page (whose first touch raises): addresses
** imalloc.wrap must refuse without reading them. Never given back. */
#ifdef _WIN32
static int t_unreadable_page(lua_State *L) {
  DWORD protect = lua_toboolean(L, 1) ? PAGE_READWRITE | PAGE_GUARD
                                      : PAGE_NOACCESS;
  void *p = VirtualAlloc(NULL, 4096, MEM_RESERVE | MEM_COMMIT, protect);
  if (p == NULL) return luaL_error(L, "VirtualAlloc failed");
  lua_pushlightuserdata(L, p);
  return 1;
}
#else
#include <sys/mman.h>

static int t_unreadable_page(lua_State *L) {
  void *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return luaL_error(L, "mmap failed");
  lua_pushlightuserdata(L, p);
  return 1;
}
#endif

/* page_end(): the end (one past the last byte) of a fresh read-write page,
** zeroed, whose next page no one can read (reserved only, PROT_NONE): where
** a range that imalloc.wrap reads may end, and where one it must refuse
** crosses. Never given back. */
#ifdef _WIN32
static int t_page_end(lua_State *L) {
  SYSTEM_INFO si;
  char *p;
  GetSystemInfo(&si);
  p = (char *)VirtualAlloc(NULL, 2 * (SIZE_T)si.dwPageSize, MEM_RESERVE,
                           PAGE_NOACCESS);
  if (p == NULL || VirtualAlloc(p, si.dwPageSize, MEM_COMMIT,
                                PAGE_READWRITE) == NULL)
    return luaL_error(L, "VirtualAlloc failed");
  lua_pushlightuserdata(L, p + si.dwPageSize);
  return 1;
}
#else
#include <unistd.h>

static int t_page_end(lua_State *L) {
  size_t ps = (size_t)sysconf(_SC_PAGESIZE);
  char *p = (char *)mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED || mprotect(p + ps, ps, PROT_NONE) != 0)
    return luaL_error(L, "mmap failed");
  lua_pushlightuserdata(L, p + ps);
  return 1;
}
#endif

/* pointer_at(n): the address n (negative: counted from the top of the
** address space) as a light userdata, never read. */
static int t_pointer_at(lua_State *L) {
  lua_pushlightuserdata(L, (void *)(uintptr_t)(intptr_t)luaL_checkinteger(L, 1));
  return 1;
}

static const luaL_Reg testkit[] = {
  {"address_of", t_address_of},
  {"unreadable_page", t_unreadable_page},
  {"page_end", t_page_end},
  {"pointer_at", t_pointer_at},
  {"userdata", t_userdata},
  {"tointegerx", t_tointegerx},
  {"uv_new", t_uv_new},
  {"uv_get", t_uv_get},
  {"uv_set", t_uv_set},
  {"counting", t_counting},
  {"counts", t_counts},
  {"answer_qi_with", t_answer_qi_with},
  {"fail_qi_with", t_fail_qi_with},
  {"size_unknown", t_size_unknown},
  {"static_pointer", t_static_pointer},
  {"stack_pointer", t_stack_pointer},
  {"crt_malloc", t_crt_malloc},
  {"crt_free", t_crt_free},
#ifdef _WIN32
  {"heap_alloc", t_heap_alloc},
  {"heap_free", t_heap_free},
#endif
  {"cotaskmem_open", t_cotaskmem_open},
  {"cotaskmem_alloc", t_cotaskmem_alloc},
  {"cotaskmem_realloc", t_cotaskmem_realloc},
  {"cotaskmem_free", t_cotaskmem_free},
  {"cotaskmem_didalloc", t_cotaskmem_didalloc},
  {"cotaskmem_getsize", t_cotaskmem_getsize},
  {"threads", t_threads},
  {"peek", t_peek},
  {"poke", t_poke},
  {"offset", t_offset},
  {"null", t_null},
  {"pointer_bytes", t_pointer_bytes},
  {"deref", t_deref},
  {NULL, NULL}
};

IMALLOC_EXPORT int luaopen_imalloc_testkit(lua_State *L);

IMALLOC_EXPORT int luaopen_imalloc_testkit(lua_State *L) {
  luaL_newlib(L, testkit);
  lua_pushliteral(L, PLATFORM);
  lua_setfield(L, -2, "platform");
  lua_pushinteger(L, (lua_Integer)sizeof(imalloc_Handle));
  lua_setfield(L, -2, "handle_size");
  /* The widths the specs branch on: 32-bit Windows has a 32-bit SIZE_T
  ** under a 64-bit lua_Integer, and the Lua of any version can learn them. */
  lua_pushinteger(L, (lua_Integer)sizeof(size_t));
  lua_setfield(L, -2, "size_t_size");
  lua_pushinteger(L, (lua_Integer)sizeof(void *));
  lua_setfield(L, -2, "pointer_size");
  lua_pushinteger(L, (lua_Integer)sizeof(lua_Integer));
  lua_setfield(L, -2, "integer_size");
  return 1;
}
