/*
** no_vm_readv.c: an LD_PRELOAD'ed process_vm_readv that always fails, as
** it does under a seccomp profile that forbids it (EPERM) or qemu-user
** (ENOSYS). The error is NO_VM_READV_ERRNO: "ENOSYS" or "EPERM".
**
** The first call in a process writes "answered ENOSYS" to the file named
** by NO_VM_READV_MARK (not to stderr, which a spec may capture), so that a
** run in which imalloc.wrap never reached the stub does not pass unseen.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>

__attribute__((visibility("default")))
ssize_t process_vm_readv(pid_t pid, const struct iovec *local,
                         unsigned long nlocal, const struct iovec *remote,
                         unsigned long nremote, unsigned long flags) {
  static int told;
  const char *name = getenv("NO_VM_READV_ERRNO");
  int err = name && strcmp(name, "EPERM") == 0 ? EPERM : ENOSYS;
  (void)pid, (void)local, (void)nlocal, (void)remote, (void)nremote,
      (void)flags;
  if (!told && getenv("NO_VM_READV_MARK")) {
    FILE *mark = fopen(getenv("NO_VM_READV_MARK"), "a");
    told = 1;
    if (mark) {
      fprintf(mark, "answered %s\n", err == EPERM ? "EPERM" : "ENOSYS");
      fclose(mark);
    }
  }
  errno = err;
  return -1;
}
