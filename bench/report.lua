--- bench/report.lua DIR: the table of bench/run, from the drivers' output.
--
-- DIR holds *.ns files ("key nanoseconds" lines, "key@ ns ns ..." with each
-- run's figure, or "key n/a (why)") and
-- *.ir files ("key instructions" lines, per iteration, from callgrind), and
-- machine.txt. Prints Markdown: the machine, the table, the memory table.

local dir = assert(arg[1], "usage: report.lua DIR")

local ns, ir, na = {}, {}, {}
local runs = {}  -- key -> each run's ns, in order (loops timed round-robin)
local source = {}  -- key -> the file, that is the process, it came from

local function readkv(path, into)
  local f = io.open(path)
  if not f then return end
  for line in f:lines() do
    local key, value = line:match("^(%S+)%s+(%S.*)$")
    if key and key:sub(-1) == "@" then
      local list = {}
      for v in value:gmatch("%S+") do list[#list + 1] = tonumber(v) end
      runs[key:sub(1, -2)] = list
      source[key:sub(1, -2)] = path
    elseif key then
      local v = tonumber(value)
      if v then into[key] = v else na[key] = value end
    end
  end
  f:close()
end

local p = io.popen('ls "' .. dir .. '"')
for name in p:lines() do
  if name:match("%.ns$") then readkv(dir .. "/" .. name, ns) end
  if name:match("%.ir$") then readkv(dir .. "/" .. name, ir) end
end
p:close()

-- A value that is the sum of several keys; nil if one is missing.
local function sum(t, keys)
  local s = 0
  for _, k in ipairs(keys) do
    if t[k] == nil then return nil end
    s = s + t[k]
  end
  return s
end

-- Each run's sum of `op` and of `floor`, when every key was timed by one
-- process, round-robin, the same number of times; nil otherwise.
local function paired(op, floor)
  local n, src
  for _, list in ipairs { op, floor } do
    for _, k in ipairs(list) do
      if not runs[k] or (n and #runs[k] ~= n) then return nil end
      if src and source[k] ~= src then return nil end
      n, src = #runs[k], source[k]
    end
  end
  local out = { op = {}, floor = {} }
  for i = 1, n do
    local a, b = 0, 0
    for _, k in ipairs(op) do a = a + runs[k][i] end
    for _, k in ipairs(floor) do b = b + runs[k][i] end
    out.op[i], out.floor[i] = a, b
  end
  return out
end

local function fmt(v, digits)
  if v == nil then return "—" end
  if digits == 0 then return ("%d"):format(math.floor(v + 0.5)) end
  return ("%." .. (digits or 1) .. "f"):format(v)
end

local rows = {}
local verdicts = { met = 0, ["not met"] = 0 }

-- A row. spec: name, op = {keys}, floor = {keys} (summed), floorname, and
-- a target on the ratio op / floor (floor / op with inverse = true):
--   max = r    the ratio (nanoseconds) at most r
--   min = r    the ratio (nanoseconds) at least r
--   maxir = n  the op's instructions at most n
-- Without a target the ratio is shown and nothing is judged.
local function row(spec)
  local opns, opir = sum(ns, spec.op), sum(ir, spec.op)
  local flns, flir = sum(ns, spec.floor), sum(ir, spec.floor)
  local function ratio_of(a, b)
    if not a or not b or a <= 0 or b <= 0 then return nil end
    if spec.inverse then return b / a end
    return a / b
  end
  local ratio, irratio = ratio_of(opns, flns), ratio_of(opir, flir)
  -- When the loop and its floor were timed round-robin in one process, the
  -- median of their ratio within each run: a load that comes and goes then
  -- weighs on both sides of each ratio alike.
  local perrun = paired(spec.op, spec.floor)
  if perrun then
    local r = {}
    for i = 1, #perrun.op do r[i] = ratio_of(perrun.op[i], perrun.floor[i]) end
    table.sort(r)
    local k = #r
    ratio = k % 2 == 1 and r[(k + 1) // 2] or (r[k // 2] + r[k // 2 + 1]) / 2
  end
  local target, met
  if spec.max then
    target = "≤ " .. spec.max
    if ratio then met = ratio <= spec.max end
  elseif spec.min then
    target = "≥ " .. spec.min
    if ratio then met = ratio >= spec.min end
  elseif spec.maxir then
    target = "≤ " .. spec.maxir .. " instr"
    if opir then met = opir <= spec.maxir end
  end
  local verdict = "—"
  if met ~= nil then
    verdict = met and "met" or "not met"
    verdicts[verdict] = verdicts[verdict] + 1
  elseif target then
    verdict = "n/a"
  end
  local name = spec.name
  if not opns then
    for _, k in ipairs(spec.op) do
      if na[k] then name = name .. " — " .. na[k] end
    end
  end
  rows[#rows + 1] = {
    name, fmt(opns), fmt(opir, 0), spec.floorname or "—", fmt(flns), fmt(flir, 0),
    ratio and fmt(ratio, 2) or "—", irratio and fmt(irratio, 2) or "—",
    target or "—", verdict,
  }
end

local function section(title)
  rows[#rows + 1] = { "**" .. title .. "**", "", "", "", "", "", "", "", "", "" }
end

section("Binding: Lua 5.4 → imalloc.core (floor: bench.noop calls + the allocator from C)")
row { name = "alloc+free 64 B, checked", op = { "lua.pair" },
      floor = { "noop.pair", "c.pair" }, floorname = "2 no-op calls + Alloc+Free", max = 1.3 }
row { name = "alloc+free 64 B, checked: instructions", op = { "lua.pair" },
      floor = { "noop.pair.bare" }, floorname = "2 calls of a C method with no checks at all",
      maxir = 1150 }
row { name = "alloc+free 64 B, setchecks(false)", op = { "lua.pair.unchecked" },
      floor = { "noop.pair", "c.pair" }, floorname = "2 no-op calls + Alloc+Free" }
row { name = "getsize, checked", op = { "lua.getsize" },
      floor = { "noop.one", "c.getsize" }, floorname = "no-op call + GetSize" }
row { name = "didalloc", op = { "lua.didalloc" },
      floor = { "noop.one", "c.didalloc" }, floorname = "no-op call + DidAlloc" }
row { name = "no-op call, self checked by luaL_checkudata (a registry lookup)",
      op = { "noop.reg" }, floor = { "noop.one" },
      floorname = "no-op call, self checked against an upvalue" }
row { name = "realloc growth 64 B → 4 KiB (alloc, 6 reallocs, free)", op = { "lua.realloc" },
      floor = { "noop.realloc", "c.realloc" }, floorname = "8 no-op calls + the same from C" }
row { name = "read 64 B: m:read(p, 64, 0)", op = { "lua.read" },
      floor = { "noop.read" }, floorname = "unchecked read method" }
row { name = "write 64 B: m:write(p, s, 0)", op = { "lua.write" },
      floor = { "noop.write" }, floorname = "unchecked write method" }
row { name = "b:read(64, 0), the block re-checked", op = { "lua.bread" },
      floor = { "lua.bread.unchecked" }, floorname = "the same buffer made by a handle with setchecks(false)" }
row { name = "buffer(64) created and closed", op = { "lua.buffer" },
      floor = { "noop.buffer" }, floorname = "minimal buffer: userdata + Alloc, __close → Free" }

-- The allocator's own targets are judged in one place, bench/alloc-report.lua
-- (bench/alloc-run); these rows show the same calls through the vtable
-- beside the binding's and judge nothing.
section("POSIX allocator from C, through the vtable (floor: the process's malloc)")
row { name = "Alloc+Free 64 B", op = { "c.ta.pair" },
      floor = { "c.glibc.pair" }, floorname = "glibc malloc+free" }
row { name = "GetSize", op = { "c.ta.getsize" },
      floor = { "c.glibc.usable" }, floorname = "glibc malloc_usable_size" }
row { name = "DidAlloc", op = { "c.ta.didalloc" },
      floor = { "c.glibc.usable" }, floorname = "glibc malloc_usable_size" }
row { name = "Realloc growth 64 B → 4 KiB (Alloc, 6 Reallocs, Free)", op = { "c.ta.realloc" },
      floor = { "c.glibc.realloc" }, floorname = "glibc, the same" }
row { name = "Alloc+Free 64 B, 2 threads at once: throughput × 1 thread's",
      op = { "c.ta.pair.t2" }, floor = { "c.ta.pair.t1" },
      floorname = "1 thread (ns per pair)", inverse = true }
row { name = "the same, from the threads' CPU times (had each thread a core)",
      op = { "c.ta.pair.cpu2" }, floor = { "c.ta.pair.cpu1" },
      floorname = "1 thread (CPU ns per pair)", inverse = true }
row { name = "glibc malloc+free 64 B, 2 threads: throughput × 1 thread's",
      op = { "c.glibc.pair.t2" }, floor = { "c.glibc.pair.t1" },
      floorname = "1 thread (ns per pair)", inverse = true }
row { name = "control, no memory: arithmetic loop, 2 threads: throughput × 1 thread's",
      op = { "c.spin.t2" }, floor = { "c.spin.t1" },
      floorname = "1 thread (ns per iteration)", inverse = true }
for _, lib in ipairs { "mimalloc", "jemalloc" } do
  row { name = lib .. " malloc+free 64 B (LD_PRELOAD)", op = { "c." .. lib .. ".pair" },
        floor = { "c.glibc.pair" }, floorname = "glibc malloc+free" }
  row { name = lib .. " realloc growth (LD_PRELOAD)", op = { "c." .. lib .. ".realloc" },
        floor = { "c.glibc.realloc" }, floorname = "glibc, the same" }
end

section("Peer: the binding against LuaJIT 2.1's FFI making the same COM calls through the vtable")
local ops = {
  { "pair", "alloc+free 64 B, checked", "lua.pair" },
  { "getsize", "getsize, checked", "lua.getsize" },
  { "didalloc", "didalloc", "lua.didalloc" },
  { "realloc", "realloc growth 64 B → 4 KiB", "lua.realloc" },
}
for _, o in ipairs(ops) do
  row { name = "binding: " .. o[2], op = { o[3] }, floor = { "ffi.joff." .. o[1] },
        floorname = "LuaJIT FFI, JIT off (-joff)", max = 0.5 }
end
for _, o in ipairs(ops) do
  row { name = "binding: " .. o[2], op = { o[3] }, floor = { "ffi.jon." .. o[1] },
        floorname = "LuaJIT FFI, JIT on" }
end

local m = io.open(dir .. "/machine.txt")
if m then
  io.write(m:read("a"), "\n")
  m:close()
end

local header = { "operation", "ns", "instr", "floor", "floor ns", "floor instr",
                 "ratio (ns)", "ratio (instr)", "target", "" }
print("| " .. table.concat(header, " | ") .. " |")
print("|" .. ("---|"):rep(#header))
for _, r in ipairs(rows) do print("| " .. table.concat(r, " | ") .. " |") end

print()
print("| memory | bytes per live block | target | |")
print("|---|---|---|---|")
local function memrow(name, key, max)
  local v = ns[key]
  local verdict = "—"
  if max and v then
    verdict = v <= max and "met" or "not met"
    verdicts[verdict] = verdicts[verdict] + 1
  end
  print(("| %s | %s | %s | %s |"):format(name, fmt(v, 2), max and ("≤ " .. max) or "—", verdict))
end
memrow("bookkeeping, 1M live blocks of 64 B: size slots, chunk headers, table", "mem.small.meta", 16)
memrow("bookkeeping, 16384 live blocks above 64 KiB: descriptors and table leaves", "mem.large.meta", 16)
memrow("of which the descriptor (least of 4 batches of 4096 blocks)", "mem.large.desc")
memrow("address space mapped per live 64 B block, block included (approx.)", "mem.small.mapped")
memrow("glibc: heap per live 64 B block beyond its 64 bytes (header, rounding)", "mem.malloc.small")
print()
print(("targets: %d met, %d not met"):format(verdicts.met, verdicts["not met"]))
