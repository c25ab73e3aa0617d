/*
** taskalloc_cospy.c: what a C IMallocSpy is told by the built-in
** allocator, beyond taskalloc_spy.c: fSpyed is TRUE for a pointer inside a
** block allocated under the spy and FALSE just outside it (a large
** block's last page, a chunk's header); and the spy's own callbacks may
** call the spy's API: CoRegisterMallocSpy from QueryInterface,
** CoRevokeMallocSpy from PostFree. A spy is registered only when its
** QueryInterface succeeds and gives a pointer; a PreFree may keep the
** block (it answers NULL); a spied block's Realloc keeps the spy's pad
** byte, and one reallocated in place under a spy counts as spied, once;
** HeapMinimize under a spy gives memory back as without one.
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _POSIX_C_SOURCE 200809L

#include "check.h"
#include "client.h"
#include "fake_com.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

/* ---- a spy that remembers what it was told -------------------------------- */

struct spy {
  IMallocSpy iface;
  long refs;
  BOOL spyed;    /* fSpyed of the last Pre call */
  long pre;      /* Pre calls that take a pointer */
  /* calls into the spy's API that its callbacks make, once, and what
  ** they answered */
  IMallocSpy *register_in_qi;
  HRESULT qi_hr;
  int revoke_in_postfree;
  HRESULT postfree_hr;
  int keep;      /* PreFree answers NULL: the block is not freed */
};

static struct spy *S(IMallocSpy *This) { return (struct spy *)This; }

static HRESULT STDMETHODCALLTYPE s_QueryInterface(IMallocSpy *This,
                                                  REFIID riid, void **ppv) {
  IMallocSpy *other = S(This)->register_in_qi;
  (void)riid;
  if (other) {
    S(This)->register_in_qi = NULL;
    S(This)->qi_hr = imalloc_CoRegisterMallocSpy(other);
  }
  *ppv = This;
  S(This)->refs++;
  return S_OK;
}
static ULONG STDMETHODCALLTYPE s_AddRef(IMallocSpy *This) {
  return (ULONG)++S(This)->refs;
}
static ULONG STDMETHODCALLTYPE s_Release(IMallocSpy *This) {
  return (ULONG)--S(This)->refs;
}
static void *STDMETHODCALLTYPE s_PreFree(IMallocSpy *This, void *p, BOOL f) {
  S(This)->spyed = f;
  S(This)->pre++;
  return S(This)->keep ? NULL : p;
}
static void STDMETHODCALLTYPE s_PostFree(IMallocSpy *This, BOOL f) {
  (void)f;
  if (S(This)->revoke_in_postfree) {
    S(This)->revoke_in_postfree = 0;
    S(This)->postfree_hr = imalloc_CoRevokeMallocSpy();
  }
}
static SIZE_T STDMETHODCALLTYPE s_PreRealloc(IMallocSpy *This, void *p,
                                             SIZE_T cb, void **pnew, BOOL f) {
  S(This)->spyed = f;
  S(This)->pre++;
  *pnew = p;
  return cb;
}
static void *STDMETHODCALLTYPE s_PreGetSize(IMallocSpy *This, void *p,
                                            BOOL f) {
  S(This)->spyed = f;
  S(This)->pre++;
  return p;
}
static void *STDMETHODCALLTYPE s_PreDidAlloc(IMallocSpy *This, void *p,
                                             BOOL f) {
  S(This)->spyed = f;
  S(This)->pre++;
  return p;
}

static const IMallocSpyVtbl spy_vtbl = {
  s_QueryInterface, s_AddRef, s_Release, pass_prealloc, pass_postalloc,
  s_PreFree, s_PostFree, s_PreRealloc, pass_postrealloc, s_PreGetSize,
  pass_postgetsize, s_PreDidAlloc, pass_postdidalloc, pass_heapminimize,
  pass_heapminimize
};

static struct spy spy = { { &spy_vtbl }, 1, 0, 0, NULL, 0, 0, 0, 0 };
static struct spy other = { { &spy_vtbl }, 1, 0, 0, NULL, 0, 0, 0, 0 };

/* fSpyed as the spy's PreDidAlloc was told it for p (-1: not called). */
static int spyed_at(const void *p) {
  long pre = spy.pre;
  spy.spyed = -1;
  DIDALLOC((void *)p);
  return spy.pre == pre + 1 ? spy.spyed : -1;
}

static size_t page_up(size_t n) {
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  return (n + pg - 1) & ~(pg - 1);
}

/* A large block's pages end before its last MiB region does: a pointer in
** its last page is inside it (a spy may hand out a pointer past a header
** of its own), the first byte after its last page is not. */
static void test_large_block_edges(void) {
  size_t n = MiB + 100, len = page_up(n);
  unsigned char *p = ALLOC(n);
  CHECK(p != NULL);
  if (!p) return;
  CHECK(spyed_at(p) == 1);
  CHECK(spyed_at(p + MiB) == 1);       /* its second region */
  CHECK(spyed_at(p + len - 1) == 1);   /* its last page */
  CHECK(len < 2 * MiB);                /* so the next byte is in that region */
  CHECK(spyed_at(p + len) == 0);
  CHECK(spyed_at(p + 2 * MiB - 16) == 0);
  FREE(p);
  CHECK(spyed_at(p) == 0);
}

/* A chunk's header and slot array lie before its first block: no pointer
** there is inside a block, spied or not. */
static void test_chunk_header(void) {
  unsigned char *p = ALLOC(40);
  unsigned char *chunk = (unsigned char *)((uintptr_t)p & ~(MiB - 1));
  CHECK(p != NULL);
  if (!p) return;
  CHECK(spyed_at(p) == 1);
  CHECK(spyed_at(p + 39) == 1);
CHECK(spyed_at(chunk) == 0);
  CHECK(spyed_at(chunk + 16) == 0);
  CHECK(spyed_at(chunk + 4096) == 0);
  FREE(p);
}

/* The spy's lock is recursive from the first call on: a spy's
** QueryInterface, called by the process's first CoRegisterMallocSpy, may
** register a spy itself; the outer one is then the one registered. Must
** run before any other call to the spy's API. */
static void test_register_from_query_interface(void) {
  spy.register_in_qi = &other.iface;
  CHECK(imalloc_CoRegisterMallocSpy(&spy.iface) == S_OK);
  CHECK(spy.register_in_qi == NULL && spy.qi_hr == S_OK);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK && spy.refs == 1);
  CHECK(imalloc_CoRevokeMallocSpy() == CO_E_OBJNOTREG);
}

/* A revoke pending until the last spied block is freed, and the spy's
** PostFree for that block revoking it again: the revoke is done there,
** S_OK, and the spy released once. */
static void test_revoke_in_postfree(void) {
  void *p;
  long refs = spy.refs;
  CHECK(imalloc_CoRegisterMallocSpy(&spy.iface) == S_OK);
  p = ALLOC(10);
  CHECK(p != NULL);
  CHECK(imalloc_CoRevokeMallocSpy() == E_ACCESSDENIED);
  spy.revoke_in_postfree = 1;
  FREE(p);
  CHECK(spy.revoke_in_postfree == 0 && spy.postfree_hr == S_OK);
  CHECK(spy.refs == refs);
  CHECK(imalloc_CoRevokeMallocSpy() == CO_E_OBJNOTREG);
}

/* QueryInterface answers S_OK without a pointer, or a pointer with a
** failure: no spy is registered (E_INVALIDARG). */
static HRESULT STDMETHODCALLTYPE qi_no_pointer(IMallocSpy *This, REFIID riid,
                                               void **ppv) {
  (void)This, (void)riid;
  *ppv = NULL;
  return S_OK;
}
static HRESULT STDMETHODCALLTYPE qi_failing(IMallocSpy *This, REFIID riid,
                                            void **ppv) {
  (void)riid;
  *ppv = This;
  return E_NOINTERFACE;
}

static void test_register_refused(void) {
  IMallocSpyVtbl v1 = spy_vtbl, v2 = spy_vtbl;
  IMallocSpy a = { &v1 }, b = { &v2 };
  v1.QueryInterface = qi_no_pointer;
  v2.QueryInterface = qi_failing;
  CHECK(imalloc_CoRegisterMallocSpy(&a) == E_INVALIDARG);
  CHECK(imalloc_CoRegisterMallocSpy(&b) == E_INVALIDARG);
  CHECK(imalloc_CoRevokeMallocSpy() == CO_E_OBJNOTREG);
}

/* A PreFree that answers NULL keeps the block: nothing is freed. */
static void test_prefree_keeps(void) {
  void *p = ALLOC(24);
  CHECK(p != NULL);
  spy.keep = 1;
  FREE(p);
  imalloc_CoTaskMemFree(p);
  spy.keep = 0;
  CHECK(DIDALLOC(p) == 1 && GETSIZE(p) == 24);
  FREE(p);
  CHECK(DIDALLOC(p) == 0);
}

/* A spied block grown to the size of its block (100 bytes, in the class
** of 101: 112) moves, as a spied block needs one byte more than its size:
** every byte of it is then inside a spied block. */
static void test_spied_realloc_pad(void) {
  unsigned char *p = ALLOC(100), *q;
  CHECK(p != NULL);
  q = REALLOC(p, 113);
  CHECK(q != NULL && q != p && GETSIZE(q) == 113);
  if (!q) return;
  CHECK(spyed_at(q + 112) == 1);
  FREE(q);
}

/* HeapMinimize under a spy gives back the mapping of a freed large block
** kept for reuse (made before the spy: no revoke waits for it). */
static void test_minimize_under_spy(void) {
  void *p = ALLOC(1000000);
  size_t mapped;
  CHECK(p != NULL);
  FREE(p);
  mapped = stats().mapped_bytes;
  CHECK(imalloc_CoRegisterMallocSpy(&spy.iface) == S_OK);
  m->lpVtbl->HeapMinimize(m);
  CHECK(stats().mapped_bytes + 900000 <= mapped);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK);
}

/* A Realloc in place counts the block as spied when it is made under a
** spy, once: a block made without one and reallocated in place under the
** spy holds a revoke back until it is freed; one made under the spy is
** counted once. Without a spy a Realloc in place counts nothing. */
static void test_in_place_counts(void) {
  void *a = ALLOC(60), *b;
  CHECK(a != NULL && REALLOC(a, 50) == a);
  CHECK(stats().spied_blocks == 0);
  CHECK(imalloc_CoRegisterMallocSpy(&spy.iface) == S_OK);
  CHECK(REALLOC(a, 40) == a);
  CHECK(stats().spied_blocks == 1);
  b = ALLOC(60);
  CHECK(b != NULL && REALLOC(b, 50) == b);
  CHECK(stats().spied_blocks == 2);
  CHECK(imalloc_CoRevokeMallocSpy() == E_ACCESSDENIED);
  FREE(a);
  FREE(b);
  CHECK(stats().spied_blocks == 0);
  CHECK(imalloc_CoRevokeMallocSpy() == CO_E_OBJNOTREG);  /* done */
}

int main(void) {
  if (!client_open()) return 1;
  test_register_from_query_interface();
  CHECK(imalloc_CoRegisterMallocSpy(&spy.iface) == S_OK);
  test_large_block_edges();
  test_chunk_header();
  test_prefree_keeps();
  test_spied_realloc_pad();
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK && spy.refs == 1);
  test_revoke_in_postfree();
  test_register_refused();
  test_minimize_under_spy();
  test_in_place_counts();
  return check_report();
}
