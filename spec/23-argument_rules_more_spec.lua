-- Argument rules that every method keeps however it is called (issue 16,
-- "smaller things"): errors name a method called through pcall or a
-- variable, data is a string and never a number, addresses are never
-- negative, and a pointer the allocator does not know is the caller's
-- mistake even on an unchecked handle.
local helpers = require "helpers"
local imalloc = helpers.imalloc

local m = assert(imalloc.get())

describe("an argument error of a method called with no name Lua can see", function()
  it("names the method, counting arguments as the caller passed them", function()
    local p = assert(m:alloc(8))
    local ok, err = pcall(m.read, m, "x")
    assert.is_false(ok)
    assert.equal("bad argument #2 to 'read' (pointer expected, got string)", err)
    ok, err = pcall(m.free, m, {})
    assert.equal("bad argument #2 to 'free' (pointer expected, got table)", err)
    local b = m:buffer(4)
    ok, err = pcall(b.read, b, -1)
    assert.equal("bad argument #2 to 'read' (length must not be negative)", err)
    ok, err = pcall(b.write, {}, "x")
    assert.equal("bad argument #1 to 'write' (IMalloc buffer expected, got table)", err)
    b:free()
    m:free(p)
  end)

  it("names module and spy functions after their module on every Lua", function()
    local ok, err = pcall(imalloc.wrap, 1)
    assert.is_false(ok)
    assert.equal("bad argument #1 to 'imalloc.wrap' (light userdata expected, got number)", err)
    ok, err = pcall(imalloc.spy.fail, {nth = 0})
    assert.equal("bad argument #1 to 'imalloc.spy.fail' (nth must be an integer of at least 1)", err)
  end)

  it("is Lua's own message where Lua knows the name", function()
    assert.has_error(function() m:read("x") end,
      "bad argument #1 to 'read' (pointer expected, got string)")
    local read = m.read
    assert.has_error(function() read(m, "x") end,
      "bad argument #2 to 'read' (pointer expected, got string)")
  end)
end)

describe("data given as a number", function()
  it("is refused by write, strdup, wstrdup, bufferof and queryinterface", function()
    local p = assert(m:alloc(8))
    local b = m:buffer(8)
    assert.has_error(function() m:write(p, 12) end,
      "bad argument #2 to 'write' (string expected, got number)")
    assert.has_error(function() b:write(12) end,
      "bad argument #1 to 'write' (string expected, got number)")
    assert.has_error(function() m:strdup(12) end,
      "bad argument #1 to 'strdup' (string expected, got number)")
    assert.has_error(function() m:wstrdup(12) end,
      "bad argument #1 to 'wstrdup' (string expected, got number)")
    assert.has_error(function() m:bufferof(12) end,
      "bad argument #1 to 'bufferof' (string expected, got number)")
    assert.has_error(function() m:queryinterface(2) end,
      "bad argument #1 to 'queryinterface' (string expected, got number)")
    b:free()
    m:free(p)
  end)
end)

describe("a negative address", function()
  it("is out of range on every Lua", function()
    for _, a in ipairs { -1, -16, helpers.mininteger } do
      assert.has_error(function() imalloc.address(a) end,
        "bad argument #1 to 'address' (address out of range)")
      assert.has_error(function() m:didalloc(a) end,
        "bad argument #1 to 'didalloc' (address out of range)")
      assert.has_error(function() m:free(a) end,
        "bad argument #1 to 'free' (address out of range)")
    end
  end)
end)

-- Only the built-in allocator answers Realloc of a pointer it does not
-- know (with NULL); ole32 is handed it as setchecks(false) promises, and a
-- heap may fault on it.
local on_builtin = helpers.windows and pending or it

describe("realloc on an unchecked handle", function()
  on_builtin("raises for a pointer its allocator does not know, rather than answer out of memory", function()
    local u = assert(imalloc.get()):setchecks(false)
    local foreign = helpers.testkit.static_pointer()
    assert.has_error(function() u:realloc(foreign, 32) end,
      "bad argument #1 to 'realloc' (pointer is not a live block of this IMalloc)")
    u:release()
  end)
end)

describe("the table of blocks that buffers own", function()
  it("gives its room back once the buffers are gone", function()
    collectgarbage()
    collectgarbage()
    local before = collectgarbage("count")
    local t = {}
    for i = 1, 100000 do t[i] = m:buffer(0) end
    local peak = collectgarbage("count")
    for i = 1, #t do t[i]:free() end
    t = nil  -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    local after = collectgarbage("count")
    -- 100000 buffers take some 10 MB of Lua memory, their record a few; all
    -- of it goes back (a margin of 256 KB for the runtimes' own growth)
    assert.is_true(peak - before > 4096, ("peak %.0f KB over %.0f KB"):format(peak, before))
    assert.is_true(after - before < 256, ("%.0f KB kept"):format(after - before))
  end)
end)
