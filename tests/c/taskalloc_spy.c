/*
** taskalloc_spy.c: IMallocSpy on the built-in allocator, with a counting C
** spy: registration rules, the Pre/Post pairs of every method and their
** order, fSpyed, forced failures, a spy that adds a header of its own, the
** pending revoke, and callbacks from several threads.
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _POSIX_C_SOURCE 200809L

#include "check.h"
#include "client.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>


/* ---- a counting spy ------------------------------------------------------ */

enum {
  QI, ADDREF, RELEASE, PREALLOC, POSTALLOC, PREFREE, POSTFREE, PREREALLOC,
  POSTREALLOC, PREGETSIZE, POSTGETSIZE, PREDIDALLOC, POSTDIDALLOC,
  PREHEAPMIN, POSTHEAPMIN, NMETHODS
};

struct spy {
  IMallocSpy iface;
  long calls[NMETHODS];
  long refs;
  size_t header;      /* bytes the spy puts before each block it sees */
  int fail_next;      /* Pre(Re)Alloc answers 0 once */
  int refuse_qi;
  char log[1024];     /* method names in call order */
  /* arguments of the last calls */
  SIZE_T cb;
  void *ptr;
  BOOL spyed, post_spyed;
  int actual;
};

static struct spy *S(IMallocSpy *This) { return (struct spy *)This; }

static void note(struct spy *s, int method, const char *name) {
  size_t len = strlen(s->log);
  s->calls[method]++;
  if (len + strlen(name) + 2 < sizeof s->log) {
    strcat(s->log, name);
    strcat(s->log, " ");
  }
}

static HRESULT STDMETHODCALLTYPE s_QueryInterface(IMallocSpy *This,
                                                  REFIID riid, void **ppv) {
  static const IID iu = IMALLOC_IID_IUNKNOWN, is = IMALLOC_IID_IMALLOCSPY;
  note(S(This), QI, "QI");
  if (!S(This)->refuse_qi &&
      (!memcmp(riid, &iu, sizeof iu) || !memcmp(riid, &is, sizeof is))) {
    *ppv = This;
    S(This)->refs++;
    return S_OK;
  }
  *ppv = NULL;
  return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE s_AddRef(IMallocSpy *This) {
  note(S(This), ADDREF, "AddRef");
  return (ULONG)++S(This)->refs;
}

static ULONG STDMETHODCALLTYPE s_Release(IMallocSpy *This) {
  note(S(This), RELEASE, "Release");
  return (ULONG)--S(This)->refs;
}

static SIZE_T STDMETHODCALLTYPE s_PreAlloc(IMallocSpy *This, SIZE_T cb) {
  struct spy *s = S(This);
  note(s, PREALLOC, "PreAlloc");
  s->cb = cb;
  if (s->fail_next) {
    s->fail_next = 0;
    return 0;
  }
  return cb + s->header;
}

static void *STDMETHODCALLTYPE s_PostAlloc(IMallocSpy *This, void *p) {
  struct spy *s = S(This);
  note(s, POSTALLOC, "PostAlloc");
  s->ptr = p;
  return p ? (char *)p + s->header : NULL;
}

static void *STDMETHODCALLTYPE s_PreFree(IMallocSpy *This, void *p,
                                         BOOL spyed) {
  struct spy *s = S(This);
  note(s, PREFREE, "PreFree");
  s->ptr = p;
  s->spyed = spyed;
  return spyed ? (char *)p - s->header : p;
}

static void STDMETHODCALLTYPE s_PostFree(IMallocSpy *This, BOOL spyed) {
  note(S(This), POSTFREE, "PostFree");
  S(This)->post_spyed = spyed;
}

static SIZE_T STDMETHODCALLTYPE s_PreRealloc(IMallocSpy *This, void *p,
                                             SIZE_T cb, void **pnew,
                                             BOOL spyed) {
  struct spy *s = S(This);
  note(s, PREREALLOC, "PreRealloc");
  s->ptr = p;
  s->cb = cb;
  s->spyed = spyed;
  *pnew = (p && spyed) ? (char *)p - s->header : p;
  if (s->fail_next) {
    s->fail_next = 0;
    return 0;
  }
  return cb ? cb + s->header : 0;
}

static void *STDMETHODCALLTYPE s_PostRealloc(IMallocSpy *This, void *p,
                                             BOOL spyed) {
  struct spy *s = S(This);
  note(s, POSTREALLOC, "PostRealloc");
  s->post_spyed = spyed;
  return p ? (char *)p + s->header : NULL;
}

static void *STDMETHODCALLTYPE s_PreGetSize(IMallocSpy *This, void *p,
                                            BOOL spyed) {
  struct spy *s = S(This);
  note(s, PREGETSIZE, "PreGetSize");
  s->ptr = p;
  s->spyed = spyed;
  return spyed ? (char *)p - s->header : p;
}

static SIZE_T STDMETHODCALLTYPE s_PostGetSize(IMallocSpy *This, SIZE_T cb,
                                              BOOL spyed) {
  struct spy *s = S(This);
  note(s, POSTGETSIZE, "PostGetSize");
  return (spyed && cb != (SIZE_T)-1) ? cb - s->header : cb;
}

static void *STDMETHODCALLTYPE s_PreDidAlloc(IMallocSpy *This, void *p,
                                             BOOL spyed) {
  struct spy *s = S(This);
  note(s, PREDIDALLOC, "PreDidAlloc");
  s->ptr = p;
  s->spyed = spyed;
  return spyed ? (char *)p - s->header : p;
}

static int STDMETHODCALLTYPE s_PostDidAlloc(IMallocSpy *This, void *p,
                                            BOOL spyed, int actual) {
  struct spy *s = S(This);
  note(s, POSTDIDALLOC, "PostDidAlloc");
  s->ptr = p;
  s->post_spyed = spyed;
  s->actual = actual;
  return actual;
}

static void STDMETHODCALLTYPE s_PreHeapMinimize(IMallocSpy *This) {
  note(S(This), PREHEAPMIN, "PreHeapMinimize");
}

static void STDMETHODCALLTYPE s_PostHeapMinimize(IMallocSpy *This) {
  note(S(This), POSTHEAPMIN, "PostHeapMinimize");
}

static const IMallocSpyVtbl spy_vtbl = {
  s_QueryInterface, s_AddRef, s_Release, s_PreAlloc, s_PostAlloc,
  s_PreFree, s_PostFree, s_PreRealloc, s_PostRealloc, s_PreGetSize,
  s_PostGetSize, s_PreDidAlloc, s_PostDidAlloc, s_PreHeapMinimize,
  s_PostHeapMinimize
};

static void spy_init(struct spy *s, size_t header) {
  memset(s, 0, sizeof *s);
  s->iface.lpVtbl = &spy_vtbl;
  s->refs = 1;  /* the creator's reference */
  s->header = header;
}

static long total_calls(const struct spy *s) {
  long n = 0;
  int i;
  for (i = 0; i < NMETHODS; i++) n += s->calls[i];
  return n;
}

/* ---- tests ------------------------------------------------------------- */

static void test_registration(void) {
  struct spy a, b;
  spy_init(&a, 0);
  spy_init(&b, 0);
  CHECK(imalloc_CoRegisterMallocSpy(NULL) == E_INVALIDARG);
  CHECK(imalloc_CoRevokeMallocSpy() == CO_E_OBJNOTREG);

  /* a spy that does not answer IID_IMallocSpy is refused */
  b.refuse_qi = 1;
  CHECK(imalloc_CoRegisterMallocSpy(&b.iface) == E_INVALIDARG);
  CHECK(b.calls[QI] == 1 && b.refs == 1);
  CHECK(imalloc_CoRevokeMallocSpy() == CO_E_OBJNOTREG);
  b.refuse_qi = 0;

  /* the reference is taken through QueryInterface(IID_IMallocSpy) */
  CHECK(imalloc_CoRegisterMallocSpy(&a.iface) == S_OK);
  CHECK(a.calls[QI] == 1 && a.refs == 2);
  CHECK(imalloc_CoRegisterMallocSpy(&b.iface) == CO_E_OBJISREG);
  CHECK(imalloc_CoRegisterMallocSpy(&a.iface) == CO_E_OBJISREG);
  CHECK(b.calls[QI] == 1 && b.refs == 1 && a.refs == 2);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK);
  CHECK(a.refs == 1 && a.calls[RELEASE] == 1);
  CHECK(imalloc_CoRevokeMallocSpy() == CO_E_OBJNOTREG);
  /* registered again after a revoke */
  CHECK(imalloc_CoRegisterMallocSpy(&b.iface) == S_OK && b.refs == 2);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK && b.refs == 1);
}

static void test_calls(void) {
  struct spy s;
  void *before, *p, *q;
  size_t base = stats().live_blocks;
  spy_init(&s, 0);
  before = ALLOC(24);  /* allocated without the spy */
  CHECK(imalloc_CoRegisterMallocSpy(&s.iface) == S_OK);
  s.log[0] = 0;

  p = ALLOC(10);
  CHECK(p != NULL && s.cb == 10 && s.ptr == p);
  CHECK(!strcmp(s.log, "PreAlloc PostAlloc "));
  CHECK(stats().spied_blocks == 1);

  s.log[0] = 0;
  CHECK(GETSIZE(p) == 10);
  CHECK(!strcmp(s.log, "PreGetSize PostGetSize ") && s.spyed == 1);
  s.log[0] = 0;
  CHECK(DIDALLOC(p) == 1);
  CHECK(!strcmp(s.log, "PreDidAlloc PostDidAlloc "));
  CHECK(s.spyed == 1 && s.post_spyed == 1 && s.actual == 1 && s.ptr == p);

  /* fSpyed is FALSE for a block allocated before the spy */
  s.log[0] = 0;
  CHECK(GETSIZE(before) == 24 && s.spyed == 0);
  CHECK(DIDALLOC(before) == 1 && s.spyed == 0);
  CHECK(DIDALLOC(&s) == 0 && s.spyed == 0 && s.actual == 0);

  /* NULL: Free calls no spy method, GetSize and DidAlloc answer directly */
  s.log[0] = 0;
  FREE(NULL);
  imalloc_CoTaskMemFree(NULL);
  CHECK(GETSIZE(NULL) == (SIZE_T)-1 && DIDALLOC(NULL) == -1);
  CHECK(s.log[0] == 0);

  /* Realloc */
  s.log[0] = 0;
  q = REALLOC(p, 500);
  CHECK(q != NULL && GETSIZE(q) == 500);
  CHECK(!strncmp(s.log, "PreRealloc PostRealloc ", 23));
  CHECK(s.post_spyed == 1);
  p = q;
  /* PreRealloc answering 0 forces a failure: the block stays */
  s.fail_next = 1;
  CHECK(REALLOC(p, 1000) == NULL);
  CHECK(DIDALLOC(p) == 1 && GETSIZE(p) == 500);
  /* Realloc of a block from before the spy: fSpyed FALSE, the result is
  ** spied */
  q = REALLOC(before, 4000);
  CHECK(q != NULL && s.spyed == 0);
  before = NULL;
  CHECK(stats().spied_blocks == 2);
  /* Realloc(NULL, n) and Realloc(p, 0) */
  s.log[0] = 0;
  before = REALLOC(NULL, 7);
  CHECK(before != NULL && s.ptr == NULL && GETSIZE(before) == 7);
  CHECK(!strcmp(s.log, "PreRealloc PostRealloc PreGetSize PostGetSize "));
  CHECK(REALLOC(before, 0) == NULL && DIDALLOC(before) == 0);
  CHECK(stats().spied_blocks == 2);

  /* Free */
  s.log[0] = 0;
  FREE(q);
  CHECK(!strcmp(s.log, "PreFree PostFree "));
  CHECK(s.ptr == q && s.spyed == 1 && s.post_spyed == 1);
  CHECK(stats().spied_blocks == 1);

  /* PreAlloc answering 0 forces a failure, except for 0 bytes */
  s.log[0] = 0;
  s.fail_next = 1;
  CHECK(ALLOC(100) == NULL);
  CHECK(!strcmp(s.log, "PreAlloc "));
  s.fail_next = 1;
  q = ALLOC(0);
  CHECK(q != NULL && GETSIZE(q) == 0 && s.fail_next == 0);
  FREE(q);

  /* sizes that cannot be served still answer NULL under the spy */
  CHECK(ALLOC((SIZE_T)-1) == NULL && ALLOC((SIZE_T)1 << 46) == NULL);
  CHECK(ALLOC(65536) != NULL && GETSIZE(s.ptr) == 65536);
  FREE(s.ptr);
  CHECK(REALLOC(p, (SIZE_T)-1) == NULL && DIDALLOC(p) == 1);

  /* CoTaskMem* go through the spy too */
  s.log[0] = 0;
  q = imalloc_CoTaskMemAlloc(3);
  q = imalloc_CoTaskMemRealloc(q, 6);
  imalloc_CoTaskMemFree(q);
  CHECK(!strcmp(s.log, "PreAlloc PostAlloc PreRealloc PostRealloc PreFree "
                       "PostFree "));

  /* HeapMinimize */
  s.log[0] = 0;
  m->lpVtbl->HeapMinimize(m);
  CHECK(!strcmp(s.log, "PreHeapMinimize PostHeapMinimize "));

  /* large blocks are spied the same way */
  q = ALLOC(300000);
  CHECK(q && GETSIZE(q) == 300000 && s.spyed == 1);
  q = REALLOC(q, 200000);  /* in place */
  CHECK(q && GETSIZE(q) == 200000 && s.spyed == 1);
  FREE(q);
  CHECK(s.spyed == 1);

  FREE(p);
  CHECK(stats().spied_blocks == 0);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK && s.refs == 1);

  /* no more calls once revoked */
  {
    long n = total_calls(&s);
    p = ALLOC(5);
    FREE(p);
    m->lpVtbl->HeapMinimize(m);
    CHECK(total_calls(&s) == n);
  }
  CHECK(stats().live_blocks == base);
}

/* A spy that puts a 16-byte header before each block: the caller sees
** p + 16, and fSpyed must still be TRUE for it. */
static void test_header_spy(void) {
  struct spy s;
  unsigned char *p, *q, *big;
  size_t base = stats().live_blocks;
  spy_init(&s, 16);
  CHECK(imalloc_CoRegisterMallocSpy(&s.iface) == S_OK);
  p = ALLOC(40);
  CHECK(p != NULL && ((uintptr_t)p & 15) == 0);
  CHECK(s.ptr == p - 16);
  memset(p, 0x5a, 40);
  CHECK(GETSIZE(p) == 40 && s.spyed == 1);
  CHECK(DIDALLOC(p) == 1 && s.spyed == 1 && s.ptr == p);
  q = REALLOC(p, 200);
  CHECK(q && s.spyed == 1 && GETSIZE(q) == 200 && q[39] == 0x5a);
  p = ALLOC(0);
  CHECK(p != NULL && GETSIZE(p) == 0 && s.spyed == 1);
  big = ALLOC(100000);
  CHECK(big && GETSIZE(big) == 100000 && s.spyed == 1);
  FREE(big);
  CHECK(s.spyed == 1 && stats().spied_blocks == 2);
  FREE(p);
  CHECK(s.spyed == 1);
  FREE(q);
  CHECK(s.spyed == 1 && stats().spied_blocks == 0);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK && s.refs == 1);
  CHECK(stats().live_blocks == base);
}

/* A header of more than 1 MiB: the pointer the caller sees lies in a
** later MiB of the underlying large block, and the allocator must still
** find that block (fSpyed) from it; a non-spied large block's later MiB
** is not spied. */
static void test_big_header_spy(void) {
  const size_t MiB = (size_t)1 << 20;
  struct spy s;
  unsigned char *p, *q, *plain;
  size_t base = stats().live_blocks;
  plain = ALLOC(3 * MiB);
  CHECK(plain != NULL);
  spy_init(&s, MiB + 16);
  CHECK(imalloc_CoRegisterMallocSpy(&s.iface) == S_OK);
  p = ALLOC(100);
  CHECK(p != NULL && s.ptr == p - (MiB + 16));
  if (!p) return;
  memset(p, 0x3c, 100);
  CHECK(GETSIZE(p) == 100 && s.spyed == 1);
  CHECK(DIDALLOC(p) == 1 && s.spyed == 1);
  CHECK(DIDALLOC(p + 100) == 0);  /* past the block: not ours, not spied */
  CHECK(DIDALLOC(plain + MiB + 16) == 0 && s.spyed == 0);
  CHECK(GETSIZE(plain) == 3 * MiB && s.spyed == 0);
  q = REALLOC(p, 2 * MiB);
  CHECK(q != NULL && s.spyed == 1 && GETSIZE(q) == 2 * MiB && q[99] == 0x3c);
  FREE(q);
  CHECK(s.spyed == 1 && stats().spied_blocks == 0);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK && s.refs == 1);
  FREE(plain);
  CHECK(stats().live_blocks == base);
}

/* A header of more than 2 MiB, and the underlying block shrunk in place
** to a little more than the header: the region the caller's pointer lies
** in is the block's last now, and keeps its entry, so the block is still
** found (fSpyed) from it. Where that entry would be lost depends on the
** block's address (an even MiB), so up to 6 blocks are tried. */
static void test_big_header_shrink(void) {
  const size_t MiB = (size_t)1 << 20;
  struct spy s;
  unsigned char *p = NULL, *q, *odd[6];
  size_t base = stats().live_blocks, n = 0, i;
  spy_init(&s, 2 * MiB + 16);
  CHECK(imalloc_CoRegisterMallocSpy(&s.iface) == S_OK);
  while (n < 6) {
    p = ALLOC(2 * MiB);
    if (!p || !(((uintptr_t)s.ptr >> 20) & 1)) break;
    odd[n++] = p;
    p = NULL;
  }
  CHECK(n < 6);  /* some block starts at an even MiB */
  if (p) {
    memset(p, 0x5e, 100);
    q = REALLOC(p, 100);  /* underlying: 4 MiB + 16 to 2 MiB + 116 */
    CHECK(q == p && s.spyed == 1);
    CHECK(DIDALLOC(q) == 1 && s.spyed == 1);
    CHECK(GETSIZE(q) == 100 && s.spyed == 1 && q[99] == 0x5e);
    FREE(q);
    CHECK(s.spyed == 1);
  }
  for (i = 0; i < n; i++) FREE(odd[i]);
  CHECK(stats().spied_blocks == 0);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK && s.refs == 1);
  CHECK(stats().live_blocks == base);
}

/* A large block allocated before the spy was registered and reallocated
** under it, moved and in place: it is counted as spied from then on, so
** the spy is not revoked while it lives. */
static void test_realloc_into_spy(void) {
  const size_t MiB = (size_t)1 << 20;
  struct spy s;
  unsigned char *p, *q;
  size_t base = stats().spied_blocks;
  p = ALLOC(2 * MiB);
  CHECK(p != NULL);
  if (!p) return;
  p[0] = 0x11;
  spy_init(&s, 0);
  CHECK(imalloc_CoRegisterMallocSpy(&s.iface) == S_OK);
  q = REALLOC(p, 5 * MiB);  /* larger than its mapping */
  CHECK(q != NULL && q[0] == 0x11 && stats().spied_blocks == base + 1);
  if (!q) return;
  CHECK(imalloc_CoRevokeMallocSpy() == E_ACCESSDENIED);  /* pending */
  FREE(q);
  CHECK(stats().spied_blocks == base && s.refs == 1);
  p = ALLOC(3 * MiB);
  CHECK(p != NULL);
  if (!p) return;
  spy_init(&s, 0);
  CHECK(imalloc_CoRegisterMallocSpy(&s.iface) == S_OK);
  q = REALLOC(p, 2 * MiB);  /* smaller: in place */
  CHECK(q == p && stats().spied_blocks == base + 1);
  FREE(q);
  CHECK(stats().spied_blocks == base);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK && s.refs == 1);
  /* the same for a small block reallocated in place */
  p = ALLOC(200);
  CHECK(p != NULL);
  if (!p) return;
  spy_init(&s, 0);
  CHECK(imalloc_CoRegisterMallocSpy(&s.iface) == S_OK);
  q = REALLOC(p, 190);
  CHECK(q == p && stats().spied_blocks == base + 1);
  CHECK(imalloc_CoRevokeMallocSpy() == E_ACCESSDENIED);
  FREE(q);
  CHECK(stats().spied_blocks == base && s.refs == 1);
}

/* After a fork, the spy can be registered and revoked again in both
** processes, also from a thread that did not fork: the locks the fork
** took are all given back. A lock left held would hang here. */
static void *register_and_revoke(void *arg) {
  struct spy s;
  int *ok = arg;
  spy_init(&s, 0);
  *ok = imalloc_CoRegisterMallocSpy(&s.iface) == S_OK &&
        imalloc_CoRevokeMallocSpy() == S_OK && s.refs == 1;
  return NULL;
}

static void test_spy_after_fork(void) {
  pthread_t t;
  int ok = 0, status = -1;
  pid_t pid = fork();
  if (pid == 0) {
    register_and_revoke(&ok);
    check_child_exit(ok ? 0 : 1);
  }
  CHECK(pid > 0);
  if (pid > 0) CHECK(waitpid(pid, &status, 0) == pid && status == 0);
  CHECK(pthread_create(&t, NULL, register_and_revoke, &ok) == 0);
  pthread_join(t, NULL);
  CHECK(ok);
}

/* Under a spy a block takes one byte more (see the allocator's SPY_PAD):
** the sizes at the end of the small classes must still work. */
static void test_spy_at_small_limit(void) {
  struct spy s;
  size_t sizes[] = {65534, 65535, 65536, 65537}, i;
  void *p[4];
  int ok = 1;
  spy_init(&s, 0);
  CHECK(imalloc_CoRegisterMallocSpy(&s.iface) == S_OK);
  for (i = 0; i < 4; i++) {
    p[i] = ALLOC(sizes[i]);
    if (!p[i] || GETSIZE(p[i]) != sizes[i] || !s.spyed) ok = 0;
    if (p[i]) memset(p[i], 0x77, sizes[i]);
  }
  for (i = 0; i < 4; i++) {
    if (DIDALLOC(p[i]) != 1 || !s.spyed) ok = 0;
    FREE(p[i]);
  }
  CHECK(ok);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK && s.refs == 1);
}

/* Addresses that are no live block, with a spy registered: the same
** answers (the spy sees them as not spied). */
static void test_foreign_under_spy(void) {
  struct spy s;
  spy_init(&s, 0);
  CHECK(imalloc_CoRegisterMallocSpy(&s.iface) == S_OK);
  CHECK(refuses_foreign());
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK && s.refs == 1);
}

static void test_pending_revoke(void) {
  struct spy s, other;
  void *p, *q, *plain;
  long n;
  spy_init(&s, 0);
  spy_init(&other, 0);
  plain = ALLOC(8);
  CHECK(imalloc_CoRegisterMallocSpy(&s.iface) == S_OK);
  p = ALLOC(30);
  q = ALLOC(70000);
  CHECK(imalloc_CoRevokeMallocSpy() == E_ACCESSDENIED);
  CHECK(s.refs == 2 && s.calls[RELEASE] == 0);
  /* still registered while the revoke is pending */
  CHECK(imalloc_CoRegisterMallocSpy(&other.iface) == CO_E_OBJISREG);
  CHECK(other.calls[QI] == 0);
  n = s.calls[PREGETSIZE];
  CHECK(GETSIZE(p) == 30 && s.calls[PREGETSIZE] == n + 1);
  /* freeing a block that is not spied does not release the spy */
  FREE(plain);
  CHECK(s.refs == 2 && s.post_spyed == 0);
  FREE(p);
  CHECK(s.refs == 2 && stats().spied_blocks == 1);
  CHECK(imalloc_CoRevokeMallocSpy() == E_ACCESSDENIED);
  /* the last spied block: PostFree, then the spy is released */
  s.log[0] = 0;
  FREE(q);
  CHECK(!strcmp(s.log, "PreFree PostFree Release "));
  CHECK(s.refs == 1 && stats().spied_blocks == 0);
  CHECK(imalloc_CoRevokeMallocSpy() == CO_E_OBJNOTREG);
  n = total_calls(&s);
  p = ALLOC(1);
  FREE(p);
  CHECK(total_calls(&s) == n);
  /* and another spy can now be registered */
  CHECK(imalloc_CoRegisterMallocSpy(&other.iface) == S_OK);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK && other.refs == 1);
}

/* Realloc to 0 of the last spied block also completes a pending revoke. */
static void test_pending_realloc(void) {
  struct spy s;
  void *p;
  spy_init(&s, 0);
  CHECK(imalloc_CoRegisterMallocSpy(&s.iface) == S_OK);
  p = ALLOC(5);
  CHECK(imalloc_CoRevokeMallocSpy() == E_ACCESSDENIED);
  CHECK(REALLOC(p, 0) == NULL);
  CHECK(s.refs == 1 && stats().spied_blocks == 0);
  CHECK(imalloc_CoRevokeMallocSpy() == CO_E_OBJNOTREG);
}

/* A spy method may call the allocator (the lock is recursive). */
static struct spy *reentrant;
static void STDMETHODCALLTYPE r_PreHeapMinimize(IMallocSpy *This) {
  void *p;
  note(S(This), PREHEAPMIN, "PreHeapMinimize");
  p = imalloc_CoTaskMemAlloc(12);
  imalloc_CoTaskMemFree(p);
}

static void test_reentrant(void) {
  struct spy s;
  IMallocSpyVtbl v = spy_vtbl;
  v.PreHeapMinimize = r_PreHeapMinimize;
  spy_init(&s, 0);
  s.iface.lpVtbl = &v;
  reentrant = &s;
  CHECK(imalloc_CoRegisterMallocSpy(&s.iface) == S_OK);
  m->lpVtbl->HeapMinimize(m);
  CHECK(s.calls[PREALLOC] == 1 && s.calls[PREFREE] == 1);
  CHECK(s.calls[POSTHEAPMIN] == 1);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK);
}

/* Callbacks from several threads, serialised by the allocator. */
enum { NT = 4, ROUNDS = 3000 };
static struct spy tspy;

static void *thread_main(void *arg) {
  void *held[8] = {0};
  int i;
  (void)arg;
  for (i = 0; i < ROUNDS; i++) {
    int k = i & 7;
    if (held[k]) {
      if (GETSIZE(held[k]) != (SIZE_T)(k * 10)) return (void *)1;
      FREE(held[k]);
    }
    held[k] = ALLOC((size_t)k * 10);
    if (!held[k]) return (void *)1;
  }
  for (i = 0; i < 8; i++) FREE(held[i]);
  return NULL;
}

static void test_threads(void) {
  pthread_t t[NT];
  size_t base = stats().live_blocks;
  int i, ok = 1;
  spy_init(&tspy, 0);
  CHECK(imalloc_CoRegisterMallocSpy(&tspy.iface) == S_OK);
  for (i = 0; i < NT; i++) pthread_create(&t[i], NULL, thread_main, NULL);
  for (i = 0; i < NT; i++) {
    void *r;
    pthread_join(t[i], &r);
    if (r) ok = 0;
  }
  CHECK(ok);
  CHECK(tspy.calls[PREALLOC] == NT * ROUNDS);
  CHECK(tspy.calls[POSTALLOC] == NT * ROUNDS);
  CHECK(tspy.calls[PREFREE] == NT * ROUNDS);
  CHECK(tspy.calls[POSTFREE] == NT * ROUNDS);
  CHECK(tspy.calls[PREGETSIZE] == NT * (ROUNDS - 8));
  CHECK(stats().spied_blocks == 0 && stats().live_blocks == base);
  CHECK(imalloc_CoRevokeMallocSpy() == S_OK && tspy.refs == 1);
}

/* A revoke pending while other threads free the last spied blocks. */
static void *free_list(void *arg) {
  void **v = arg;
  int i;
  for (i = 0; i < 100; i++) FREE(v[i]);
  return NULL;
}

static void test_threads_pending(void) {
  pthread_t t[2];
  void *v[2][100];
  int i, j;
  spy_init(&tspy, 0);
  CHECK(imalloc_CoRegisterMallocSpy(&tspy.iface) == S_OK);
  for (i = 0; i < 2; i++)
    for (j = 0; j < 100; j++) v[i][j] = ALLOC((size_t)j);
  CHECK(imalloc_CoRevokeMallocSpy() == E_ACCESSDENIED);
  for (i = 0; i < 2; i++) pthread_create(&t[i], NULL, free_list, v[i]);
  for (i = 0; i < 2; i++) pthread_join(t[i], NULL);
  CHECK(tspy.refs == 1 && tspy.calls[RELEASE] == 1);
  CHECK(tspy.calls[PREFREE] == 200 && tspy.calls[POSTFREE] == 200);
  CHECK(imalloc_CoRevokeMallocSpy() == CO_E_OBJNOTREG);
}

int main(void) {
  if (!client_open()) return 1;
  test_registration();
  test_calls();
  test_header_spy();
  test_big_header_spy();
  test_big_header_shrink();
  test_foreign_under_spy();
  test_realloc_into_spy();
  test_spy_at_small_limit();
  test_spy_after_fork();
  test_pending_revoke();
  test_pending_realloc();
  test_reentrant();
  test_threads();
  test_threads_pending();
  return check_report();
}
