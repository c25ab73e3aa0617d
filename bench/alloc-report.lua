--- bench/alloc-report.lua DIR: the table of bench/alloc-run.
--
-- DIR holds <allocator>.txt ("key value" lines from bench/alloc-<allocator>,
-- "key n/a (why)" for a scenario skipped, "missing why" for an allocator not
-- built), c.ns and c*.ir (the C driver's times and instructions, as in
-- bench/run) and machine.txt. Prints Markdown: the machine, the table, the
-- count of targets met.

local dir = assert(arg[1], "usage: alloc-report.lua DIR")
local peers = { "builtin", "glibc", "mimalloc", "jemalloc" }
local label = { builtin = "built-in", glibc = "glibc", mimalloc = "mimalloc",
                jemalloc = "jemalloc" }

local value, why = {}, {}  -- value[allocator][key], why[allocator][key]
local absent = {}          -- allocator -> why it was not run

local function read(path, each)
  local f = io.open(path)
  if not f then return end
  for line in f:lines() do
    local key, rest = line:match("^(%S+)%s+(%S.*)$")
    if key then each(key, rest) end
  end
  f:close()
end

for _, p in ipairs(peers) do
  value[p], why[p] = {}, {}
  read(dir .. "/" .. p .. ".txt", function(key, rest)
    if key == "missing" then absent[p] = rest
    elseif tonumber(rest) then value[p][key] = tonumber(rest)
    else why[p][key] = rest:gsub("^n/a%s*%((.*)%)$", "%1") end
  end)
end

-- The C driver's figures (cbench.c), under the same keys for every column.
local cns, cir = {}, {}
read(dir .. "/c.ns", function(k, v) cns[k] = tonumber(v) end)
for _, f in ipairs { "c.ir", "c-mimalloc.ir", "c-jemalloc.ir" } do
  read(dir .. "/" .. f, function(k, v) cir[k] = tonumber(v) end)
end
local function ratio(a, b) return a and b and b > 0 and a / b or nil end
value.builtin["pair.instr"] = cir["c.ta.pair"]
value.glibc["pair.instr"] = cir["c.glibc.pair"]
value.mimalloc["pair.instr"] = cir["c.mimalloc.pair"]
value.jemalloc["pair.instr"] = cir["c.jemalloc.pair"]
value.builtin["getsize.instr"] = cir["c.ta.getsize"]
value.builtin["didalloc.instr"] = cir["c.ta.didalloc"]
value.glibc["getsize.instr"] = cir["c.glibc.usable"]
value.builtin["threads.scaling"] = ratio(cns["c.ta.pair.t1"], cns["c.ta.pair.t2"])
value.glibc["threads.scaling"] = ratio(cns["c.glibc.pair.t1"], cns["c.glibc.pair.t2"])
value.builtin["threads.cpu_scaling"] = ratio(cns["c.ta.pair.cpu1"], cns["c.ta.pair.cpu2"])
value.builtin["bookkeeping"] = cns["mem.small.meta"]
value.glibc["bookkeeping"] = cns["mem.malloc.small"]

-- Figures: whole from 100, one decimal from 10, else two, trailing zeros cut.
local function fmt(v)
  if v == nil then return nil end
  local a = math.abs(v)
  if a >= 100 or v == 0 then return ("%d"):format(math.floor(v + 0.5)) end
  local s = ((a >= 10 and "%.1f") or "%.2f"):format(v)
  return (s:gsub("%.?0+$", ""))
end

-- Ratios: two decimals below 10.
local function fmtratio(r)
  if r >= 10 then return fmt(r) end
  return ("%.2f"):format(r)
end

local rows, notes, met = {}, {}, { met = 0, ["not met"] = 0 }

-- A row. spec: name, key; low = true when less is better (false: more);
-- target: { vs = "best" | "glibc" | "self", max = r | min = r, text = ... }.
local function row(spec)
  local cells, best, bestname = {}, nil, nil
  for _, p in ipairs(peers) do
    local v = value[p][spec.key]
    local cell = fmt(v)
    if not cell then
      local reason, prefix = absent[p], spec.key
      while not reason and prefix do  -- "live.5000000.free_mib", "live.5000000", "live"
        reason = why[p][prefix]
        prefix = prefix:match("^(.+)%.[^.]+$")
      end
      if reason then
        cell = "n/a"
        notes[label[p] .. ": " .. reason] = true
      else
        cell = "—"
      end
    end
    cells[#cells + 1] = cell
    if p ~= "builtin" and v and spec.low ~= nil then
      local better = best == nil or (spec.low and v < best) or (not spec.low and v > best)
      if better then best, bestname = v, label[p] end
    end
  end
  local mine = value.builtin[spec.key]
  local vsbest = ratio(mine, best)
  local vsglibc = spec.low ~= nil and ratio(mine, value.glibc[spec.key]) or nil
  local t, verdict = spec.target, "—"
  if t then
    local r = (t.vs == "best" and vsbest) or (t.vs == "glibc" and vsglibc) or
              (t.vs == "self" and mine) or nil
    if r then
      local ok = (t.max and r <= t.max) or (t.min and r >= t.min)
      verdict = ok and "met" or "not met"
      met[verdict] = met[verdict] + 1
    else
      verdict = "n/a"
    end
  end
  rows[#rows + 1] = {
    spec.name, cells[1], cells[2], cells[3], cells[4],
    vsbest and (fmtratio(vsbest) .. " (" .. bestname .. ")") or "—",
    vsglibc and fmtratio(vsglibc) or "—",
    t and t.text or "—", verdict,
  }
end

-- Targets: the built-in allocator's figure at most `max` times the best
-- peer's or glibc's, or itself at most `max` / at least `min`.
local function vs_best(max) return { vs = "best", max = max, text = "≤ " .. max .. " × best peer" } end
local function vs_glibc(max) return { vs = "glibc", max = max, text = "≤ " .. max .. " × glibc" } end
local function at_most(max, text) return { vs = "self", max = max, text = text or ("≤ " .. max) } end
local function at_least(min) return { vs = "self", min = min, text = "≥ " .. min } end

local function section(title)
  rows[#rows + 1] = { "**" .. title .. "**", "", "", "", "", "", "", "", "" }
end

local function count(n)
  local s = tostring(n)
  return s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
end

section("(a) N live blocks of 16..4096 B, each written: RSS, MiB")
local ns = {}
for _, p in ipairs(peers) do
  for key in pairs(value[p]) do
    local n = key:match("^live%.(%d+)%.")
    if n then ns[tonumber(n)] = true end
  end
  for key in pairs(why[p]) do
    local n = key:match("^live%.(%d+)$")
    if n then ns[tonumber(n)] = true end
  end
end
local sorted = {}
for n in pairs(ns) do sorted[#sorted + 1] = n end
table.sort(sorted)
for _, n in ipairs(sorted) do
  local k = "live." .. n
  row { name = count(n) .. " blocks: after alloc", key = k .. ".alloc_mib", low = true }
  row { name = count(n) .. " blocks: after free-all", key = k .. ".free_mib", low = true }
  local target
  if n == 1000000 or n == 5000000 then
    target = vs_best(2)
  end
  row { name = count(n) .. " blocks: after free-all + minimize", key = k .. ".minimize_mib",
        low = true, target = target }
end

section("(a') 100,000 blocks of 16..4096 B freed, then light use, no minimize: RSS, MiB")
row { name = "right after the frees", key = "decay.0s_mib", low = true }
row { name = "1 s later", key = "decay.1s_mib", low = true }
row { name = "5 s later", key = "decay.5s_mib", low = true }

section("(b) three phases of 512 MiB: 64 B, then 1000 B, then 4000 B blocks, freed between")
row { name = "peak RSS (VmHWM), MiB", key = "phases.peak_mib", low = true,
      target = vs_best(1.2) }
row { name = "RSS at the end, all freed, MiB", key = "phases.end_mib", low = true }

section("(c) large block: alloc + write every page + free, per cycle after the first")
for _, mib in ipairs { 1, 4, 16 } do
  row { name = mib .. " MiB: time, µs", key = "large." .. mib .. ".cycle_us", low = true,
        target = vs_best(2) }
  row { name = mib .. " MiB: minor page faults", key = "large." .. mib .. ".faults", low = true,
        target = at_most(1, "near 0 (≤ 1)") }
end

section("(d) one block grown by realloc from 16 B to 256 MiB by doubling (24 steps)")
row { name = "time, ms (median of 5)", key = "realloc.ms", low = true,
      target = vs_glibc(2) }
row { name = "address changes (copies)", key = "realloc.copies", low = true }

section("(e) 1,000 live blocks of 16..1024 B left after 1,000,000 frees + allocs among 10,000")
row { name = "RSS, MiB", key = "churn.rss_mib", low = true,
      target = vs_glibc(2) }
row { name = "RSS after minimize, MiB", key = "churn.minimize_mib", low = true }
row { name = "RSS of the process before, MiB", key = "churn.start_mib", low = true }

section("(f) producer/consumer: blocks of 16..256 B allocated on one thread, freed on another, in batches of 1024")
row { name = "instructions per block, its alloc + its free (callgrind)", key = "pc.instr", low = true }
row { name = "CPU ns per block in the allocator, both threads (median of 3)", key = "pc.cpu_ns", low = true }
row { name = "throughput, million blocks/s (median of 3)", key = "pc.mblocks_s", low = false }

section("Kept from bench/run (the C driver, cbench.c)")
row { name = "Alloc+Free 64 B, instructions (callgrind)", key = "pair.instr", low = true,
      target = vs_glibc(1.1) }
row { name = "GetSize, instructions (glibc: malloc_usable_size)", key = "getsize.instr",
      target = at_most(60) }
row { name = "DidAlloc, instructions", key = "didalloc.instr",
      target = at_most(60) }
row { name = "2 threads' Alloc+Free throughput × 1 thread's (wall clock)", key = "threads.scaling",
      target = at_least(1.6) }
row { name = "the same from the threads' CPU times", key = "threads.cpu_scaling" }
row { name = "bookkeeping bytes per live 64 B block, 1e6 blocks (glibc: header)",
      key = "bookkeeping", target = at_most(16) }

local m = io.open(dir .. "/machine.txt")
if m then
  io.write(m:read("a"), "\n")
  m:close()
end
local header = { "scenario", "built-in", "glibc", "mimalloc", "jemalloc",
                 "built-in / best peer", "built-in / glibc", "target", "" }
print("| " .. table.concat(header, " | ") .. " |")
print("|" .. ("---|"):rep(#header))
for _, r in ipairs(rows) do print("| " .. table.concat(r, " | ") .. " |") end
local list = {}
for note in pairs(notes) do list[#list + 1] = note end
table.sort(list)
if #list > 0 then
  print()
  for _, note in ipairs(list) do print("n/a: " .. note) end
end
local spin = ratio(cns["c.spin.t1"], cns["c.spin.t2"])
if spin then
  print()
  print(("The machine's own two-thread scaling in the same run (an arithmetic "
         .. "loop, no memory): %.2f × one thread's."):format(spin))
end
print()
print(("targets: %d met, %d not met"):format(met.met, met["not met"]))
