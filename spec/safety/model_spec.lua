-- A model-based random test: a seeded sequence of operations on blocks,
-- buffers and handles (alloc, realloc, free, getsize, didalloc, read,
-- write, string, strdup, wstrdup, wstring, buffer create/resize/free/
-- detach/adopt, handle addref/release/drop, collector steps), each checked
-- against a pure-Lua model of what every live block must hold, and of
-- which calls must raise, with which message.
--
-- IMALLOC_SEED=n picks the seed (default: the fixed one below); "fresh"
-- picks a new one. IMALLOC_MODEL_OPS=n the number of operations (default
-- 100,000). The seed is printed first; a failure names the seed and the
-- step, so `IMALLOC_SEED=<seed> busted spec/safety/model_spec.lua` replays it.
local helpers = require "helpers"
local imalloc = helpers.imalloc

local FIXED_SEED = 20261123
local OPS = tonumber(os.getenv("IMALLOC_MODEL_OPS")) or 100000

local function pick_seed()
  local env = os.getenv("IMALLOC_SEED")
  if env == nil or env == "" then return FIXED_SEED end
  if env == "fresh" then
    -- time, CPU time and an address: differs from run to run
    local addr = tonumber(tostring({}):match("(%x+)$"), 16) or 0
    return (os.time() * 1000003 + math.floor(os.clock() * 1e6) + addr) % 2147483647
  end
  local seed = tonumber(env)
  return assert(seed and seed % 1 == 0 and seed, "IMALLOC_SEED: an integer or 'fresh'")
end

--- Two Lehmer generators (MINSTD, multipliers 48271 and 69621, modulus
-- 2^31 - 1) combined: exact in a double, so the same sequence on every
-- runtime and platform, with or without integers, and apart from the
-- math.random that busted seeds. rnd(n) is 1..n (0 when n is 0, so that
-- list[rnd(#list)] is nil for an empty list).
local function generator(seed)
  local M31 = 2147483647
  local a = seed % M31
  local b = (seed * 16807 + 12345) % M31
  if a == 0 then a = 1 end
  if b == 0 then b = 1 end
  return function(n)
    a = a * 48271 % M31
    b = b * 69621 % M31
    if n <= 0 then return 0 end
    return (a * 65536 + b) % n + 1  -- below 2^47: exact
  end
end

--- M.name(obj, ...) calls obj:name(...) with method syntax, so that errors
-- name the method and do not count self (helpers.method).
local M = setmetatable({}, { __index = function(t, name)
  local f = helpers.method(name)
  t[name] = f
  return f
end })

local function bad(n, fname, msg)
  return ("bad argument #%d to '%s' (%s)"):format(n, fname, msg)
end
local NOT_LIVE = "pointer is not a live block of this IMalloc"
local OWNED = "pointer is owned by a buffer (free or detach the buffer)"
local function out_of_bounds(n, off, size)
  return ("out of bounds: %d bytes at offset %d of a %d-byte block"):format(n, off, size)
end

--- UTF-16LE of a UTF-8 string, NUL-terminated (what wstrdup must write).
local function utf16(s)
  local out = {}
  for _, cp in ipairs(helpers.utf8codes(s)) do
    if cp >= 0x10000 then
      local v = cp - 0x10000
      local hi, lo = 0xD800 + helpers.idiv(v, 0x400), 0xDC00 + v % 0x400
      out[#out + 1] = helpers.u16le(hi) .. helpers.u16le(lo)
    else
      out[#out + 1] = helpers.u16le(cp)
    end
  end
  out[#out + 1] = "\0\0"
  return table.concat(out)
end

--- What wstring(p) must return for block bytes `s`: UTF-16LE units up to
-- the first NUL unit or the end, unpaired surrogates as U+FFFD.
local function from_utf16(s)
  local units = {}
  for i = 1, #s - 1, 2 do
    local u = s:byte(i) + s:byte(i + 1) * 256
    if u == 0 then break end
    units[#units + 1] = u
  end
  local out, i = {}, 1
  while i <= #units do
    local u = units[i]
    local lo = units[i + 1]
    if u >= 0xD800 and u <= 0xDBFF and lo and lo >= 0xDC00 and lo <= 0xDFFF then
      out[#out + 1] = helpers.utf8char(0x10000 + (u - 0xD800) * 0x400 + (lo - 0xDC00))
      i = i + 2
    else
      out[#out + 1] = helpers.utf8char((u >= 0xD800 and u <= 0xDFFF) and 0xFFFD or u)
      i = i + 1
    end
  end
  return table.concat(out)
end

local function run(seed, ops)
  local rnd = generator(seed)
  local handles = { { h = assert(imalloc.get()), refs = 1 } }  -- all on the task allocator
  local blocks = {}    -- raw blocks: { p =, data = }
  local buffers = {}   -- { b =, data = }
  local limbo = {}     -- blocks of buffers dropped, freed by a later collection
  local freed = {}     -- addresses freed, to ask about again
  local counts = {}
  local step, op = 0, "start"

  local function bytes(n)
    if n == 0 then return "" end
    local chunk = string.char(rnd(256) - 1, rnd(256) - 1, rnd(256) - 1, rnd(256) - 1,
                              rnd(256) - 1, rnd(256) - 1, rnd(256) - 1, rnd(256) - 1)
    return chunk:rep(helpers.idiv(n, 8) + 1):sub(1, n)
  end

  local function size()
    local r = rnd(1000)
    if r <= 600 then return rnd(65) - 1 end
    if r <= 900 then return 64 + rnd(960) end
    if r <= 990 then return 1024 + rnd(7168) end
    return 65536 + rnd(40000)  -- a mapping of its own
  end

  local function live_handle()
    local live = {}
    for _, e in ipairs(handles) do if e.refs > 0 then live[#live + 1] = e end end
    if #live == 0 then
      handles[#handles + 1] = { h = assert(imalloc.get()), refs = 1 }
      return handles[#handles]
    end
    return live[rnd(#live)]
  end

  local function is_live(p)
    for _, e in ipairs(blocks) do if e.p == p then return true end end
    for _, e in ipairs(buffers) do if e.b:ptr() == p then return true end end
    for _, q in ipairs(limbo) do if q == p then return true end end
    return false
  end

  local function remember_freed(p)
    freed[#freed % 64 + 1] = p
  end

  local function expect(want, got, what)
    if want ~= got then
      error(("%s: expected %s, got %s"):format(what, tostring(want), tostring(got)), 0)
    end
  end

  -- luaL_error puts the calling Lua line in front (as assert.has_error,
  -- the comparison leaves it out)
  local function raises(msg, f, ...)
    local ok, err = pcall(f, ...)
    if ok then error("no error, expected: " .. msg, 0) end
    expect(msg, (tostring(err):gsub("^.-:%d+: ", "", 1)), "error")
  end

  -- The allocator's and the binding's view of a raw block.
  local function check_block(h, e)
    expect(1, h:didalloc(e.p), "didalloc")
    expect(#e.data, h:getsize(e.p), "getsize")
    expect(e.data, h:read(e.p), "read")
  end

  local function check_buffer(e)
    local h = live_handle().h
    expect(#e.data, #e.b, "#buffer")
    expect(e.data, e.b:read(), "buffer read")
    expect(1, h:didalloc(e.b:ptr()), "didalloc of a buffer's block")
    expect(#e.data, h:getsize(e.b:ptr()), "getsize of a buffer's block")
  end

  local function take(list)
    if #list == 0 then return nil end
    local i = rnd(#list)
    local e = list[i]
    list[i] = list[#list]
    list[#list] = nil
    return e
  end

  -- A read or write of a random range, sometimes out of bounds; the model
  -- says what comes back, or which argument error is raised.
  local function range(n)
    if rnd(8) == 1 then  -- out of bounds
      local off = rnd(n + 8) - 1
      return math.max(1, n - off + rnd(8)), off
    end
    local off = rnd(n + 1) - 1
    return rnd(n - off + 1) - 1, off
  end

  local ops_table = {
    { "alloc", 12, function()
      if #blocks >= 64 then return false end
      local h = live_handle().h
      local n = size()
      local p = assert(h:alloc(n))
      local e = { p = p, data = bytes(n) }
      h:write(p, e.data)
      blocks[#blocks + 1] = e
    end },
    { "strdup", 3, function()
      if #blocks >= 64 then return false end
      local h = live_handle().h
      local s = bytes(rnd(40) - 1):gsub("%z", "0")  -- %z: 5.1 reads a pattern up to its NUL
      local p = assert(h:strdup(s))
      blocks[#blocks + 1] = { p = p, data = s .. "\0" }
      expect(s, h:string(p), "string")
    end },
    { "wstrdup", 3, function()
      if #blocks >= 64 then return false end
      local cps = {}
      for i = 1, rnd(12) - 1 do
        local r = rnd(4)
        cps[i] = r == 1 and 31 + rnd(95) or r == 2 and 0x7F + rnd(0x780)
                 or r == 3 and 0xE000 + rnd(0x1000) or 0xFFFF + rnd(0x1000)
      end
      local h = live_handle().h
      local s = helpers.utf8char(helpers.unpack(cps))
      local p, units = h:wstrdup(s)
      expect(helpers.idiv(#utf16(s), 2) - 1, units, "wstrdup's length")
      blocks[#blocks + 1] = { p = p, data = utf16(s) }
      expect(s, h:wstring(p), "wstring")
    end },
    { "realloc", 8, function()
      local e = blocks[rnd(#blocks)]
      if not e then return false end
      local h = live_handle().h
      local n = rnd(10) == 1 and 0 or size()
      local q = h:realloc(e.p, n)
      if n == 0 then
        expect(nil, q, "realloc to 0")
        for i, x in ipairs(blocks) do if x == e then table.remove(blocks, i) break end end
        remember_freed(e.p)
        return
      end
      assert(q, "realloc failed")
      if q ~= e.p then remember_freed(e.p) end
      local kept = e.data:sub(1, n)
      expect(kept, h:read(q, #kept), "bytes kept by realloc")
      e.p, e.data = q, kept .. bytes(n - #kept)
      h:write(q, e.data:sub(#kept + 1), #kept)
    end },
    { "free", 8, function()
      local e = take(blocks)
      if not e then return false end
      live_handle().h:free(e.p)
      remember_freed(e.p)
    end },
    { "check", 8, function()
      local e = blocks[rnd(#blocks)]
      if not e then return false end
      check_block(live_handle().h, e)
    end },
    { "read", 10, function()
      local e = blocks[rnd(#blocks)]
      if not e then return false end
      local h, size_ = live_handle().h, #e.data
      local n, off = range(size_)
      if off > size_ then
        raises(bad(3, "read", out_of_bounds(0, off, size_)), M.read, h, e.p, n, off)
      elseif off + n > size_ then
        raises(bad(2, "read", out_of_bounds(n, off, size_)), M.read, h, e.p, n, off)
      else
        expect(e.data:sub(off + 1, off + n), h:read(e.p, n, off), "read")
      end
    end },
    { "write", 10, function()
      local e = blocks[rnd(#blocks)]
      if not e then return false end
      local h, size_ = live_handle().h, #e.data
      local n, off = range(size_)
      local s = bytes(n)
      if off + n > size_ then
        raises(bad(2, "write", out_of_bounds(n, off, size_)), M.write, h, e.p, s, off)
      else
        h:write(e.p, s, off)
        e.data = e.data:sub(1, off) .. s .. e.data:sub(off + n + 1)
      end
    end },
    { "string", 3, function()
      local e = blocks[rnd(#blocks)]
      if not e then return false end
      local h = live_handle().h
      expect(e.data:sub(1, (e.data:find("\0", 1, true) or #e.data + 1) - 1), h:string(e.p), "string")
      expect(from_utf16(e.data), h:wstring(e.p), "wstring")
    end },
    { "stale", 4, function()
      -- Not on Windows: ole32's DidAlloc asks the process heap, which the C
      -- runtime's malloc (Lua's own allocator) shares. Once the heap hands a
      -- freed address out again it is a live block to DidAlloc (so a stale
      -- free would pass the check and free Lua's memory), and Wine 8's
      -- HeapValidate faults on an address inside another block (seen here:
      -- a read of 0xFFFFFFFFFFFFFFFF in ntdll). See README, m:setchecks.
      -- Freed pointers on Windows are covered where no reuse can intervene
      -- (safety/pointer_checks and arguments/catalogue).
      if helpers.windows then return false end
      local p = freed[rnd(64)]
      if not p or is_live(p) then return false end
      local h = live_handle().h
      expect(0, h:didalloc(p), "didalloc of a freed block")
      raises(bad(1, "free", NOT_LIVE), M.free, h, p)
      raises(bad(1, "getsize", NOT_LIVE), M.getsize, h, p)
      raises(bad(1, "read", NOT_LIVE), M.read, h, p)
      raises(bad(1, "adopt", NOT_LIVE), M.adopt, h, p)
    end },
    { "buffer", 6, function()
      if #buffers >= 32 then return false end
      local n = size()
      local b = assert(live_handle().h:buffer(n))
      local e = { b = b, data = bytes(n) }
      expect(b, b:write(e.data), "write returns the buffer")
      buffers[#buffers + 1] = e
    end },
    { "adopt", 3, function()
      if #buffers >= 32 then return false end
      local e = take(blocks)
      if not e then return false end
      local b = live_handle().h:adopt(e.p)
      buffers[#buffers + 1] = { b = b, data = e.data }
      expect(e.p, b:ptr(), "adopted pointer")
    end },
    { "resize", 6, function()
      local e = buffers[rnd(#buffers)]
      if not e then return false end
      local n = rnd(10) == 1 and 0 or size()
      local old = e.b:ptr()
      expect(e.b, e.b:resize(n), "resize returns the buffer")
      if e.b:ptr() ~= old then remember_freed(old) end
      local kept = e.data:sub(1, n)
      expect(kept, e.b:read(#kept), "bytes kept by resize")
      e.data = kept .. bytes(n - #kept)
      e.b:write(e.data:sub(#kept + 1), #kept)
    end },
    { "buffer io", 10, function()
      local e = buffers[rnd(#buffers)]
      if not e then return false end
      local size_ = #e.data
      local n, off = range(size_)
      if rnd(2) == 1 then
        if off > size_ then
          raises(bad(2, "read", out_of_bounds(0, off, size_)), M.read, e.b, n, off)
        elseif off + n > size_ then
          raises(bad(1, "read", out_of_bounds(n, off, size_)), M.read, e.b, n, off)
        else
          expect(e.data:sub(off + 1, off + n), e.b:read(n, off), "buffer read")
        end
      else
        local s = bytes(n)
        if off + n > size_ then
          raises(bad(1, "write", out_of_bounds(n, off, size_)), M.write, e.b, s, off)
        else
          e.b:write(s, off)
          e.data = e.data:sub(1, off) .. s .. e.data:sub(off + n + 1)
        end
      end
    end },
    { "buffer owns", 3, function()
      local e = buffers[rnd(#buffers)]
      if not e then return false end
      local h, p = live_handle().h, e.b:ptr()
      check_buffer(e)
      raises(bad(1, "free", OWNED), M.free, h, p)
      raises(bad(1, "realloc", OWNED), M.realloc, h, p, 8)
      raises(bad(1, "adopt", OWNED), M.adopt, h, p)
    end },
    { "buffer free", 3, function()
      local e = take(buffers)
      if not e then return false end
      local p = e.b:ptr()
      e.b:free()
      expect("released buffer", imalloc.type(e.b), "type after free")
      raises("attempt to use a released buffer", M.read, e.b)
      remember_freed(p)
    end },
    { "detach", 3, function()
      if #blocks >= 64 then return false end
      local e = take(buffers)
      if not e then return false end
      local p = e.b:detach()
      expect("released buffer", imalloc.type(e.b), "type after detach")
      raises("attempt to use a released buffer", M.detach, e.b)
      blocks[#blocks + 1] = { p = p, data = e.data }
    end },
    { "buffer drop", 3, function()
      local e = take(buffers)
      if not e then return false end
      limbo[#limbo + 1] = e.b:ptr()
    end },
    { "addref", 3, function()
      local e = live_handle()
      e.h:addref()
      e.refs = e.refs + 1
    end },
    { "release", 3, function()
      local e = live_handle()
      local _, owned = e.h:release()
      e.refs = e.refs - 1
      expect(e.refs, owned, "references the handle still owns")
      if e.refs == 0 then
        expect("released IMalloc", imalloc.type(e.h), "type after release")
        raises("attempt to use a released IMalloc", M.alloc, e.h, 1)
      end
    end },
    { "handle", 2, function()
      if #handles >= 8 then
        -- drop one: whatever it owns goes back when it is collected
        take(handles)
      elseif rnd(2) == 1 then
        handles[#handles + 1] = { h = assert(imalloc.get()), refs = 1 }
      else
        local e = live_handle()
        local q = assert(e.h:queryinterface(imalloc.IID_IMalloc))
        expect(true, q == e.h, "queryinterface gives the same interface")
        handles[#handles + 1] = { h = q, refs = 1 }
      end
    end },
    { "gc step", 4, function()
      collectgarbage("step", rnd(64))
    end },
    { "gc full", 1, function()
      collectgarbage("collect")
      collectgarbage("collect")
      local stale = limbo
      limbo = {}
      for _, p in ipairs(stale) do
        -- not on Windows: a freed address the heap may have reused (see
        -- the "stale" operation)
        if not is_live(p) and not helpers.windows then
          expect(0, live_handle().h:didalloc(p), "a dropped buffer's block")
        end
        remember_freed(p)
      end
    end },
  }

  -- weighted choice
  local wheel = {}
  for _, o in ipairs(ops_table) do
    counts[o[1]] = 0
    for _ = 1, o[2] do wheel[#wheel + 1] = o end
  end

  local function audit()
    local h = live_handle().h
    for _, e in ipairs(blocks) do check_block(h, e) end
    for _, e in ipairs(buffers) do check_buffer(e) end
  end

  -- `ops` operations that ran (one whose list is empty or full is drawn
  -- again); every 1000, all live blocks and buffers are checked whole.
  local ok, err = xpcall(function()
    local done = 0
    while done < ops do
      step = step + 1
      local o = wheel[rnd(#wheel)]
      op = o[1]
      if o[3]() ~= false then
        counts[op] = counts[op] + 1
        done = done + 1
        if done % 1000 == 0 then op = "audit"; audit() end
      end
    end
    op = "end"
    audit()
    local h = live_handle().h
    for _, e in ipairs(blocks) do h:free(e.p); remember_freed(e.p) end
    for _, e in ipairs(buffers) do e.b:free() end
    blocks, buffers = {}, {}
  end, debug.traceback)
  if not ok then
    error(("model: seed %d, step %d (%s): %s"):format(seed, step, op, err), 0)
  end
  return counts
end

describe("the model-based random test", function()
  it("returns what the model says for every operation of a seeded sequence", function()
    local seed = pick_seed()
    print(("model: seed %d, %d operations"):format(seed, OPS))
    local counts = run(seed, OPS)
    local total, parts, names = 0, {}, {}
    for name, n in pairs(counts) do total = total + n; names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do parts[#parts + 1] = ("%s %d"):format(name, counts[name]) end
    print(("model: %d operations run, seed %d, 0 errors (%s)"):format(total, seed, table.concat(parts, ", ")))
    assert.equal(OPS, total)
    -- every kind of operation ran (stale pointers: not on Windows, see above)
    for _, name in ipairs(names) do
      if not (helpers.windows and name == "stale") then
        assert.is_true(counts[name] > 0, name)
      end
    end
    helpers.collect()
  end)
end)
