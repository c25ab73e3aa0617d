/*
** fuzz_taskalloc.c: libFuzzer target over the C entry points of the
** built-in task allocator (src/taskalloc/).
**
** The input is a byte-coded program: alloc, realloc, free (through the
** IMalloc and through CoTaskMem*), getsize and didalloc of live blocks,
** of interior, stale, foreign and arbitrary addresses, heapminimize, and
** an identity IMallocSpy registered and revoked on the way. A shadow model
** knows what every live block must hold (size, a byte pattern, no overlap,
** 16-byte alignment); any disagreement aborts. Every block is freed at the
** end of the input, and the allocator's statistics must be back where they
** started: no pointer leaves the target.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taskalloc.h"
#include "fake_com.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

enum { NSLOTS = 32, NSTALE = 16, MAX_OPS = 512 };
#define FILL_MAX ((size_t)1 << 16)  /* larger blocks: head and tail only */
#define EDGE 4096

#define CHECK(cond) \
  do { if (!(cond)) fail(#cond, __LINE__); } while (0)

static void fail(const char *what, int line) {
  fprintf(stderr, "fuzz_taskalloc: check failed at line %d: %s\n", line, what);
  abort();
}

/* ---- the input ---------------------------------------------------------- */

/* Input, u8, u16, u64: fuzz_input.h */

static size_t take_size(Input *in) {
  static const size_t special[] = {
    0, 1, 15, 16, 17, 128, 129, 4096, 65535, 65536, 65537, 65536 * 2,
    ((size_t)1 << 20) - 1, (size_t)1 << 20, ((size_t)1 << 20) + 1,
    (size_t)1 << 40, ((size_t)1 << 40) + 1, (size_t)1 << 46,
    (size_t)1 << 62, SIZE_MAX / 2, SIZE_MAX - 4096, SIZE_MAX - 15,
    SIZE_MAX,
  };
  switch (u8(in) % 8) {
    case 0: case 1: case 2: return u8(in);
    case 3: return u16(in) % 4097;
    case 4: return 60000 + u16(in) % 12000;  /* around the large threshold */
    case 5: return (size_t)u16(in) * 16 + u8(in);  /* up to 1 MiB */
    case 6: return (size_t)u16(in) % 8 * 1048576 + u16(in);
    default: return special[u8(in) % (sizeof special / sizeof special[0])];
  }
}

/* ---- the shadow model ------------------------------------------------ */

typedef struct {
  unsigned char *p;  /* NULL: empty */
  size_t n;
  uint8_t seed;
} Slot;

static IMalloc *m;
static Slot slots[NSLOTS];
static void *stale[NSTALE];  /* addresses freed during this input */
static unsigned nstale;
static struct imalloc_taskstats base;
static char foreign_static[64];

static unsigned char pat(uint8_t seed, size_t i) {
  return (unsigned char)(seed ^ (i * 131u) ^ (i >> 8));
}

/* The bytes the model checks: all of a block up to FILL_MAX, else the
** first and last EDGE bytes. */
#define EACH_BYTE(i, n) \
  for (i = 0; i < (n); i = ((n) > FILL_MAX && i == EDGE - 1 && (n) > 2 * EDGE) \
                              ? (n) - EDGE : i + 1)

static void fill(const Slot *s) {
  size_t i;
  EACH_BYTE(i, s->n) s->p[i] = pat(s->seed, i);
}

/* The bytes below `upto` that fill() wrote for a block of n bytes. */
static void check_bytes(const Slot *s, size_t n, size_t upto) {
  size_t i;
  EACH_BYTE(i, n) {
    if (i >= upto) break;
    CHECK(s->p[i] == pat(s->seed, i));
  }
}

static int is_live_start(const void *a) {
  int k;
  for (k = 0; k < NSLOTS; k++)
    if (slots[k].p && (const void *)slots[k].p == a) return 1;
  return 0;
}

static size_t live_blocks(void) {
  struct imalloc_taskstats st;
  imalloc_taskalloc_stats(&st);
  return st.live_blocks;
}

/* A slot's block as the allocator must see it. */
static void check_slot(const Slot *s) {
  if (!s->p) return;
  CHECK(((uintptr_t)s->p & 15) == 0);
  CHECK(m->lpVtbl->DidAlloc(m, s->p) == 1);
  CHECK(m->lpVtbl->GetSize(m, s->p) == s->n);
  check_bytes(s, s->n, s->n);
}

/* A new block must not overlap any other live block. */
static void check_disjoint(int k) {
  int j;
  uintptr_t a = (uintptr_t)slots[k].p, an = a + (slots[k].n ? slots[k].n : 1);
  for (j = 0; j < NSLOTS; j++) {
    uintptr_t b, bn;
    if (j == k || !slots[j].p) continue;
    b = (uintptr_t)slots[j].p;
    bn = b + (slots[j].n ? slots[j].n : 1);
    CHECK(an <= b || bn <= a);
  }
}

static void remember_stale(void *p) {
  stale[nstale++ % NSTALE] = p;
}

/* An address that is no live block's start: every entry point must treat
** it as not ours, and change nothing. */
static void check_not_ours(void *a, size_t n) {
  size_t before = live_blocks();
  if (a == NULL || is_live_start(a)) return;
  CHECK(m->lpVtbl->DidAlloc(m, a) == 0);
  CHECK(m->lpVtbl->GetSize(m, a) == (SIZE_T)-1);
  m->lpVtbl->Free(m, a);
  imalloc_CoTaskMemFree(a);
  CHECK(m->lpVtbl->Realloc(m, a, n) == NULL);
  CHECK(imalloc_CoTaskMemRealloc(a, n) == NULL);
  CHECK(live_blocks() == before);
}

static void free_slot(Slot *s, int how) {
  void *p = s->p;
  if (!p) return;
  check_slot(s);
  if (how) m->lpVtbl->Free(m, p); else imalloc_CoTaskMemFree(p);
  s->p = NULL;
  CHECK(m->lpVtbl->DidAlloc(m, p) == 0);
  CHECK(m->lpVtbl->GetSize(m, p) == (SIZE_T)-1);
  remember_stale(p);
}

static void alloc_slot(int k, size_t n, int how) {
  Slot *s = &slots[k];
  unsigned char *p;
  free_slot(s, 1);
  p = how ? m->lpVtbl->Alloc(m, n) : imalloc_CoTaskMemAlloc(n);
  if (n >= ((size_t)1 << 46)) CHECK(p == NULL);  /* the reference's row */
  if (n <= ((size_t)16 << 20)) CHECK(p != NULL);
  if (!p) return;
  s->p = p;
  s->n = n;
  s->seed = (uint8_t)(n * 7 + (uintptr_t)k);
  check_disjoint(k);
  CHECK(((uintptr_t)p & 15) == 0);
  CHECK(m->lpVtbl->GetSize(m, p) == n);
  fill(s);
}

static void realloc_slot(int k, size_t n, int how) {
  Slot *s = &slots[k];
  unsigned char *old = s->p, *q;
  size_t before = live_blocks(), keep = n < s->n ? n : s->n;
  if (old) check_slot(s);
  q = how ? m->lpVtbl->Realloc(m, old, n) : imalloc_CoTaskMemRealloc(old, n);
  if (!old) {  /* Realloc(NULL, n) is Alloc(n) */
    if (n <= ((size_t)16 << 20)) CHECK(q != NULL);
    if (!q) return;
    s->p = q;
    s->n = n;
    s->seed = (uint8_t)(n + 3);
    check_disjoint(k);
    fill(s);
    return;
  }
  if (n == 0) {  /* frees, returns NULL */
    CHECK(q == NULL);
    CHECK(m->lpVtbl->DidAlloc(m, old) == 0);
    CHECK(live_blocks() == before - 1);
    s->p = NULL;
    remember_stale(old);
    return;
  }
  if (!q) {  /* failed: the block is as it was */
    CHECK(n > ((size_t)16 << 20));
    check_slot(s);
    return;
  }
  CHECK(((uintptr_t)q & 15) == 0);
  if (q != old) {  /* moved: the old block is gone */
    CHECK(m->lpVtbl->DidAlloc(m, old) == 0);
    remember_stale(old);
  }
  s->p = q;
  CHECK(m->lpVtbl->GetSize(m, q) == n);
  check_bytes(s, s->n, keep);
  s->n = n;
  check_disjoint(k);
  fill(s);
  CHECK(live_blocks() == before);
}

/* ---- an identity IMallocSpy ------------------------------------------------ */

static long spy_refs;
static int spy_state;  /* 0 none, 1 registered, 2 revoke pending */

static ULONG STDMETHODCALLTYPE s_addref(IMallocSpy *s) {
  (void)s;
  return (ULONG)++spy_refs;
}
static ULONG STDMETHODCALLTYPE s_release(IMallocSpy *s) {
  (void)s;
  CHECK(spy_refs > 0);
  return (ULONG)--spy_refs;
}

static const IMallocSpyVtbl spy_vtbl = {
  fake_spy_qi, s_addref, s_release, pass_prealloc, pass_postalloc, pass_pre,
  pass_postfree, pass_prerealloc, pass_postrealloc, pass_pre,
  pass_postgetsize, pass_pre, pass_postdidalloc, pass_heapminimize,
  pass_heapminimize
};
static IMallocSpy the_spy = { &spy_vtbl };

static size_t spied_blocks(void) {
  struct imalloc_taskstats st;
  imalloc_taskalloc_stats(&st);
  return st.spied_blocks;
}

/* A pending revoke completes when the last spied block is freed. */
static void spy_settle(void) {
  if (spy_state == 2 && spied_blocks() == 0) spy_state = 0;
}

static void spy_op(int revoke) {
  HRESULT hr;
  spy_settle();
  if (!revoke) {
    hr = imalloc_CoRegisterMallocSpy(&the_spy);
    if (spy_state == 0) {
      CHECK(hr == S_OK);
      CHECK(spy_refs > 0);
      spy_state = 1;
    } else {
      CHECK(hr == CO_E_OBJISREG);
    }
    return;
  }
  hr = imalloc_CoRevokeMallocSpy();
  if (spy_state == 1) {
    if (spied_blocks() == 0) {
      CHECK(hr == S_OK);
      spy_state = 0;
      CHECK(spy_refs == 0);
    } else {
      CHECK(hr == E_ACCESSDENIED);
      spy_state = 2;
    }
  } else if (spy_state == 0) {
    CHECK(hr == CO_E_OBJNOTREG);
  }
  spy_settle();
}

/* ---- the program ----------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  if (imalloc_CoGetMalloc(1, &m) != S_OK || !m) abort();
  imalloc_taskalloc_stats(&base);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Input in = { data, size };
  int ops = 0, k;
  struct imalloc_taskstats end;
  nstale = 0;
  memset(stale, 0, sizeof stale);
  while (in.n > 0 && ops++ < MAX_OPS) {
    uint8_t op = u8(&in);
    int how = op & 1;
    Slot *s = &slots[u8(&in) % NSLOTS];
    switch ((op >> 1) % 12) {
      case 0: case 1:
        alloc_slot((int)(s - slots), take_size(&in), how);
        break;
      case 2:
        realloc_slot((int)(s - slots), take_size(&in), how);
        break;
      case 3:
        free_slot(s, how);
        break;
      case 4:  /* the block's own answers, and its interior's */
        check_slot(s);
        if (s->p && s->n > 1) {
          size_t off = 1 + (size_t)u16(&in) % (s->n - 1);
          CHECK(m->lpVtbl->DidAlloc(m, s->p + off) == 0);
          CHECK(m->lpVtbl->GetSize(m, s->p + off) == (SIZE_T)-1);
        }
        break;
      case 5:  /* an interior pointer changes nothing */
        if (s->p && s->n > 1) {
          check_not_ours(s->p + 1 + (size_t)u16(&in) % (s->n - 1),
                         take_size(&in));
          check_slot(s);
        }
        break;
      case 6:  /* a freed address */
        check_not_ours(stale[u8(&in) % NSTALE], take_size(&in));
        break;
      case 7:  /* any address at all: the allocator never reads it */
        check_not_ours((void *)(uintptr_t)u64(&in), take_size(&in));
        break;
      case 8:  /* near a block: neighbours, chunk headers, slot arrays */
        if (s->p) {
          int64_t d = (int64_t)(int16_t)u16(&in) * (1 + (u8(&in) % 64));
          check_not_ours(s->p + d, take_size(&in));
          check_slot(s);
        }
        break;
      case 9: {  /* NULL, and addresses of other kinds of memory */
        char local[16];
        void *heap = malloc(32);
        CHECK(m->lpVtbl->DidAlloc(m, NULL) == -1);
        CHECK(m->lpVtbl->GetSize(m, NULL) == (SIZE_T)-1);
        m->lpVtbl->Free(m, NULL);
        imalloc_CoTaskMemFree(NULL);
        check_not_ours(foreign_static + 16, 8);
        check_not_ours((void *)(uintptr_t)local, 8);
        check_not_ours(heap, 8);
        check_not_ours((void *)(uintptr_t)&m, 8);
        free(heap);
        break;
      }
      case 10:
        m->lpVtbl->HeapMinimize(m);
        for (k = 0; k < NSLOTS; k++) check_slot(&slots[k]);
        break;
      default:
        spy_op(how);
        break;
    }
  }
  for (k = 0; k < NSLOTS; k++) free_slot(&slots[k], k & 1);
  if (spy_state == 1) spy_op(1);
  spy_settle();
  CHECK(spy_state == 0);
  CHECK(spy_refs == 0);
  imalloc_taskalloc_stats(&end);
  CHECK(end.live_blocks == base.live_blocks);
  CHECK(end.live_bytes == base.live_bytes);
  CHECK(end.spied_blocks == 0);
  return 0;
}
