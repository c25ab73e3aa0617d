-- bench/heapvalidate.lua: how the cost of a checked m:free grows with the
-- number of live blocks, on the backend at hand (meant for Windows, where the
-- check is ole32's DidAlloc, a HeapValidate of the process heap; run it under
-- Wine with bench/heapvalidate). Prints one Markdown row per heap size:
-- nanoseconds per alloc+free pair with checks on and off (the median of
-- several rounds), and their difference, the cost of the check.
-- Timings (os.clock), so a benchmark, never a test.
--   lua bench/heapvalidate.lua [max live blocks, default 1e6]
local imalloc = require "imalloc"

local max_live = math.tointeger(tonumber(arg[1] or "1e6"))
local m = assert(imalloc.get())
local PAIRS, ROUNDS, SIZE = 200000, 5, 64

-- The median of ROUNDS runs of `loop` (PAIRS iterations), in ns per iteration,
-- with checks on or off.
local function median_ns(checks, loop)
  m:setchecks(checks)
  local times = {}
  for r = 1, ROUNDS do
    local t0 = os.clock()
    loop()
    times[r] = (os.clock() - t0) / PAIRS * 1e9
  end
  m:setchecks(true)
  table.sort(times)
  return times[(ROUNDS + 1) // 2]
end

-- The same block again and again: the freed block is the next one allocated.
local function same_block()
  for _ = 1, PAIRS do m:free(m:alloc(SIZE)) end
end

-- Any live block: free one picked at random anywhere in the heap, allocate
-- its replacement (a fixed seed: every run frees the same sequence).
local live, n = {}, 0
local function any_block()
  math.randomseed(n)
  for _ = 1, PAIRS do
    local i = math.random(n)
    m:free(live[i])
    live[i] = m:alloc(SIZE)
  end
end

print(("backend %s, %d-byte blocks, %d pairs x %d rounds per figure")
      :format(imalloc.backend, SIZE, PAIRS, ROUNDS))
-- DidAlloc alone (the check itself) on live blocks anywhere in the heap, and
-- its floor: a C function of the module called with the same pointers.
local function didalloc_ns(f)
  local times = {}
  for r = 1, ROUNDS do
    math.randomseed(r)
    local t0 = os.clock()
    for _ = 1, PAIRS do f(live[math.random(n)]) end
    times[r] = (os.clock() - t0) / PAIRS * 1e9
  end
  table.sort(times)
  return times[(ROUNDS + 1) // 2]
end
local function didalloc(p) return m:didalloc(p) end

print("| live blocks | same block: checked | unchecked | the check | any live block: checked | unchecked | the check | m:didalloc(any live block) | floor | DidAlloc |")
print("|---|---|---|---|---|---|---|---|---|---|")
local size = 1000
while size <= max_live do
  while n < size do
    n = n + 1
    live[n] = assert(m:alloc(SIZE))
  end
  local s_on, s_off = median_ns(true, same_block), median_ns(false, same_block)
  local a_on, a_off = median_ns(true, any_block), median_ns(false, any_block)
  local d, floor = didalloc_ns(didalloc), didalloc_ns(imalloc.address)
  print(("| %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |")
        :format(size, s_on, s_off, s_on - s_off, a_on, a_off, a_on - a_off,
                d, floor, d - floor))
  size = size * 10
end
m:setchecks(false)  -- the blocks are ours: free them fast
for i = 1, n do m:free(live[i]) end
