-- A finalizer runs wherever the collector may run: inside any Lua API call
-- that allocates. Here a garbage object's finalizer frees the very block, or
-- releases the very handle, that a method is using, at the first point of
-- that method where the collector runs. Whatever the method does then, it
-- must not crash, call through a released handle or touch a freed block: it
-- completes, or raises one of the errors below.
--
-- Under an ordinary Lua the collector rarely runs at that point, so this
-- spec mostly checks that nothing goes wrong. The hardgc-* tests
-- (cmake/hardgc.cmake, docs/hardgc.md) run it under a Lua built with
-- HARDMEMTESTS, where every such point is a full collection, with
-- IMALLOC_HARDGC=1: each case then asserts that its finalizer ran inside
-- the method (or, for a method that allocates nothing, did not) and the
-- exact outcome, which is then deterministic. Lua 5.1 and LuaJIT have no
-- such switch, but a pause of 0 and a step multiplier of 0 make every
-- collector check run a whole cycle, finalizers included (lgc.c luaC_step,
-- lj_gc.c lj_gc_step: a multiplier of 0 means no limit): this spec sets
-- them around each call there. Blocks are 1 MiB: with IMALLOC_RETAIN=0 the
-- built-in allocator unmaps such a block when it is freed, so a touch
-- faults even without AddressSanitizer.
local helpers = require "helpers"
local imalloc = helpers.imalloc

-- IMALLOC_HARDGC: set by the hardgc-* tests. The exact outcomes are
-- asserted under the HARDMEMTESTS builds of Lua 5.4 and 5.2; the 5.1 run
-- checks that nothing crashes and every outcome is an allowed one.
local harness = os.getenv("IMALLOC_HARDGC") ~= nil
local strict = harness and (helpers.lua == "5.4" or helpers.lua == "5.2")
-- 5.1 and LuaJIT: whole cycles at every check (see above).
local knobs = helpers.lua == "5.1" or helpers.lua == "luajit"
if knobs and jit then jit.off() end  -- LuaJIT finalizes nothing on a trace exit

local SIZE = 1048576

local RELEASED = "attempt to use a released IMalloc"
local NOT_LIVE = "pointer is not a live block of this IMalloc"
local BEHIND = "buffer's block was freed or resized behind its back"
local NUMBER = "string expected, got number"
local BOUNDS = "out of bounds"
local ALLOWED = { RELEASED, NOT_LIVE, BEHIND, NUMBER, BOUNDS }

-- The outcome of a pcall: "ok" or the allowed error it raised (any other
-- error is returned whole, and fails the allowed-set assertion).
local function outcome(ok, err)
  if ok then return "ok" end
  err = tostring(err)
  for _, e in ipairs(ALLOWED) do
    if err:find(e, 1, true) then return e end
  end
  return err
end

-- arm(rec): an object that is garbage as soon as arm returns, whose
-- finalizer, if it runs while rec.target is on the call stack, calls
-- rec.harm(). rec.inside and rec.ran say what happened. Made in a function
-- of its own, so that no register of the caller keeps it alive.
local arm
local function finalizer(rec)
  return function()
    rec.ran = true
    -- Lua 5.2 collects on entering any function (ldo.c luaD_precall): on
    -- entering pcall, then the method, before the method checks anything.
    -- There a finalizer that runs outside the method, or on entering it,
    -- arms another one, garbage as soon as it returns, for the next point
    -- where the collector runs: the first inside the method's body.
    if rec.entry and (rec.rearms or 0) < 4 then
      local here = debug.getinfo(2, "f").func == rec.target
      if not here or not rec.entered then
        rec.entered = rec.entered or here
        rec.rearms = (rec.rearms or 0) + 1
        rec.ran = false
        arm(rec)
        return
      end
    end
    local level = 2
    while true do
      local info = debug.getinfo(level, "f")
      if not info then break end
      if info.func == rec.target then
        rec.inside = true
        break
      end
      level = level + 1
    end
    if rec.inside then
      local ok, err = pcall(rec.harm)
      rec.harm_error = not ok and tostring(err) or nil
    end
  end
end

function arm(rec)
  if newproxy then  -- 5.1, LuaJIT: only userdata have finalizers
    local p = newproxy(true)
    getmetatable(p).__gc = finalizer(rec)
  else
    setmetatable({}, { __gc = finalizer(rec) })
  end
end

-- The pause sets the threshold only when a cycle ends: one full cycle
-- right after setting it.
local saved_pause, saved_stepmul
local function knobs_on()
  if knobs then
    saved_pause = collectgarbage("setpause", 0)
    saved_stepmul = collectgarbage("setstepmul", 0)
    collectgarbage()
  end
end
local function knobs_off()
  if knobs then
    collectgarbage("setpause", saved_pause)
    collectgarbage("setstepmul", saved_stepmul)
  end
end

-- The fixture of one case: a handle m it may release, an unchecked handle u
-- that frees behind everyone's back, a 1 MiB block p, and a buffer b owning
-- another 1 MiB block.
local function fixture(content)
  local s = {}
  s.m = assert(imalloc.get())
  s.u = assert(imalloc.get()):setchecks(false)
  s.p = assert(s.m:alloc(SIZE))
  s.m:write(s.p, content)
  s.b = assert(s.m:bufferof(content))
  -- metamethods called directly: the operators would reach them through
  -- code that allocates first
  local mt = debug.getmetatable(s.b)
  s.len, s.tostring = mt.__len, mt.__tostring
  return s
end

local function teardown(s)
  -- What the case left: the block if still live, the handles.
  local g = assert(imalloc.get())
  if g:didalloc(s.p) == 1 then
    pcall(g.free, g, s.p)
  end
  -- a block the call returned (alloc, realloc, strdup, detach)
  local r = s.result
  -- (b:ptr()'s is the buffer's, which refuses)
  if type(r) == "userdata" and not imalloc.type(r) and g:didalloc(r) == 1 then
    pcall(g.free, g, r)
  end
  g:release()
  if imalloc.type(s.m) == "IMalloc" then s.m:release() end
  s.u:release()
  s.b = nil
  collectgarbage()
  collectgarbage()
end

local ascii = ("A"):rep(SIZE)         -- no NUL: string reads to the end
local utf16 = ("A\0"):rep(SIZE / 2)   -- 2^19 units, no NUL
-- A C string and a UTF-16 string of n "A"s, each with its NUL.
local function cstring(n) return ("A"):rep(n) .. "\0" end
local function wide(n) return ("A\0"):rep(n) .. "\0\0" end
-- How many times the growing harms make the string in p 8 characters
-- longer, once at each point where the collector runs: a method that
-- measures, makes room, then measures again loops once more for each
-- (5.4) or each other (5.2's m:string, which collects twice a round),
-- with one room at a time on the stack: a C function is given 20 slots,
-- and an API-checking Lua aborts on the 21st. (Each point is a full
-- collection under the harness: no more than that.)
local GROWS = helpers.lua == "5.2" and 40 or 20
local WIDE_GROWS = 20  -- m:wstring: the same on every Lua (5.4 kills what it shows)

-- steps(rec, list): a harm that calls list[i] at its i-th run inside the
-- method and, while steps remain, arms the next finalizer, for the next
-- point of the method where the collector runs.
local function steps(rec, list)
  local i = 0
  return function()
    i = i + 1
    list[i]()
    if list[i + 1] then arm(rec) end
  end
end

-- The harms a finalizer does (rec: the case's record, for steps).
local harms = {
  free = function(s) return function() s.u:free(s.p) end end,
  -- p's string 8 characters longer, GROWS (WIDE_GROWS) times: it ends
  -- 8 * (GROWS + 1) characters long
  grow_c = function(s, rec)
    local list = {}
    for i = 1, GROWS do list[i] = function() s.u:write(s.p, cstring(8 * (i + 1))) end end
    return steps(rec, list)
  end,
  grow_wide = function(s, rec)
    local list = {}
    for i = 1, WIDE_GROWS do list[i] = function() s.u:write(s.p, wide(8 * (i + 1))) end end
    return steps(rec, list)
  end,
  -- p's C string twice as long, then nothing twice, then p freed: under
  -- 5.2, m:string(p) collects twice for each room (the second time after
  -- it measured), so the fourth run comes once the bytes are in the room
  grow_then_free = function(s, rec)
    local function none() end
    return steps(rec, { function() s.u:write(s.p, cstring(16)) end,
      none, none, function() s.u:free(s.p) end })
  end,
  -- p shrunk to half its size: in place with the built-in allocator (the
  -- harness); where it moved, p is gone and teardown frees the new block
  shrink = function(s)
    return function()
      local q = assert(s.u:realloc(s.p, SIZE / 2))
      assert(q == s.p or not strict, "the block moved")
      s.p = q
    end
  end,
  release = function(s) return function() s.m:release() end end,
  -- the buffer's block, behind its back
  free_buffer = function(s)
    local q = s.b:ptr()
    return function()
      if s.m:didalloc(q) == 1 then s.u:free(q) end
    end
  end,
}

-- The C functions of the methods, which the finalizer looks for on the
-- stack (debug.getmetatable: a protected metatable hides nothing from it).
local H, B, BMT
do
  local m = imalloc.get()
  local b = m:buffer(1)
  H = debug.getmetatable(m).__index
  BMT = debug.getmetatable(b)
  B = BMT.__index
  b:free()
  m:release()
end

-- Each case: the method (the C function the finalizer looks for on the
-- stack), the harm, the content of the blocks, the call (after arm: nothing
-- may allocate before the method runs), and, under the harness (Lua 5.4),
-- what must happen: whether the finalizer runs inside the method (`inside`)
-- and the outcome. A read completes: 5.4's lua_pushlstring copies the bytes
-- before it collects. A number as data is refused, and the error message
-- is an allocation, after which nothing is used. `by_lua` overrides these
-- for one runtime.
local cases = {
  { "m:read(p) while p is freed", H.read, "free", ascii,
    function(s) return pcall(s.m.read, s.m, s.p) end,
    inside = true, expect = "ok",
    -- 5.2 collects before copying: the bytes go through room made first
    by_lua = { ["5.2"] = { inside = true, expect = NOT_LIVE } } },
  { "m:string(p) while p is freed", H.string, "free", ascii,
    function(s) return pcall(s.m.string, s.m, s.p) end,
    inside = true, expect = "ok",
    -- 5.2 collects before copying: the bytes go through room made first
    by_lua = { ["5.2"] = { inside = true, expect = NOT_LIVE } } },
  { "m:wstring(p) while p is freed", H.wstring, "free", utf16,
    function(s) return pcall(s.m.wstring, s.m, s.p) end,
    inside = true, expect = NOT_LIVE },
  -- the string as it was when the method ends: the room is measured again
  -- (and made again) after each point where a finalizer ran. 5.3 and 5.4's
  -- lua_pushlstring copy first, then collect: m:string(p) returns the
  -- string as it was before.
  { "m:wstring(p) while its string grows, " .. WIDE_GROWS .. " times", H.wstring, "grow_wide",
    wide(8), function(s) return pcall(s.m.wstring, s.m, s.p) end,
    inside = true, expect = "ok", value = ("A"):rep(8 * (WIDE_GROWS + 1)) },
  { "m:string(p) while its string grows, " .. GROWS .. " times", H.string, "grow_c",
    cstring(8), function(s) return pcall(s.m.string, s.m, s.p) end,
    inside = true, expect = "ok", value = ("A"):rep(8),
    by_lua = { ["5.2"] = { inside = true, expect = "ok", value = ("A"):rep(8 * (GROWS + 1)) } } },
  -- 5.2: freed as the bytes are pushed, from the room made for them
  { "m:string(p) while its string grows, then p is freed", H.string, "grow_then_free",
    cstring(8), function(s) return pcall(s.m.string, s.m, s.p) end,
    inside = true, expect = "ok", value = ("A"):rep(8),
    by_lua = { ["5.2"] = { inside = true, expect = "ok", value = ("A"):rep(16) } } },
  -- 5.2: the room is made for the whole block, which is then half as long
  { "m:read(p) while p shrinks", H.read, "shrink", ascii,
    function(s) return pcall(s.m.read, s.m, s.p) end,
    inside = true, expect = "ok", value = ascii,
    by_lua = { ["5.2"] = { inside = true, expect = BOUNDS } } },
  { "m:write(p, <number>) while p is freed", H.write, "free", ascii,
    function(s) return pcall(s.m.write, s.m, s.p, 12345) end,
    inside = true, expect = NUMBER },
  { "m:write(p, s) while p is freed", H.write, "free", ascii,
    function(s) return pcall(s.m.write, s.m, s.p, "xyz") end,
    inside = false, expect = "ok" },
  { "m:strdup(<number>) while m is released", H.strdup, "release", ascii,
    function(s) return pcall(s.m.strdup, s.m, 12345) end,
    inside = true, expect = NUMBER },
  { "m:wstrdup(<number>) while m is released", H.wstrdup, "release", ascii,
    function(s) return pcall(s.m.wstrdup, s.m, 12345) end,
    inside = true, expect = NUMBER },
  { "m:strdup(s) while m is released", H.strdup, "release", ascii,
    function(s) return pcall(s.m.strdup, s.m, "xyz") end,
    inside = false, expect = "ok" },
  { "m:buffer(n) while m is released", H.buffer, "release", ascii,
    function(s) return pcall(s.m.buffer, s.m, 64) end,
    inside = true, expect = RELEASED },
  { "m:bufferof(s) while m is released", H.bufferof, "release", ascii,
    function(s) return pcall(s.m.bufferof, s.m, "xyz") end,
    inside = true, expect = RELEASED },
  { "m:bufferof(<number>) while m is released", H.bufferof, "release", ascii,
    function(s) return pcall(s.m.bufferof, s.m, 12345) end,
    inside = true, expect = NUMBER },
  { "m:adopt(p) while m is released", H.adopt, "release", ascii,
    function(s) return pcall(s.m.adopt, s.m, s.p) end,
    inside = true, expect = RELEASED },
  { "m:adopt(p) while p is freed", H.adopt, "free", ascii,
    function(s) return pcall(s.m.adopt, s.m, s.p) end,
    inside = true, expect = NOT_LIVE },
  { "m:queryinterface(iid) while m is released", H.queryinterface, "release", ascii,
    function(s) return pcall(s.m.queryinterface, s.m, imalloc.IID_IMalloc) end,
    inside = true, expect = RELEASED },
  { "m:alloc(n) while m is released", H.alloc, "release", ascii,
    function(s) return pcall(s.m.alloc, s.m, 64) end,
    inside = false, expect = "ok" },
  { "m:realloc(p, n) while p is freed", H.realloc, "free", ascii,
    function(s) return pcall(s.m.realloc, s.m, s.p, 2 * SIZE) end,
    inside = false, expect = "ok" },
  { "m:free(p) while p is freed", H.free, "free", ascii,
    function(s) return pcall(s.m.free, s.m, s.p) end,
    inside = false, expect = "ok" },
  { "m:getsize(p) while p is freed", H.getsize, "free", ascii,
    function(s) return pcall(s.m.getsize, s.m, s.p) end,
    inside = false, expect = "ok" },
  { "m:didalloc(p) while m is released", H.didalloc, "release", ascii,
    function(s) return pcall(s.m.didalloc, s.m, s.p) end,
    inside = false, expect = "ok" },
  { "m:addref() while m is released", H.addref, "release", ascii,
    function(s) return pcall(s.m.addref, s.m) end,
    inside = false, expect = "ok" },
  { "m:release() while m is released", H.release, "release", ascii,
    function(s) return pcall(s.m.release, s.m) end,
    inside = false, expect = "ok" },
  { "b:read() while its block is freed", B.read, "free_buffer", ascii,
    function(s) return pcall(s.b.read, s.b) end,
    inside = true, expect = "ok",
    -- 5.2 collects before copying: the bytes go through room made first
    by_lua = { ["5.2"] = { inside = true, expect = BEHIND } } },
  { "b:string() while its block is freed", B.string, "free_buffer", ascii,
    function(s) return pcall(s.b.string, s.b) end,
    inside = true, expect = "ok",
    -- 5.2 collects before copying: the bytes go through room made first
    by_lua = { ["5.2"] = { inside = true, expect = BEHIND } } },
  { "b:wstring() while its block is freed", B.wstring, "free_buffer", utf16,
    function(s) return pcall(s.b.wstring, s.b) end,
    inside = true, expect = BEHIND },
  { "b:write(<number>) while its block is freed", B.write, "free_buffer", ascii,
    function(s) return pcall(s.b.write, s.b, 12345) end,
    inside = true, expect = NUMBER },
  { "b:write(s) while its block is freed", B.write, "free_buffer", ascii,
    function(s) return pcall(s.b.write, s.b, "xyz") end,
    inside = false, expect = "ok" },
  { "b:resize(n) while its block is freed", B.resize, "free_buffer", ascii,
    function(s) return pcall(s.b.resize, s.b, 2 * SIZE) end,
    inside = false, expect = "ok" },
  { "b:ptr() while its block is freed", B.ptr, "free_buffer", ascii,
    function(s) return pcall(s.b.ptr, s.b) end,
    inside = false, expect = "ok" },
  { "b:detach() while its block is freed", B.detach, "free_buffer", ascii,
    function(s) return pcall(s.b.detach, s.b) end,
    inside = false, expect = "ok" },
  { "b:free() while its block is freed", B.free, "free_buffer", ascii,
    function(s) return pcall(s.b.free, s.b) end,
    inside = false, expect = "ok" },
  { "#b while its block is freed", BMT.__len, "free_buffer", ascii,
    function(s) return pcall(s.len, s.b) end,
    inside = false, expect = "ok" },
  -- the text is made (an allocation) of what was read before
  { "tostring(b) while its block is freed", BMT.__tostring, "free_buffer", ascii,
    function(s) return pcall(s.tostring, s.b) end,
    inside = true, expect = "ok" },
}

describe("a finalizer that frees or releases what a method is using", function()
  if harness and (helpers.lua == "5.4" or helpers.lua == "5.2") then
    it("runs under a Lua that collects at every allocation (the harness)", function()
      local rec = { ran = false }
      local function garbage()
        if newproxy then
          getmetatable(newproxy(true)).__gc = function() rec.ran = true end
        else
          setmetatable({}, { __gc = function() rec.ran = true end })
        end
      end
      knobs_on()
      garbage()
      local s = ("x"):rep(2, ",")
      knobs_off()
      assert.is_true(rec.ran, "IMALLOC_HARDGC is set, but this Lua (" .. helpers.lua
        .. ") did not run a finalizer at the first allocation")
      assert.equal("x,x", s)
    end)
  end

  for _, c in ipairs(cases) do
    local name, target, harm, content, run = c[1], c[2], c[3], c[4], c[5]
    it(name, function()
      local s = fixture(content)
      local rec = { target = target, ran = false, inside = false,
                    entry = harness and helpers.lua == "5.2" }
      rec.harm = harms[harm](s, rec)
      collectgarbage()
      knobs_on()
      arm(rec)
      local ok, err = run(s)
      knobs_off()
      if ok then s.result = err end
      collectgarbage()
      collectgarbage()
      assert.is_true(rec.ran, "the finalizer never ran")
      assert.is_nil(rec.harm_error)
      local got = outcome(ok, err)
      assert.is_truthy(got == "ok" or got == RELEASED or got == NOT_LIVE or got == BEHIND
        or got == NUMBER or got == BOUNDS, "unexpected outcome: " .. got)
      if strict then
        local want = c.by_lua and c.by_lua[helpers.lua] or c
        assert.equal(want.inside, rec.inside,
          want.inside and "the finalizer did not run inside the method"
          or "the finalizer ran inside the method, which should allocate nothing there")
        assert.equal(want.expect, got)
        if want.value then
          assert.equal(#want.value, #s.result)
          assert.equal(want.value, s.result)
        end
      end
      teardown(s)
    end)
  end
end)
