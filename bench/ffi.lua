--- The peer (docs/performance.md): LuaJIT's FFI calling the same POSIX task
-- allocator through its IMalloc vtable. LuaJIT 2.1, Lua 5.1 syntax.
--
--   luajit [-joff] bench/ffi.lua build/bench/libimalloc_bench.so PREFIX
--
-- Makes the same COM calls as the binding's checked methods (a pointer is
-- checked with DidAlloc before GetSize, Realloc and Free), so that the two
-- do the same work. Prints "PREFIX.op ns" lines, the median over BENCH_REPS
-- runs (default 9); under callgrind, dumps the counters of each loop
-- labelled "PREFIX.op/iterations" instead.
local ffi = require "ffi"

ffi.cdef [[
typedef struct IMalloc IMalloc;
typedef struct IMallocVtbl {
  int32_t (*QueryInterface)(IMalloc *This, const void *riid, void **out);
  uint32_t (*AddRef)(IMalloc *This);
  uint32_t (*Release)(IMalloc *This);
  void *(*Alloc)(IMalloc *This, size_t cb);
  void *(*Realloc)(IMalloc *This, void *pv, size_t cb);
  void (*Free)(IMalloc *This, void *pv);
  size_t (*GetSize)(IMalloc *This, void *pv);
  int (*DidAlloc)(IMalloc *This, void *pv);
  void (*HeapMinimize)(IMalloc *This);
} IMallocVtbl;
struct IMalloc { const IMallocVtbl *lpVtbl; };
int32_t imalloc_CoGetMalloc(uint32_t context, IMalloc **out);
uint64_t imalloc_bench_now_ns(void);
int imalloc_bench_valgrind(void);
void imalloc_bench_cg_zero(void);
void imalloc_bench_cg_dump(const char *label);
]]

local lib = ffi.load(assert(arg[1], "usage: ffi.lua LIBRARY PREFIX"))
local prefix = assert(arg[2], "usage: ffi.lua LIBRARY PREFIX")
local REPS = tonumber(os.getenv("BENCH_REPS")) or 9
local CG = lib.imalloc_bench_valgrind() ~= 0
local CG_N = 20000

local out = ffi.new("IMalloc *[1]")
assert(lib.imalloc_CoGetMalloc(1, out) == 0)
local m = out[0]
local block = m.lpVtbl.Alloc(m, 64)

local loops, order = {}, {}
local function loop(name, f)
  loops[name] = f
  order[#order + 1] = name
end

loop("pair", function(N)
  for _ = 1, N do
    local p = m.lpVtbl.Alloc(m, 64)
    if m.lpVtbl.DidAlloc(m, p) ~= 1 then error("not ours") end
    m.lpVtbl.Free(m, p)
  end
end)
loop("getsize", function(N)
  local p = block
  for _ = 1, N do
    if m.lpVtbl.DidAlloc(m, p) ~= 1 then error("not ours") end
    local _ = tonumber(m.lpVtbl.GetSize(m, p))
  end
end)
loop("didalloc", function(N)
  local p = block
  for _ = 1, N do local _ = m.lpVtbl.DidAlloc(m, p) end
end)
loop("realloc", function(N)
  for _ = 1, N do
    local p = m.lpVtbl.Alloc(m, 64)
    for k = 7, 12 do
      if m.lpVtbl.DidAlloc(m, p) ~= 1 then error("not ours") end
      p = m.lpVtbl.Realloc(m, p, 2 ^ k)
    end
    if m.lpVtbl.DidAlloc(m, p) ~= 1 then error("not ours") end
    m.lpVtbl.Free(m, p)
  end
end)

local function now() return tonumber(lib.imalloc_bench_now_ns()) end

local function calibrate(f)
  local N = 1000
  while true do
    local t0 = now()
    f(N)
    if now() - t0 >= 20000000 or N >= 2 ^ 30 then return N end
    N = N * 2
  end
end

local function median(t)
  table.sort(t)
  local k = #t
  if k % 2 == 1 then return t[(k + 1) / 2] end
  return (t[k / 2] + t[k / 2 + 1]) / 2
end

if CG then
  for _, name in ipairs(order) do
    local f = loops[name]
    f(CG_N / 10)
    collectgarbage("collect")
    lib.imalloc_bench_cg_zero()
    f(CG_N)
    lib.imalloc_bench_cg_dump(prefix .. "." .. name .. "/" .. CG_N)
  end
else
  local iters, ns = {}, {}
  for _, name in ipairs(order) do
    iters[name] = calibrate(loops[name])
    ns[name] = {}
  end
  for _ = 1, REPS do
    for _, name in ipairs(order) do
      local N = iters[name]
      local t0 = now()
      loops[name](N)
      ns[name][#ns[name] + 1] = (now() - t0) / N
    end
  end
  for _, name in ipairs(order) do
    local runs = {}
    for r, v in ipairs(ns[name]) do runs[r] = ("%.2f"):format(v) end
    print(("%s.%s@ %s"):format(prefix, name, table.concat(runs, " ")))
    print(("%s.%s %.2f"):format(prefix, name, median(ns[name])))
  end
end

m.lpVtbl.Free(m, block)
