/*
** backend_posix.c: the built-in task allocator (src/taskalloc/).
**
** The allocator's state, thread caches and their destructors live in this
** shared object, and blocks it hands out may outlive every Lua state. Lua
** unloads C modules in lua_close, so the module pins itself in memory the
** first time it is asked for the allocator.
*/
#define _GNU_SOURCE  /* dladdr, RTLD_NODELETE, dl_iterate_phdr */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/uio.h>
#endif

#include "backend.h"
#include "freed.h"
#include "taskalloc.h"

const char imalloc_backend_name[] = "builtin";

static pthread_once_t pin_once = PTHREAD_ONCE_INIT;

static void pin_module(void) {
  Dl_info info;
  /* Any address inside this object names it; a data one keeps -pedantic
  ** quiet about function-to-object pointer casts. */
  if (dladdr(imalloc_backend_name, &info) && info.dli_fname) {
    /* A second reference with RTLD_NODELETE: dlclose never unmaps us.
    ** Deliberately not closed. */
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  }
}

#if IMALLOC_HEAP_MAY_DELAY_FREES
/* Only in the test build whose allocator delays frees (platform.h,
** tests/delayfree/delay.c): whether the heap delays frees (freed.c), asked
** once, before any spy of this module can be registered (spy.c asks for
** the allocator first), as backend_win32.c asks ole32's. */
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe_heap(void) {
  IMalloc *m;
  (void)imalloc_CoGetMalloc(MEMCTX_TASK, &m);  /* S_OK, the singleton */
  imalloc_freed_probe(m);
}
#define PROBE_HEAP() pthread_once(&probe_once, probe_heap)
#else
#define PROBE_HEAP() ((void)0)
#endif

HRESULT imalloc_backend_getmalloc(DWORD context, IMalloc **out) {
  pthread_once(&pin_once, pin_module);
  PROBE_HEAP();
  return imalloc_CoGetMalloc(context, out);
}

HRESULT imalloc_backend_registerspy(IMallocSpy *spy) {
  pthread_once(&pin_once, pin_module);  /* the spy's code must stay too */
  return imalloc_CoRegisterMallocSpy(spy);
}

HRESULT imalloc_backend_revokespy(void) {
  return imalloc_CoRevokeMallocSpy();
}

/* Copies n bytes from `addr` without faulting, through a pipe: write()
** reads the bytes in the kernel, which answers EFAULT for an unmapped
** address instead of faulting. */
static int readmem_pipe(const void *addr, void *out, size_t n) {
  int fds[2], ok;
  if (pipe(fds) != 0) return 0;
  ok = write(fds[1], addr, n) == (ssize_t)n && read(fds[0], out, n) == (ssize_t)n;
  close(fds[0]);
  close(fds[1]);
  return ok;
}

#ifdef __linux__
/* Set once process_vm_readv is found unavailable: forbidden by a seccomp
** profile (EPERM), or not implemented, as under qemu-user (ENOSYS). */
static atomic_int no_vm_readv;

/* The same with one system call, where the kernel allows it. */
static int readmem(const void *addr, void *out, size_t n) {
  struct iovec local, remote;
  ssize_t got;
  if (atomic_load_explicit(&no_vm_readv, memory_order_relaxed))
    return readmem_pipe(addr, out, n);
  local.iov_base = out;
  local.iov_len = n;
  remote.iov_base = (void *)(uintptr_t)addr;
  remote.iov_len = n;
  got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  if (got < 0 && (errno == ENOSYS || errno == EPERM)) {
    atomic_store_explicit(&no_vm_readv, 1, memory_order_relaxed);
    return readmem_pipe(addr, out, n);
  }
  return got == (ssize_t)n;
}
#else
#define readmem readmem_pipe
#endif

/*
** {======================================================
** imalloc.wrap's guard
** =======================================================
*/

#define MAX_SLOTS 16

/* What one call asks of the loaded objects, and what they answered. */
typedef struct Query {
  uintptr_t vtbl;      /* the vtable: [vtbl, vtbl + len) */
  size_t len;
  const uintptr_t *slots;
  int nslots;
  unsigned need;       /* slots not yet found in a PF_X segment, a bit each */
  int vtbl_in_image;   /* the vtable lies inside one PT_LOAD segment */
  int visited;         /* the first object was seen */
  int known_subs;      /* the C library counts unloads (dlpi_subs) */
  unsigned long long subs;
  int cached;          /* the vtable and its slots are the cached ones ... */
  unsigned long long cached_subs;  /* ... found good when subs was this */
  int hit;             /* ... and nothing was unloaded since */
} Query;

/* The last vtable found good, so that wrapping the same kind of object
** again (the common case) visits one loaded object instead of all. An
** entry is good only while no object has been unloaded since it was
** checked: dlclose can unmap the image that held the vtable or its code,
** and the addresses can then be mapped again, for a heap block a script
** fills. So an entry holds the unload count of its check (dlpi_subs, which
** the loader bumps on every unload), and its slots, compared on use. Taken
** with trylock only: a busy cache is skipped, never waited for. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  uintptr_t vtbl;  /* 0: empty */
  int nslots;
  uintptr_t slots[MAX_SLOTS];
  unsigned long long subs;
} cache;

static void cache_lookup(Query *q) {
  if (pthread_mutex_trylock(&cache_lock) != 0) return;
  if (cache.vtbl == q->vtbl && q->nslots <= cache.nslots &&
      memcmp(cache.slots, q->slots, (size_t)q->nslots * sizeof q->slots[0]) == 0) {
    q->cached = 1;
    q->cached_subs = cache.subs;
  }
  pthread_mutex_unlock(&cache_lock);
}

static void cache_store(const Query *q) {
  if (!q->known_subs || pthread_mutex_trylock(&cache_lock) != 0) return;
  cache.vtbl = q->vtbl;
  cache.nslots = q->nslots;
  memcpy(cache.slots, q->slots, (size_t)q->nslots * sizeof q->slots[0]);
  cache.subs = q->subs;
  pthread_mutex_unlock(&cache_lock);
}

/* dl_iterate_phdr's callback, for each loaded object (the program, every
** shared object, the vDSO), under the loader's lock: where its segments
** are in memory. Returns nonzero (stop) once everything is found. */
static int visit(struct dl_phdr_info *info, size_t size, void *data) {
  Query *q = (Query *)data;
  int i, j;
  if (!q->visited) {
    q->visited = 1;
    /* the counters are the same in every call: read them once */
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
      q->known_subs = 1;
      q->subs = info->dlpi_subs;
      if (q->cached && q->cached_subs == q->subs) {
        q->hit = 1;
        return 1;
      }
    }
  }
  for (i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo, sz;
    if (ph->p_type != PT_LOAD) continue;
    lo = (uintptr_t)info->dlpi_addr + (uintptr_t)ph->p_vaddr;
    sz = (uintptr_t)ph->p_memsz;
    /* unsigned: an address below lo wraps around to a large offset */
    if (q->vtbl - lo < sz && sz - (q->vtbl - lo) >= q->len) q->vtbl_in_image = 1;
    if (ph->p_flags & PF_X) {
      for (j = 0; j < q->nslots; j++)
        if (q->slots[j] - lo < sz) q->need &= ~(1u << j);
    }
  }
  return q->vtbl_in_image && q->need == 0;
}

#ifdef __linux__
/* One line of /proc/self/maps, "start-end perms ...", from `s` to `end`:
** clears the bits of `need` whose slot lies in an executable mapping. */
static unsigned maps_line(const char *s, const char *end, const uintptr_t *slots,
                          int nslots, unsigned need) {
  uintptr_t lo = 0, hi = 0, *v = &lo;
  int j;
  for (; s < end; s++) {
    int d = *s >= '0' && *s <= '9' ? *s - '0'
          : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : -1;
    if (d >= 0) {
      *v = (*v << 4) | (uintptr_t)d;
    } else if (*s == '-' && v == &lo) {
      v = &hi;
    } else if (*s == ' ' && v == &hi) {
      break;
    } else {
      return need;  /* not a line of the form we know */
    }
  }
  /* the permissions: "rwxp", a '-' for each one missing */
  if (end - s < 4 || s[3] != 'x') return need;
  for (j = 0; j < nslots; j++)
    if (slots[j] >= lo && slots[j] < hi) need &= ~(1u << j);
  return need;
}

/* The slots of `need` that lie in no executable mapping, as the kernel
** lists the mappings in /proc/self/maps: read with a buffer on the stack
** (nothing allocated), and all of `need` when the file cannot be read. */
static unsigned maps_executable(const uintptr_t *slots, int nslots,
                                unsigned need) {
  char buf[1024];
  size_t have = 0;
  int skipping = 0;  /* in the tail of a line longer than buf */
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return need;
  while (need != 0) {
    /* (only a fatal signal interrupts a read of it: no EINTR to retry) */
    ssize_t got = read(fd, buf + have, sizeof buf - have);
    const char *line = buf, *end, *nl;
    if (got <= 0) break;
    end = buf + have + (size_t)got;
    while ((nl = memchr(line, '\n', (size_t)(end - line))) != NULL) {
      if (!skipping) need = maps_line(line, nl, slots, nslots, need);
      skipping = 0;
      line = nl + 1;
    }
    have = (size_t)(end - line);
    if (have == sizeof buf) {
      /* a line longer than buf (a long path): its head says enough */
      if (!skipping) need = maps_line(buf, end, slots, nslots, need);
      skipping = 1;
      have = 0;
    } else {
      memmove(buf, line, have);
    }
  }
  close(fd);
  return need;
}
#else
/* No /proc/self/maps: only the code of loaded images is known. */
static unsigned maps_executable(const uintptr_t *slots, int nslots,
                                unsigned need) {
  (void)slots;
  (void)nslots;
  return need;
}
#endif

int imalloc_backend_isinterface(const void *p, int nslots, int flags) {
  /* NULL, not garbage, where a read fails */
  const void *vtbl = NULL;
  uintptr_t slots[MAX_SLOTS] = {0};
  Query q;
  if (nslots < 1 || nslots > MAX_SLOTS) return 0;
  if (!readmem(p, &vtbl, sizeof vtbl) || vtbl == NULL) return 0;
  if (!readmem(vtbl, slots, (size_t)nslots * sizeof slots[0])) return 0;
  memset(&q, 0, sizeof q);
  q.vtbl = (uintptr_t)vtbl;
  q.len = (size_t)nslots * sizeof slots[0];
  q.slots = slots;
  q.nslots = nslots;
  q.need = (1u << nslots) - 1;
  cache_lookup(&q);
  dl_iterate_phdr(visit, &q);
  if (q.hit) return 1;
  if (q.vtbl_in_image && q.need == 0) {
    cache_store(&q);
    return 1;
  }
  /* An FFI's object: any readable vtable (it was read above), and slots
  ** into executable memory, loaded images' or not. */
  return (flags & IMALLOC_WRAP_FFI) &&
         maps_executable(slots, nslots, q.need) == 0;
}

/* }====================================================== */
