/*
** ffi.c: bench.h's clock and callgrind requests as exported functions, for
** the LuaJIT driver (bench/ffi.lua), which reaches them through its FFI.
*/
#include "com_abi.h"
#include "bench.h"

IMALLOC_EXPORT uint64_t imalloc_bench_now_ns(void);
IMALLOC_EXPORT int imalloc_bench_valgrind(void);
IMALLOC_EXPORT void imalloc_bench_cg_zero(void);
IMALLOC_EXPORT void imalloc_bench_cg_dump(const char *label);

uint64_t imalloc_bench_now_ns(void) { return bench_now_ns(); }
int imalloc_bench_valgrind(void) { return bench_under_valgrind(); }
void imalloc_bench_cg_zero(void) { bench_cg_zero(); }
void imalloc_bench_cg_dump(const char *label) { bench_cg_dump(label); }
