-- A second load of the module (package.loaded cleared, require again, as
-- busted's auto-insulate and hot-reload loops do) finds the state of the
-- first: handles and buffers of either load stay fully protected.
local OWNED = "pointer is owned by a buffer (free or detach the buffer)"

local function bad(fname, n, msg)
  return ("bad argument #%d to '%s' (%s)"):format(n, fname, msg)
end

--- The module loaded afresh, as a script that clears package.loaded sees it.
local function reload()
  for name in pairs(package.loaded) do
    if name == "imalloc" or name:match("^imalloc%.") then package.loaded[name] = nil end
  end
  return require "imalloc"
end

describe("a second load of the module", function()
  it("lets the names of its closures go with them", function()
    -- the registry's closure -> name table is weak: a load that is gone
    -- leaves nothing in it
    local saved = package.loaded["imalloc.core"]
    local seen = setmetatable({}, { __mode = "k" })
    package.loaded["imalloc.core"] = nil
    do
      -- read after the load: this may be the process's first (the order
      -- is shuffled), and the load makes the table
      local fresh = require "imalloc.core"
      local names = debug.getregistry()["imalloc.names"]
      assert.equal("imalloc.get", names[fresh.get])
      seen[fresh.get] = true
    end
    package.loaded["imalloc.core"] = saved
    collectgarbage("collect")
    collectgarbage("collect")
    assert.is_nil(next(seen))
  end)

  it("keeps a buffer of the first load owning its block", function()
    local first = reload()
    local m = assert(first.get())
    local b = assert(m:buffer(16))
    local second = reload()
    assert.are_not.equal(first, second)
    local m2 = assert(second.get())
    assert.has_error(function() m2:free(b:ptr()) end, bad("free", 1, OWNED))
    assert.has_error(function() m2:realloc(b:ptr(), 4) end, bad("realloc", 1, OWNED))
    assert.has_error(function() m2:adopt(b:ptr()) end, bad("adopt", 1, OWNED))
    -- and the first load's functions still see it
    assert.has_error(function() m:free(b:ptr()) end, bad("free", 1, OWNED))
    b:write("still mine")
    assert.equal("still mine", b:read(10))
  end)

  it("keeps a buffer of the second load protected from a handle of the first", function()
    local first = reload()
    local m = assert(first.get())
    local free = m.free  -- the first load's closure, whatever __index says later
    local second = reload()
    local b = assert(assert(second.get()):buffer(8))
    assert.has_error(function() free(m, b:ptr()) end, bad("free", 2, OWNED))
    assert.has_error(function() m:free(b:ptr()) end, bad("free", 1, OWNED))
  end)

  it("forgets a block that a buffer of the first load gives up after it", function()
    local m = assert(reload().get())
    local free = m.free  -- the first load's closure
    local b = assert(m:buffer(8))
    reload()
    local p = b:detach()  -- through the second load's methods
    free(m, p)  -- not refused as owned by a buffer
    assert.equal(0, m:didalloc(p))
  end)

  it("has functions of both loads agree on what a handle and a buffer are", function()
    local first = reload()
    local m = assert(first.get())
    local b1 = assert(m:buffer(4))
    local second = reload()
    local m2 = assert(second.get())
    local b2 = assert(m2:buffer(4))
    assert.equal("IMalloc", first.type(m2))
    assert.equal("IMalloc", second.type(m))
    assert.equal("buffer", first.type(b2))
    assert.equal("buffer", second.type(b1))
    assert.equal(debug.getmetatable(m), debug.getmetatable(m2))
    assert.equal(debug.getmetatable(b1), debug.getmetatable(b2))
    assert.is_true(m == m2)
    b1:free()
    b2:free()
  end)
end)
