--- The binding's benchmarks (docs/performance.md), Lua 5.4.
--
--   LUA_PATH="lua/?.lua;;" LUA_CPATH="build/?.so;;" lua5.4 bench/binding.lua
--
-- Prints "key ns" lines: the median over BENCH_REPS runs (default 9) of the
-- nanoseconds per iteration of each loop, and "key@ ns ns ..." lines with
-- every run's figure in order. Under callgrind it runs each loop
-- once instead, between a zero and a dump of the counters labelled
-- "key/iterations", and prints nothing.
--
-- Every loop is measured beside its floor, in the same process and the same
-- round of runs: the same Lua loop calling bench.noop's methods, which check
-- `self` as the binding does and then do nothing (or only the work the
-- method cannot avoid), plus the allocator's own operations from C through
-- the same IMalloc vtable (noop.c_*).
local imalloc = require "imalloc"
local noop = require "bench.noop"

local REPS = tonumber(os.getenv("BENCH_REPS")) or 9
local CG = noop.valgrind()
local CG_N = 20000          -- iterations of each loop under callgrind

local m = assert(imalloc.get())
local u = assert(imalloc.get()):setchecks(false)
local mp = m:pointer()
local n = noop.new(mp)
local now = noop.now

local block = assert(m:alloc(64))
local bytes = string.rep("x", 64)

-- name -> function(iterations)
local loops = {}
local order = {}
local function loop(name, f)
  loops[name] = f
  order[#order + 1] = name
end

-- alloc + free of 64 bytes
loop("lua.pair", function(N)
  local m = m
  for _ = 1, N do
    local p = m:alloc(64)
    m:free(p)
  end
end)
loop("lua.pair.unchecked", function(N)
  local m = u
  for _ = 1, N do
    local p = m:alloc(64)
    m:free(p)
  end
end)
loop("noop.pair", function(N)
  local m = n
  for _ = 1, N do
    local p = m:nop(64)
    m:nop(p)
  end
end)
loop("noop.pair.bare", function(N)
  local m = n
  for _ = 1, N do
    local p = m:bare(64)
    m:bare(p)
  end
end)
loop("c.pair", function(N) noop.c_pair(mp, N) end)

-- getsize and didalloc of a live block
loop("lua.getsize", function(N)
  local m, p = m, block
  for _ = 1, N do local _ = m:getsize(p) end
end)
loop("lua.didalloc", function(N)
  local m, p = m, block
  for _ = 1, N do local _ = m:didalloc(p) end
end)
loop("noop.one", function(N)
  local m, p = n, block
  for _ = 1, N do local _ = m:nop(p) end
end)
loop("noop.reg", function(N)
  local m, p = n, block
  for _ = 1, N do local _ = m:nopreg(p) end
end)
loop("c.getsize", function(N) noop.c_getsize(mp, N) end)
loop("c.didalloc", function(N) noop.c_didalloc(mp, N) end)

-- realloc growth: 64 bytes, then 128, 256, ... 4096, then free
loop("lua.realloc", function(N)
  local m = m
  for _ = 1, N do
    local p = m:alloc(64)
    for k = 7, 12 do p = m:realloc(p, 1 << k) end
    m:free(p)
  end
end)
loop("noop.realloc", function(N)
  local m = n
  for _ = 1, N do
    local p = m:nop(64)
    for k = 7, 12 do p = m:nop(p, 1 << k) end
    m:nop(p)
  end
end)
loop("c.realloc", function(N) noop.c_realloc(mp, N) end)

-- read and write of 64 bytes, once the binding has them
if m.read then
  loop("lua.read", function(N)
    local m, p = m, block
    for _ = 1, N do local _ = m:read(p, 64, 0) end
  end)
  loop("noop.read", function(N)
    local m, p = n, block
    for _ = 1, N do local _ = m:read(p, 64, 0) end
  end)
end
if m.write then
  loop("lua.write", function(N)
    local m, p, s = m, block, bytes
    for _ = 1, N do m:write(p, s, 0) end
  end)
  loop("noop.write", function(N)
    local m, p, s = n, block, bytes
    for _ = 1, N do m:write(p, s, 0) end
  end)
end

-- a buffer of 64 bytes created and closed, once the binding has them
if m.buffer then
  loop("lua.buffer", function(N)
    local m = m
    for _ = 1, N do
      local b <close> = m:buffer(64)
    end
  end)
  loop("noop.buffer", function(N)
    local m = n
    for _ = 1, N do
      local b <close> = m:buffer(64)
    end
  end)
end

-- b:read(64, 0) of a buffer made by a checking handle (which re-checks its
-- block with DidAlloc and GetSize) and by one with setchecks(false)
-- (made and freed by each run: a live buffer would slow m:free down in the
-- other loops, which then look its block up among the owned ones)
if m.buffer then
  loop("lua.bread", function(N)
    local b = m:buffer(64)
    for _ = 1, N do local _ = b:read(64, 0) end
    b:free()
  end)
  loop("lua.bread.unchecked", function(N)
    local b = u:buffer(64)
    for _ = 1, N do local _ = b:read(64, 0) end
    b:free()
  end)
end

-- Iterations for about 20 ms.
local function calibrate(f)
  local N = 1000
  while true do
    local t0 = now()
    f(N)
    if now() - t0 >= 20000000 or N >= 1 << 30 then return N end
    N = N * 2
  end
end

local function median(t)
  table.sort(t)
  local k = #t
  if k % 2 == 1 then return t[(k + 1) // 2] end
  return (t[k // 2] + t[k // 2 + 1]) / 2
end

if CG then
  for _, name in ipairs(order) do
    local f = loops[name]
    f(CG_N // 10)  -- warm
    collectgarbage("collect")
    noop.cg_zero()
    f(CG_N)
    noop.cg_dump(name .. "/" .. CG_N)
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
      local t = now() - t0
      table.insert(ns[name], t / N)
    end
  end
  -- Each run's figures too, in order ("key@ ..."), so that the report can
  -- take the ratio of a loop to its floor within each run.
  for _, name in ipairs(order) do
    local runs = {}
    for r, v in ipairs(ns[name]) do runs[r] = ("%.2f"):format(v) end
    print(("%s@ %s"):format(name, table.concat(runs, " ")))
    print(("%s %.2f"):format(name, median(ns[name])))
  end
  if not m.read then print("lua.read n/a (no m:read)") end
  if not m.write then print("lua.write n/a (no m:write)") end
  if not m.buffer then print("lua.buffer n/a (no m:buffer)") end
end

m:free(block)
