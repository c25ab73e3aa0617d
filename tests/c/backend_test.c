/*
** backend_test.c: the POSIX backend's contract (src/backend.h), called
** directly: imalloc.wrap's guard imalloc_backend_isinterface, for objects
** a script could hand it or fill by mistake or on purpose, and the
** allocator it hands out.
** With the argument "pipe" (backend_test_pipe: process_vm_readv fails, as
** under seccomp or qemu-user), the same through the pipe the backend falls
** back to, and the answer when no file descriptor is left for one;
** without it, that process_vm_readv needs no descriptor. This program
** defines dl_iterate_phdr (calling the C library's), to count the loaded
** objects a check visits (the vtable found good last is known after one)
** and to show made-up objects first; pthread_mutex_trylock, to make the
** cache of that vtable busy; open, to see the flags /proc/self/maps is
** opened with; and read (and close), to read it a byte at a time.
** BACKEND_VTBL and BACKEND_VTBL_GONE name two builds of backend_vtbl.c, a
** shared object that holds a vtable: the first stays loaded, the second is
** unloaded, to see that the memory it leaves is not taken for it.
** Prints "N passed, N failed"; exits non-zero on a failure.
*/
#define _GNU_SOURCE  /* MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, RTLD_NEXT */
#include "check.h"
#include "backend.h"
#include "taskalloc.h"
#include "interpose.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define FFI IMALLOC_WRAP_FFI

typedef void (*slot_fn)(void);

static void slot(void) {}

/* An object laid out as COM's: a pointer to a table of 16 entries. */
struct object {
  const slot_fn *vtbl;
};

/* The loaded objects the callbacks of dl_iterate_phdr were called for. */
static int visits;

typedef int (*phdr_callback)(struct dl_phdr_info *, size_t, void *);

struct counted {
  phdr_callback callback;
  void *data;
};

static int count_visit(struct dl_phdr_info *info, size_t size, void *data) {
  struct counted *c = (struct counted *)data;
  visits++;
  return c->callback(info, size, c->data);
}

/* A loaded object of the test's making, shown before the real ones when
** `faking`: what another C library (a shorter dl_phdr_info), or an object
** laid out otherwise, would show the check. */
static struct dl_phdr_info fake;
static size_t fake_size;
static ElfW(Phdr) fake_segs[2];
static int faking;

int dl_iterate_phdr(phdr_callback callback, void *data) {
  static int (*real)(phdr_callback, void *);
  struct counted c;
  int stop;
  INTERPOSE_NEXT(real, "dl_iterate_phdr");
  c.callback = callback;
  c.data = data;
  if (faking && (stop = count_visit(&fake, fake_size, &c)) != 0) return stop;
  return real(count_visit, &c);
}

/* The flags /proc/self/maps was last opened with, and its descriptor. */
static int maps_flags = -1, maps_fd = -1;

/* While set, a read of /proc/self/maps returns one byte at most: a short
** read, as any read may be. */
static int short_reads;

ssize_t read(int fd, void *buf, size_t n) {
  static ssize_t (*real)(int, void *, size_t);
  INTERPOSE_NEXT(real, "read");
  if (short_reads && fd == maps_fd && n > 1) n = 1;
  return real(fd, buf, n);
}

int close(int fd) {
  static int (*real)(int);
  INTERPOSE_NEXT(real, "close");
  if (fd == maps_fd) maps_fd = -1;
  return real(fd);
}

int open(const char *path, int flags, ...) {
  static int (*real)(const char *, int, ...);
  mode_t mode = 0;
  INTERPOSE_NEXT(real, "open");
  if (flags & O_CREAT) {
    va_list ap;
    va_start(ap, flags);
    mode = (mode_t)va_arg(ap, int);
    va_end(ap);
  }
  if (strcmp(path, "/proc/self/maps") != 0) return real(path, flags, mode);
  maps_flags = flags;
  return maps_fd = real(path, flags, mode);
}

/* While set, pthread_mutex_trylock answers EBUSY: the cache of the last
** vtable found good is busy (another thread's check holds it). */
static int busy;

int pthread_mutex_trylock(pthread_mutex_t *m) {
  static int (*real)(pthread_mutex_t *);
  INTERPOSE_NEXT(real, "pthread_mutex_trylock");
  return busy ? EBUSY : real(m);
}

static int read_subs(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  *(unsigned long long *)data = info->dlpi_subs;
  return 1;
}

/* The fake object: SIZE bytes of dl_phdr_info, its unload count SUBS, and
** N program headers, the first of TYPE and FLAGS over [lo, lo + len) (the
** second, past the table, a PT_LOAD over the same). */
static void fake_object(size_t size, unsigned long long subs, int n,
                        ElfW(Word) type, ElfW(Word) flags, const void *lo,
                        size_t len) {
  memset(&fake, 0, sizeof fake);
  memset(fake_segs, 0, sizeof fake_segs);
  fake.dlpi_name = "fake";
  fake.dlpi_phdr = fake_segs;
  fake.dlpi_phnum = (ElfW(Half))n;
  fake.dlpi_subs = subs;
  fake_segs[0].p_type = type;
  fake_segs[0].p_flags = flags;
  fake_segs[0].p_vaddr = (uintptr_t)lo;
  fake_segs[0].p_memsz = len;
  fake_segs[1] = fake_segs[0];
  fake_segs[1].p_type = PT_LOAD;
  fake_size = size;
  faking = 1;
}

static slot_fn code[16];  /* in this program's image, every slot code */

/* The vtable of the shared object BACKEND_VTBL, loaded for the whole run. */
static const slot_fn *shared_vtbl;

static const slot_fn *load_vtbl(const char *path, void **lib) {
  const slot_fn *(*get)(void);
  *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  CHECK(*lib != NULL);
  if (*lib == NULL) return NULL;
  *(void **)&get = dlsym(*lib, "backend_vtbl");
  CHECK(get != NULL);
  return get ? get() : NULL;
}

static void test_isinterface(void) {
  static slot_fn with_null[16], with_heap[16], with_data[16];
  struct object good = {code}, null_vtbl = {NULL}, holed = {with_null},
                heaped = {with_heap}, dataslots = {with_data},
                shared = {shared_vtbl};
  void *heap = malloc(64);
  struct object *gone;
  int i;
  for (i = 0; i < 16; i++) code[i] = with_null[i] = with_heap[i] = slot;
  for (i = 0; i < 16; i++) with_data[i] = (slot_fn)(uintptr_t)&code[i];
  with_null[15] = NULL;
  with_heap[0] = (slot_fn)(uintptr_t)heap;  /* data, not code */

  /* The numbers of slots a caller may ask about: 1 to 16. */
  CHECK(imalloc_backend_isinterface(&good, 0, 0) == 0);
  CHECK(imalloc_backend_isinterface(&good, -1, 0) == 0);
  CHECK(imalloc_backend_isinterface(&good, 17, 0) == 0);
  CHECK(imalloc_backend_isinterface(&good, 17, FFI) == 0);
  CHECK(imalloc_backend_isinterface(&good, 1, 0) == 1);
  CHECK(imalloc_backend_isinterface(&good, 16, 0) == 1);

  /* Every slot asked about is checked, the last one too (before the
  ** vtable passes once: then it is remembered as good). */
  CHECK(imalloc_backend_isinterface(&holed, 16, 0) == 0);
  CHECK(imalloc_backend_isinterface(&holed, 16, FFI) == 0);
  CHECK(imalloc_backend_isinterface(&holed, 15, 0) == 1);
  CHECK(imalloc_backend_isinterface(&heaped, 9, 0) == 0);
  CHECK(imalloc_backend_isinterface(&heaped, 9, FFI) == 0);
  CHECK(imalloc_backend_isinterface(&null_vtbl, 9, 0) == 0);
  CHECK(imalloc_backend_isinterface(&null_vtbl, 9, FFI) == 0);
  /* a vtable in the image whose slots point into the image, but at data */
  CHECK(imalloc_backend_isinterface(&dataslots, 9, 0) == 0);
  CHECK(imalloc_backend_isinterface(&dataslots, 9, FFI) == 0);

  /* Unreadable memory is refused without being touched. */
  gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
              -1, 0);
  CHECK(gone != MAP_FAILED);
  if (gone != MAP_FAILED) {
    gone->vtbl = code;
    CHECK(imalloc_backend_isinterface(gone, 9, 0) == 1);
    munmap(gone, 4096);
    CHECK(imalloc_backend_isinterface(gone, 9, 0) == 0);
    CHECK(imalloc_backend_isinterface(gone, 9, FFI) == 0);
  }
  /* a readable object whose vtable pointer leads nowhere */
  {
    struct object wild = {(const slot_fn *)(uintptr_t)16};
    CHECK(imalloc_backend_isinterface(&wild, 9, 0) == 0);
    CHECK(imalloc_backend_isinterface(&wild, 9, FFI) == 0);
  }
  /* After a good vtable was seen (and remembered), others are still
  ** checked in full. */
  CHECK(imalloc_backend_isinterface(&good, 9, 0) == 1);
  CHECK(imalloc_backend_isinterface(&heaped, 9, 0) == 0);
  CHECK(imalloc_backend_isinterface(&null_vtbl, 9, 0) == 0);
  CHECK(imalloc_backend_isinterface(&dataslots, 9, 0) == 0);
  CHECK(imalloc_backend_isinterface(&good, 9, 0) == 1);
  free(heap);

  /* The vtable last found good is known by its address and its slots:
  ** checked again after one loaded object (before the one that holds it),
  ** while another vtable's check visits them all. */
  CHECK(imalloc_backend_isinterface(&shared, 9, 0) == 1);
  visits = 0;
  CHECK(imalloc_backend_isinterface(&shared, 9, 0) == 1);
  CHECK(visits == 1);
  CHECK(imalloc_backend_isinterface(&good, 9, 0) == 1);  /* remembered now */
  visits = 0;
  CHECK(imalloc_backend_isinterface(&shared, 9, 0) == 1);
  CHECK(visits > 1);
  visits = 0;
  CHECK(imalloc_backend_isinterface(&shared, 9, 0) == 1);
  CHECK(visits == 1);
  /* the same address with other slots is not the vtable remembered */
  CHECK(imalloc_backend_isinterface(&holed, 9, 0) == 1);
  with_null[3] = (slot_fn)(uintptr_t)&code[0];
  CHECK(imalloc_backend_isinterface(&holed, 9, 0) == 0);
  with_null[3] = slot;
  CHECK(imalloc_backend_isinterface(&holed, 9, 0) == 1);
}

/* Objects laid out as loaded objects may be, made up and shown before the
** real ones; the vtables are in the heap, outside every real image. */
static void test_layouts(void) {
  uintptr_t *t = (uintptr_t *)calloc(8 * 16, sizeof *t);
  struct object o, good = {code}, shared = {shared_vtbl};
  unsigned long long subs = 0;
  size_t full = sizeof(struct dl_phdr_info), len = 9 * sizeof *t;
  size_t exact = offsetof(struct dl_phdr_info, dlpi_subs) + sizeof fake.dlpi_subs;
  int i;
  CHECK(t != NULL);
  if (t == NULL) return;
#define TABLE(k) (o.vtbl = (const slot_fn *)(void *)&t[16 * (k)], &o)
  /* each slot: the start of its own table, code where a fake segment says */
  for (i = 0; i < 8 * 16; i++) t[i] = (uintptr_t)&t[i - i % 16];
  dl_iterate_phdr(read_subs, &subs);

  /* An object whose first program header is the segment (no PT_PHDR
  ** before it): found there, and no other object is visited. */
  fake_object(full, subs, 1, PT_LOAD, PF_R | PF_X, &t[0], len);
  visits = 0;
  CHECK(imalloc_backend_isinterface(TABLE(0), 9, 0) == 1);
  CHECK(visits == 1);
  /* only the headers the object counts are read: not one past them */
  fake_object(full, subs, 1, PT_NOTE, PF_R | PF_X, &t[16], len);
  CHECK(imalloc_backend_isinterface(TABLE(1), 9, 0) == 0);
  /* a segment that is not loaded (PT_TLS: .tbss runs past the image) */
  for (i = 32; i < 48; i++) t[i] = (uintptr_t)slot;
  fake_object(full, subs, 1, PT_TLS, PF_R, &t[32], len);
  CHECK(imalloc_backend_isinterface(TABLE(2), 9, 0) == 0);
  /* a vtable that ends where its segment ends, and one that runs past */
  fake_object(full, subs, 1, PT_LOAD, PF_R | PF_X, &t[48], len);
  CHECK(imalloc_backend_isinterface(TABLE(3), 9, 0) == 1);
  fake_object(full, subs, 1, PT_LOAD, PF_R | PF_X, &t[63], len);
  CHECK(imalloc_backend_isinterface(TABLE(4), 9, 0) == 0);
  /* slots that point just past the end of the executable segment */
  for (i = 80; i < 96; i++) t[i] = (uintptr_t)&t[80] + len;
  fake_object(full, subs, 1, PT_LOAD, PF_R | PF_X, &t[80], len);
  CHECK(imalloc_backend_isinterface(TABLE(5), 9, 0) == 0);
  /* the vtable in one object, its code in a later one (this program) */
  t[96] = (uintptr_t)slot;
  fake_object(full, subs, 1, PT_LOAD, PF_R, &t[96], sizeof *t);
  CHECK(imalloc_backend_isinterface(TABLE(6), 1, 0) == 1);

  /* A C library whose dl_phdr_info ends with dlpi_subs knows the unload
  ** count: the vtable found good is remembered... */
  fake_object(exact, subs, 0, PT_NULL, 0, NULL, 0);
  CHECK(imalloc_backend_isinterface(&shared, 9, 0) == 1);
  visits = 0;
  CHECK(imalloc_backend_isinterface(&shared, 9, 0) == 1);
  CHECK(visits == 1);
  /* ... one whose ends before it does not: nothing is remembered (here
  ** the count it would have read, and the one a later check reads, is 0).
  ** The first object's info is the one read: the made-up objects before
  ** the real ones are shorter here, and count otherwise below. */
  CHECK(imalloc_backend_isinterface(&good, 9, 0) == 1);  /* remembered */
  fake_object(exact - sizeof fake.dlpi_subs, 0, 0, PT_NULL, 0, NULL, 0);
  CHECK(imalloc_backend_isinterface(&shared, 9, 0) == 1);
  fake_object(full, 0, 0, PT_NULL, 0, NULL, 0);
  visits = 0;
  CHECK(imalloc_backend_isinterface(&shared, 9, 0) == 1);
  CHECK(visits > 2);  /* neither the made-up object nor this program */
  faking = 0;
#undef TABLE

  /* A busy cache is neither read... */
  CHECK(imalloc_backend_isinterface(&shared, 9, 0) == 1);
  visits = 0;
  CHECK(imalloc_backend_isinterface(&shared, 9, 0) == 1);
  CHECK(visits == 1);
  busy = 1;
  visits = 0;
  CHECK(imalloc_backend_isinterface(&shared, 9, 0) == 1);
  CHECK(visits > 1);
  /* ... nor written */
  CHECK(imalloc_backend_isinterface(&good, 9, 0) == 1);
  busy = 0;
  visits = 0;
  CHECK(imalloc_backend_isinterface(&shared, 9, 0) == 1);
  CHECK(visits == 1);
  free(t);
}

/* A vtable outside every image (in the heap), as an FFI builds one: the
** default refuses it; FFI takes it when each slot points into executable
** memory, an image's or an anonymous mapping's (the FFI's callbacks). */
static void test_ffi(void) {
  slot_fn *vtbl = (slot_fn *)malloc(16 * sizeof *vtbl);
  struct object heapvtbl = {vtbl};
  long page = sysconf(_SC_PAGESIZE);
  char *exec = mmap(NULL, (size_t)page, PROT_READ | PROT_EXEC,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *data = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int i;
  CHECK(vtbl != NULL && exec != MAP_FAILED && data != MAP_FAILED);
  if (vtbl == NULL || exec == MAP_FAILED || data == MAP_FAILED) return;
  for (i = 0; i < 16; i++) vtbl[i] = slot;
  CHECK(imalloc_backend_isinterface(&heapvtbl, 9, 0) == 0);
  CHECK(imalloc_backend_isinterface(&heapvtbl, 9, FFI) == 1);
  /* the same, with the slots in an executable mapping of no image */
  for (i = 0; i < 16; i++) vtbl[i] = (slot_fn)(uintptr_t)(exec + 16 * i);
  CHECK(imalloc_backend_isinterface(&heapvtbl, 9, 0) == 0);
  CHECK(imalloc_backend_isinterface(&heapvtbl, 9, FFI) == 1);
  CHECK(imalloc_backend_isinterface(&heapvtbl, 16, FFI) == 1);
  /* /proc/self/maps opened as descriptor 0 (standard input closed), and
  ** closed again */
  {
    int saved = fcntl(0, F_DUPFD_CLOEXEC, 3);
    close(0);
    CHECK(imalloc_backend_isinterface(&heapvtbl, 9, FFI) == 1);
    CHECK(fcntl(0, F_GETFD) == -1);
    /* never inherited by a program another thread executes meanwhile */
    CHECK(maps_flags != -1 && (maps_flags & O_CLOEXEC) != 0);
    /* read a byte at a time */
    short_reads = 1;
    CHECK(imalloc_backend_isinterface(&heapvtbl, 9, FFI) == 1);
    short_reads = 0;
    if (saved >= 0) {
      dup2(saved, 0);
      close(saved);
    }
  }
  /* mixed: image code and the mapping's */
  vtbl[4] = slot;
  CHECK(imalloc_backend_isinterface(&heapvtbl, 9, FFI) == 1);
  /* only the first slot outside every image */
  for (i = 1; i < 16; i++) vtbl[i] = slot;
  CHECK(imalloc_backend_isinterface(&heapvtbl, 9, 0) == 0);
  CHECK(imalloc_backend_isinterface(&heapvtbl, 9, FFI) == 1);
  for (i = 0; i < 16; i++) vtbl[i] = (slot_fn)(uintptr_t)(exec + 16 * i);
  /* one slot into readable, writable memory (the last one asked about) */
  vtbl[8] = (slot_fn)(uintptr_t)(data + 8);
  CHECK(imalloc_backend_isinterface(&heapvtbl, 9, FFI) == 0);
  CHECK(imalloc_backend_isinterface(&heapvtbl, 8, FFI) == 1);
  /* one past the executable page, into no mapping of its own */
  vtbl[8] = (slot_fn)(uintptr_t)(exec + page);
  if (exec + page != data)  /* the next page may happen to be `data` */
    CHECK(imalloc_backend_isinterface(&heapvtbl, 9, FFI) == 0);
  /* a slot into a page that is gone */
  vtbl[8] = (slot_fn)(uintptr_t)(exec + 16);
  CHECK(imalloc_backend_isinterface(&heapvtbl, 9, FFI) == 1);
  munmap(exec, (size_t)page);
  CHECK(imalloc_backend_isinterface(&heapvtbl, 9, FFI) == 0);
  munmap(data, (size_t)page);
  free(vtbl);
}

/* Sixteen executable mappings, each its own line of /proc/self/maps
** (between them, pages of another protection keep them from merging):
** lines enough for several reads of the buffer, and every slot's found. */
static void test_ffi_many_lines(void) {
  long page = sysconf(_SC_PAGESIZE);
  char *area = mmap(NULL, (size_t)page * 32, PROT_READ,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  slot_fn vtbl[16];
  struct object o = {vtbl};
  int i;
  CHECK(area != MAP_FAILED);
  if (area == MAP_FAILED) return;
  for (i = 0; i < 16; i++) {
    char *at = area + (size_t)page * (size_t)(2 * i);
    CHECK(mprotect(at, (size_t)page, PROT_READ | PROT_EXEC) == 0);
    vtbl[i] = (slot_fn)(uintptr_t)(at + 8 * i);
  }
  CHECK(imalloc_backend_isinterface(&o, 16, 0) == 0);
  CHECK(imalloc_backend_isinterface(&o, 16, FFI) == 1);
  /* the last one (by address: listed last) not executable any more */
  CHECK(mprotect(area + (size_t)page * 30, (size_t)page, PROT_READ) == 0);
  CHECK(imalloc_backend_isinterface(&o, 16, FFI) == 0);
  CHECK(imalloc_backend_isinterface(&o, 15, FFI) == 1);
  munmap(area, (size_t)page * 32);
}

/* The column of /proc/self/maps that a file's path starts at (that of the
** first line with a path). */
static size_t maps_path_column(void) {
  static char buf[16384];
  ssize_t got;
  const char *line = buf, *nl, *slash;
  int fd = open("/proc/self/maps", O_RDONLY);
  CHECK(fd >= 0);
  if (fd < 0) return 0;
  got = read(fd, buf, sizeof buf - 1);
  close(fd);
  CHECK(got > 0);
  if (got <= 0) return 0;
  buf[got] = '\0';
  while ((nl = strchr(line, '\n')) != NULL) {
    slash = memchr(line, '/', (size_t)(nl - line));
    if (slash != NULL) return (size_t)(slash - line);
    line = nl + 1;
  }
  CHECK(!"a line with a path");
  return 0;
}

/* One more directory, PATH/ then N times FILL then TAIL. */
static void path_add(char *path, int fill, size_t n, const char *tail) {
  size_t len = strlen(path);
  path[len] = '/';
  memset(path + len + 1, fill, n);
  strcpy(path + len + 1 + n, tail);
  CHECK(mkdir(path, 0700) == 0);
}

/* Where a name would read as a line of its own: an executable page at
** 0x20000, where nothing is mapped. */
#define POSING "20000-21000 r-xp"
#define POSED 0x20000

/* An executable mapping of a file whose path is longer than twice the
** buffer that /proc/self/maps is read with: its line is read in three
** parts, of which only the head is a line's (the rest reads as a line of
** an executable page at POSED), and the mapping listed after it is still
** found. */
static void test_ffi_long_line(void) {
  char path[4096], dir[64];
  size_t col = maps_path_column(), at, base;
  static const size_t parts[2] = {1024, 2048};  /* where parts begin */
  int fd, depth = 0;
  long page = sysconf(_SC_PAGESIZE);
  char *area, *file = MAP_FAILED, *exec = MAP_FAILED;
  slot_fn vtbl[9];
  struct object o = {vtbl};
  int i;
  strcpy(dir, "backend_test_XXXXXX");
  CHECK(mkdtemp(dir) != NULL);
  CHECK(getcwd(path, 1024) != NULL);
  strcat(path, "/");
  base = strlen(path);
  strcat(path, dir);
  for (i = 0; i < 2; i++) {
    /* names of d, then one of zeros over the start of the part, then
    ** POSING: each part starts in the zeros, whatever of them it gets */
    while (col + strlen(path) + 1 + 255 < parts[i] - 100) {
      path_add(path, 'd', 200, "");
      depth++;
    }
    at = col + strlen(path) + 1;
    if (at + 1 < parts[i] - 100) {
      path_add(path, 'd', parts[i] - 100 - at - 1, "");
      depth++;
    }
    at = col + strlen(path) + 1;
    CHECK(at < parts[i] && at + 200 > parts[i]);
    path_add(path, '0', 200, POSING);
    depth++;
  }
  strcat(path, "/code");
  fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0);
  CHECK(ftruncate(fd, page) == 0);
  /* the file's page, then the anonymous one: listed in that order */
  area = mmap(NULL, (size_t)page * 2, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
              -1, 0);
  CHECK(area != MAP_FAILED);
  if (area != MAP_FAILED) {
    file = mmap(area, (size_t)page, PROT_READ | PROT_EXEC,
                MAP_PRIVATE | MAP_FIXED, fd, 0);
    exec = mmap(area + page, (size_t)page, PROT_READ | PROT_EXEC,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  }
  CHECK(file == area && exec == area + page);
  /* nothing is mapped at POSED */
  CHECK(msync((void *)(uintptr_t)POSED, (size_t)page, MS_ASYNC) == -1 &&
        errno == ENOMEM);
  if (file == area && exec == area + page) {
    for (i = 0; i < 9; i++)
      vtbl[i] = (slot_fn)(uintptr_t)((i % 2 ? file : exec) + 8 * i);
    CHECK(imalloc_backend_isinterface(&o, 9, 0) == 0);
    CHECK(imalloc_backend_isinterface(&o, 9, FFI) == 1);
    vtbl[3] = (slot_fn)(uintptr_t)(POSED + 8);
    CHECK(imalloc_backend_isinterface(&o, 9, FFI) == 0);
    vtbl[3] = (slot_fn)(uintptr_t)(file + 8);
    munmap(file, (size_t)page);
    CHECK(imalloc_backend_isinterface(&o, 9, FFI) == 0);
    munmap(exec, (size_t)page);
  }
  if (fd >= 0) close(fd);
  /* remove the file and the directories, deepest first */
  unlink(path);
  for (i = 0; i <= depth; i++) {
    *strrchr(path, '/') = '\0';
    CHECK(rmdir(path) == 0);
  }
  CHECK(strcmp(path + base, dir) == 0);
}

/* An executable page below every other mapping: the first line of
** /proc/self/maps, which is read like the others. */
static void test_ffi_first_line(void) {
  long page = sysconf(_SC_PAGESIZE);
  char *low = mmap((void *)(uintptr_t)0x10000, (size_t)page,
                   PROT_READ | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  slot_fn vtbl[9];
  struct object o = {vtbl};
  char first[16] = "";
  int fd = open("/proc/self/maps", O_RDONLY), i;
  CHECK(low == (char *)(uintptr_t)0x10000);
  CHECK(fd >= 0 && read(fd, first, 9) == 9);
  CHECK(strcmp(first, "00010000-") == 0);
  if (fd >= 0) close(fd);
  if (low != (char *)(uintptr_t)0x10000) return;
  for (i = 0; i < 9; i++) vtbl[i] = (slot_fn)(uintptr_t)(low + 8 * i);
  CHECK(imalloc_backend_isinterface(&o, 9, FFI) == 1);
  munmap(low, (size_t)page);
  CHECK(imalloc_backend_isinterface(&o, 9, FFI) == 0);
}

/* The vtable remembered as good belonged to a shared object that was then
** unloaded, and its addresses mapped again as data holding the very same
** slot values (which a script can write into a block at that address): it
** is no longer good. */
static void test_unloaded(void) {
  void *lib;
  const slot_fn *vtbl = load_vtbl(BACKEND_VTBL_GONE, &lib);
  slot_fn copy[16];
  struct object o = {vtbl}, shared = {shared_vtbl};
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), first, last;
  void *again;
  if (vtbl == NULL) return;
  memcpy(copy, vtbl, sizeof copy);
  CHECK(imalloc_backend_isinterface(&o, 9, 0) == 1);
  visits = 0;
  CHECK(imalloc_backend_isinterface(&o, 9, 0) == 1);
  CHECK(visits == 1);  /* remembered */
  CHECK(dlclose(lib) == 0);
  first = (uintptr_t)vtbl & ~(page - 1);
  last = ((uintptr_t)vtbl + sizeof copy - 1) & ~(page - 1);
  again = mmap((void *)first, last - first + page, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK(again == (void *)first);
  if (again != (void *)first) return;
  memcpy((void *)(uintptr_t)vtbl, copy, sizeof copy);
  visits = 0;
  CHECK(imalloc_backend_isinterface(&o, 9, 0) == 0);
  CHECK(visits > 1);  /* checked in full */
  CHECK(imalloc_backend_isinterface(&o, 9, FFI) == 0);  /* the code is gone */
  munmap(again, last - first + page);

  /* Any unload makes the remembered vtable checked again, once. */
  CHECK(imalloc_backend_isinterface(&shared, 9, 0) == 1);
  vtbl = load_vtbl(BACKEND_VTBL_GONE, &lib);
  CHECK(lib != NULL && dlclose(lib) == 0);
  visits = 0;
  CHECK(imalloc_backend_isinterface(&shared, 9, 0) == 1);
  CHECK(visits > 1);
  visits = 0;
  CHECK(imalloc_backend_isinterface(&shared, 9, 0) == 1);
  CHECK(visits == 1);
}

static void test_allocator(void) {
  IMalloc *m = NULL;
  CHECK(imalloc_backend_getmalloc(1, &m) == S_OK && m != NULL);
  CHECK(imalloc_backend_isinterface(m, 9, 0) == 1);
  CHECK(imalloc_backend_getmalloc(0, &m) == E_INVALIDARG && m == NULL);
  CHECK(strcmp(imalloc_backend_name, "builtin") == 0);
  CHECK(imalloc_backend_revokespy() == CO_E_OBJNOTREG);
}

/* No descriptor left for the pipe: memory that cannot be read is not an
** interface. Since process_vm_readv needs no descriptor, this also shows
** that the pipe is the way memory is read here. */
static void test_no_pipe(void) {
  struct object good = {code};
  struct rlimit old, none;
  CHECK(imalloc_backend_isinterface(&good, 9, 0) == 1);
  CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
  none = old;
  none.rlim_cur = 0;
  CHECK(setrlimit(RLIMIT_NOFILE, &none) == 0);
  CHECK(imalloc_backend_isinterface(&good, 9, 0) == 0);
  CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
  CHECK(imalloc_backend_isinterface(&good, 9, 0) == 1);
}

/* With process_vm_readv, no descriptor is needed: wrap works in a process
** that has none left, and still refuses what cannot be read. An FFI's
** object needs one, for /proc/self/maps: without it, it is refused. */
static void test_no_descriptor_needed(void) {
  struct object good = {code};
  slot_fn *vtbl = (slot_fn *)malloc(16 * sizeof *vtbl);
  struct object heapvtbl = {vtbl};
  char *exec = mmap(NULL, 4096, PROT_READ | PROT_EXEC,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  struct rlimit old, none;
  int i;
  CHECK(vtbl != NULL && exec != MAP_FAILED);
  if (vtbl == NULL || exec == MAP_FAILED) return;
  /* code of no image: only /proc/self/maps knows it is executable */
  for (i = 0; i < 16; i++) vtbl[i] = (slot_fn)(uintptr_t)(exec + i);
  CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
  none = old;
  none.rlim_cur = 0;
  CHECK(setrlimit(RLIMIT_NOFILE, &none) == 0);
  CHECK(imalloc_backend_isinterface(&good, 9, 0) == 1);
  CHECK(imalloc_backend_isinterface((void *)(uintptr_t)16, 9, 0) == 0);
  CHECK(imalloc_backend_isinterface(&good, 9, 0) == 1);
  CHECK(imalloc_backend_isinterface(&heapvtbl, 9, FFI) == 0);
  CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
  CHECK(imalloc_backend_isinterface(&heapvtbl, 9, FFI) == 1);
  munmap(exec, 4096);
  free(vtbl);
}

int main(int argc, char **argv) {
  void *lib;
  shared_vtbl = load_vtbl(BACKEND_VTBL, &lib);
  if (shared_vtbl == NULL) return check_report();
  test_isinterface();
  test_layouts();
  test_ffi();
  test_ffi_many_lines();
  test_ffi_long_line();
  test_ffi_first_line();
  test_unloaded();
  test_allocator();
  if (argc > 1 && strcmp(argv[1], "pipe") == 0)
    test_no_pipe();
  else
    test_no_descriptor_needed();
  return check_report();
}
