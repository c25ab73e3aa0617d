# The sources of the C module imalloc.core, named once for every CMake
# project that compiles them (the top level, tests/fuzz). Paths relative to
# src/. rockspec/imalloc-scm-1.rockspec lists the same files; spec 00 checks
# that it does.
set(IMALLOC_BINDING_SOURCES module.c binding.c handle.c bytes.c buffer.c freed.c spy.c spy_books.c)
# The built-in task allocator, one file per subsystem (taskalloc/internal.h).
set(IMALLOC_TASKALLOC_SOURCES taskalloc/os.c taskalloc/radix.c
    taskalloc/chunk.c taskalloc/tcache.c taskalloc/large.c taskalloc/alloc.c
    taskalloc/cospy.c taskalloc/init.c)
set(IMALLOC_POSIX_SOURCES backend_posix.c ${IMALLOC_TASKALLOC_SOURCES})
set(IMALLOC_WIN32_SOURCES backend_win32.c)
