-- A handle or a buffer cannot be forged: the metatables are out of a
-- script's reach (__metatable), and where the debug library reaches them
-- anyway, every check looks at the userdata itself (a full userdata of the
-- struct's size with its kind's tag), so that no value given, stripped of
-- or lent a metatable passes for one. Each case below crashed the
-- interpreter before the tag (issue 16).
local helpers = require "helpers"
local imalloc = helpers.imalloc
local peer = require "imalloc_peer"

local m = assert(imalloc.get())
local hmt = debug.getmetatable(m)
local b0 = m:buffer(8)
local bmt = debug.getmetatable(b0)
b0:free()

-- f(...) with `value` given metatable `mt` by the debug library; the
-- metatable it had is given back whatever f does.
local function lent(value, mt, f)
  local old = debug.getmetatable(value)
  debug.setmetatable(value, mt)
  local ok, err = pcall(f, value)
  debug.setmetatable(value, old)
  if not ok then error(err, 0) end
end

describe("the metatables", function()
  it("are hidden from getmetatable and cannot be replaced", function()
    assert.equal("IMalloc", getmetatable(m))
    assert.equal("IMalloc buffer", getmetatable(m:buffer(1)))
    assert.has_error(function() setmetatable(m, {}) end)
    assert.has_error(function() setmetatable({}, getmetatable(m)) end)
  end)
end)

describe("a value given the handle's metatable by the debug library", function()
  it("is not a handle: a table", function()
    local t = {}
    debug.setmetatable(t, hmt)  -- returns true, not t, on Lua 5.1
    assert.is_nil(imalloc.type(t))
    assert.is_nil(peer.malloc_of(t))
    assert.has_error(function() t:alloc(8) end,
      "calling 'alloc' on bad self (IMalloc expected, got table)")
    assert.is_false(t == m)
    hmt.__gc(t)  -- a finalizer leaves alone what is not a handle
    debug.setmetatable(t, nil)
  end)

  it("is not a handle: a file", function()
    local f = assert(io.tmpfile())
    lent(f, hmt, function(x)
      assert.is_nil(imalloc.type(x))
      assert.is_nil(peer.malloc_of(x))
      assert.has_error(function() x:alloc(8) end,
        "calling 'alloc' on bad self (IMalloc expected, got userdata)")
      assert.has_error(function() x:heapminimize() end)
      assert.has_error(function() tostring(x) end)
      hmt.__gc(x)
    end)
    f:close()
  end)

  it("is not a handle: a light userdata (every one shares the metatable)", function()
    local p = assert(m:alloc(8))
    lent(p, hmt, function(x)
      assert.is_nil(imalloc.type(x))
      assert.is_nil(peer.malloc_of(x))
      assert.has_error(function() x:alloc(8) end,
        "calling 'alloc' on bad self (IMalloc expected, got light userdata)")
      hmt.__gc(x)
    end)
    m:free(p)
  end)

  it("is not a handle: a buffer", function()
    local b = m:buffer(16)
    lent(b, hmt, function(x)
      assert.is_nil(imalloc.type(x))
      assert.is_nil(peer.malloc_of(x))
      -- named by its tag, whatever metatable it has now
      assert.has_error(function() x:alloc(8) end,
        "calling 'alloc' on bad self (IMalloc expected, got IMalloc buffer)")
      assert.has_error(function() x:read(0) end)
      hmt.__gc(x)
    end)
    assert.equal(16, #b)  -- still a buffer, untouched
    b:free()
  end)
end)

describe("a value given the buffer's metatable by the debug library", function()
  it("is not a buffer: a handle, a table, a file, a light userdata", function()
    local f = assert(io.tmpfile())
    local p = assert(m:alloc(8))
    for _, v in ipairs { assert(imalloc.get()), {}, f, p } do
      lent(v, bmt, function(x)
        assert.is_nil(imalloc.type(x))
        assert.is_nil(peer.buffer_ptr(x))
        assert.has_error(function() return bmt.__len(x) end)  -- 5.1: no __len of tables
        assert.has_error(function() x:read() end)
        assert.has_error(function() x:write("ab") end)
        assert.has_error(function() x:free() end)
        assert.has_error(function() tostring(x) end)
        bmt.__gc(x)
      end)
    end
    assert.equal(m, imalloc.wrap(m:pointer()))  -- the handle was left alone
    m:free(p)
    f:close()
  end)
end)

describe("a handle given another metatable by the debug library", function()
  it("is not a handle, and is named by its type, not by its tag", function()
    local h = assert(imalloc.get())
    local alloc = m.alloc
    lent(h, {}, function(x)
      assert.has_error(function() alloc(x, 8) end,
        "bad argument #1 to 'alloc' (IMalloc expected, got userdata)")
    end)
    h:release()
  end)
end)

describe("the registry's table of names removed by the debug library", function()
  it("leaves an error without the binding's name for its function, and no crash", function()
    local registry = debug.getregistry()
    local names = registry["imalloc.names"]
    assert.equal("table", type(names))
    registry["imalloc.names"] = nil
    local ok, err = pcall(m.alloc, m, -1)
    registry["imalloc.names"] = names
    assert.is_false(ok)
    assert.matches("bad argument #2 to '%?'", err)
    ok, err = pcall(m.alloc, m, -1)
    assert.matches("bad argument #2 to 'alloc'", err)  -- named again
  end)
end)

-- The record of the blocks buffers own is user value 1 of the registry's
-- "imalloc.owned": before 5.4, index 1 of the table that is its one user
-- value (its environment in 5.1 and LuaJIT; src/luacompat.h). The debug
-- library can put any value there, and on 5.2 and 5.3 replace that table.
local owned = debug.getregistry()["imalloc.owned"]
local records, replace
local tamperings = {}  -- {name, function that tampers and returns its undoing}
if _VERSION == "Lua 5.4" then
  records = function() return (debug.getuservalue(owned, 1)) end
  replace = function(v) debug.setuservalue(owned, v, 1) end
else
  -- by _VERSION: a compatibility library may lend 5.2+ a debug.getfenv
  local box = _VERSION == "Lua 5.1" and debug.getfenv(owned) or debug.getuservalue(owned)
  records = function() return rawget(box, 1) end
  replace = function(v) rawset(box, 1, v) end
  if _VERSION ~= "Lua 5.1" then
    tamperings[1] = { "the table of user values gone", function()
      debug.setuservalue(owned, nil)
      return function() debug.setuservalue(owned, box) end
    end }
  end
end
for _, case in ipairs({ { "nil", nil }, { "42", 42 }, { "'x'", "x" } }) do
  local name, v = case[1], case[2]
  tamperings[#tamperings + 1] = { name, function()
    replace(v)
    assert.equal(v, records(), name)
    return function() end
  end }
end

describe("the record of buffer-owned blocks replaced by the debug library", function()
  it("by what is not a table: no buffer is made until it is put back, and no crash", function()
    collectgarbage()  -- no buffer alive but those made here
    collectgarbage()
    local kept = records()
    assert.equal("table", type(kept))
    local u = assert(imalloc.get()):setchecks(false)
    for _, case in ipairs(tamperings) do
      local name, tamper = case[1], case[2]
      -- the buffers below are recorded in a table of their own, so that
      -- `kept` is left with no record of theirs
      replace({})
      local b1 = m:buffer(8)
      local b2 = m:buffer(16)
      u:free(b2:ptr())  -- behind b2's back
      local many = {}  -- enough that forgetting them would shrink a table
      for i = 1, 80 do many[i] = m:buffer(8) end
      local undo = tamper()
      local p = m:alloc(8)
      m:free(p)  -- looked up in no table: not owned
      local ok, err = pcall(m.buffer, m, 8)
      assert.is_false(ok, name)
      assert.matches("the record of buffer-owned blocks is not a table", err, 1, true)
      -- that buffer owns its block all the same: its __gc frees it, and
      -- must count it out as it was counted in (else, with no other
      -- buffer alive, b3 below would go unprotected)
      collectgarbage()
      collectgarbage()
      -- forgotten with no table to forget them in
      assert.has_error(function() b2:free() end,
        "buffer's block was freed or resized behind its back")
      for i = 1, 80 do many[i]:free() end
      b1:free()
      undo()
      replace(kept)
      local b3 = m:buffer(8)
      ok, err = pcall(m.free, m, b3:ptr())
      assert.is_false(ok, name)
      assert.matches("pointer is owned by a buffer", err, 1, true)
      b3:free()
    end
    u:release()
  end)
end)

describe("a string as self", function()
  it("is not a handle, even as long as a handle while no handle is remembered", function()
    local h = assert(imalloc.get())
    h:heapminimize()  -- remembered by the check's fast path
    h:release()       -- forgotten: the fast path remembers nothing now
    local alloc = m.alloc
    local s = ("x"):rep(helpers.testkit.handle_size)
    assert.has_error(function() alloc(s, 8) end,
      "bad argument #1 to 'alloc' (IMalloc expected, got string)")
  end)
end)

describe("a handle that dies without its finalizer", function()
  it("does not make a released handle at its address pass as live", function()
    -- The handles' __gc replaced through the debug library: a handle then
    -- dies without being released or forgotten by the check's fast path,
    -- and a released handle (the one a failed get makes, kept by this
    -- __gc) may take its memory.
    local gc = hmt.__gc
    local kept = {}
    local reused = 0
    local ok, err = pcall(function()
      for _ = 1, 50 do
        hmt.__gc = function() end
        local h = assert(imalloc.get())
        h:heapminimize()  -- the fast path remembers it
        local address = helpers.testkit.address_of(h)
        h = nil  -- luacheck: ignore
        collectgarbage()
        collectgarbage()
        hmt.__gc = function(x) kept[#kept + 1] = x end
        for _ = 1, 8 do
          assert.is_nil(imalloc.get(0))  -- a released handle, garbage
        end
        collectgarbage()
        hmt.__gc = function() end
        for _, x in ipairs(kept) do
          if helpers.testkit.address_of(x) == address then reused = reused + 1 end
          assert.equal("released IMalloc", imalloc.type(x))
          assert.has_error(function() x:alloc(8) end, "attempt to use a released IMalloc")
          assert.has_error(function() x:heapminimize() end, "attempt to use a released IMalloc")
        end
        kept = {}
      end
    end)
    hmt.__gc = gc
    assert(ok, err)
    -- the case the test is for happened at least once (the heap reuses
    -- freed memory of one size at once); counted, not required, as the
    -- heap's policy is not the module's
    print(("\nforgery: a released handle took a dead handle's address %d times in 50"):format(reused))
  end)
end)
