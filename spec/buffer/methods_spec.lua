-- Buffers: blocks owned by Lua, freed by the collector unless detached.
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit

local function bad(fname, n, msg)
  return ("bad argument #%d to '%s' (%s)"):format(n, fname, msg)
end
local OWNED = "pointer is owned by a buffer (free or detach the buffer)"

describe("handle:buffer", function()
  local m
  before_each(function() m = imalloc.get() end)

  it("returns a buffer owning a new block of n bytes", function()
    local b = m:buffer(32)
    assert.equal("buffer", imalloc.type(b))
    assert.equal(32, #b)
    assert.equal(1, m:didalloc(b:ptr()))
    assert.equal(32, m:getsize(b:ptr()))
    assert.equal(("IMalloc buffer (32 bytes at 0x%x)"):format(imalloc.address(b:ptr())), tostring(b))
  end)

  it("frees the block when collected", function()
    local p
    do
      local b = m:buffer(8)
      p = b:ptr()
    end
    helpers.collect()
    assert.equal(0, m:didalloc(p))
  end)

  it("raises for a bad size", function()
    assert.has_error(function() m:buffer(-1) end,
      bad("buffer", 1, "size must not be negative"))
    assert.has_error(function() m:buffer("8") end,
      bad("buffer", 1, "number expected, got string"))
  end)

  it("returns nil, 'not enough memory' for a size too large", function()
    assert.same({ nil, "not enough memory", 0x8007000E }, { m:buffer(helpers.hugesize) })
  end)
end)

describe("handle:adopt", function()
  local m
  before_each(function() m = imalloc.get() end)

  it("returns a buffer that owns and frees an existing block", function()
    local p = m:strdup("native")
    local b = m:adopt(p)
    assert.equal(7, #b)
    assert.equal("native\0", b:read())
    b = nil  -- luacheck: ignore
    helpers.collect()
    assert.equal(0, m:didalloc(p))
  end)

  it("raises for a block another buffer owns", function()
    local b = m:buffer(8)
    assert.has_error(function() m:adopt(b:ptr()) end, bad("adopt", 1, OWNED))
  end)

  it("raises for foreign, freed and NULL pointers, even with checks off", function()
    m:setchecks(false)
    local p = m:alloc(4)
    m:free(p)
    for _, q in ipairs { p, testkit.static_pointer(), testkit.stack_pointer() } do
      assert.has_error(function() m:adopt(q) end,
        bad("adopt", 1, "pointer is not a live block of this IMalloc"))
    end
    assert.has_error(function() m:adopt(nil) end, bad("adopt", 1, "NULL pointer"))
    m:setchecks(true)
  end)
end)

describe("a buffer's block", function()
  local m
  before_each(function() m = imalloc.get() end)

  it("cannot be freed or moved through the handle", function()
    local b = m:buffer(8)
    assert.has_error(function() m:free(b:ptr()) end, bad("free", 1, OWNED))
    assert.has_error(function() m:realloc(b:ptr(), 64) end, bad("realloc", 1, OWNED))
    assert.equal(8, #b)
  end)

  it("can be read and written through the handle", function()
    local b = m:buffer(4)
    m:write(b:ptr(), "wxyz")
    assert.equal("wxyz", b:read())
  end)
end)

describe("buffer:read and buffer:write", function()
  it("read and write within bounds and raise outside", function()
    local b = imalloc.get():buffer(5)
    assert.equal(b, b:write("hello"))
    b:write("J", 0)
    assert.equal("Jello", b:read())
    assert.equal("ll", b:read(2, 2))
    assert.has_error(function() b:write("!", 5) end,
      bad("write", 1, "out of bounds: 1 bytes at offset 5 of a 5-byte block"))
    assert.has_error(function() b:read(6) end,
      bad("read", 1, "out of bounds: 6 bytes at offset 0 of a 5-byte block"))
    assert.equal("Jello", b:read())
  end)
end)

describe("buffer:resize", function()
  local m
  before_each(function() m = imalloc.get() end)

  it("grows the block and keeps its bytes", function()
    local b = m:buffer(4):write("keep")
    assert.equal(b, b:resize(100000))
    assert.equal(100000, #b)
    assert.equal("keep", b:read(4))
    assert.equal(100000, m:getsize(b:ptr()))
  end)

  it("moves the ownership with the block", function()
    local b = m:buffer(4)
    local old = b:ptr()
    b:resize(helpers.pow2(20))
    if b:ptr() ~= old then
      assert.equal(0, m:didalloc(old))
    end
    assert.has_error(function() m:free(b:ptr()) end, bad("free", 1, OWNED))
  end)

  it("keeps a valid zero-length block for 0", function()
    local b = m:buffer(4):resize(0)
    assert.equal(0, #b)
    assert.equal(1, m:didalloc(b:ptr()))
    assert.equal("", b:read())
  end)

  it("returns nil, 'not enough memory' and leaves the buffer as it was", function()
    local b = m:buffer(4):write("same")
    assert.same({ nil, "not enough memory", 0x8007000E }, { b:resize(helpers.hugesize) })
    assert.equal(4, #b)
    assert.equal("same", b:read())
  end)
end)

describe("buffer:detach", function()
  it("returns the pointer and gives up ownership", function()
    local m = imalloc.get()
    local b = m:buffer(8)
    local p = b:detach()
    assert.equal("released buffer", imalloc.type(b))
    assert.equal("IMalloc buffer (released)", tostring(b))
    b = nil  -- luacheck: ignore
    helpers.collect()
    assert.equal(1, m:didalloc(p))  -- not freed by the collector
    m:free(p)                        -- and now free-able by hand
    assert.equal(0, m:didalloc(p))
  end)
end)

describe("buffer:free", function()
  it("frees now, once", function()
    local m = imalloc.get()
    local b = m:buffer(8)
    local p = b:ptr()
    assert.equal(0, select("#", b:free()))  -- returns nothing, not the buffer
    assert.equal(0, m:didalloc(p))
    assert.equal("released buffer", imalloc.type(b))
    debug.getmetatable(b).__gc(b)  -- a released buffer's finalizer does nothing
  end)
end)

describe("a released buffer", function()
  it("raises on every method", function()
    local b = imalloc.get():buffer(1)
    b:free()
    for name, args in pairs { read = {}, write = { "x" }, resize = { 1 }, ptr = {},
                              detach = {}, free = {} } do
      local call = helpers.method(name)
      assert.has_error(function() call(b, helpers.unpack(args)) end,
        "attempt to use a released buffer", name)
    end
    assert.has_error(function() return #b end, "attempt to use a released buffer")
  end)
end)

describe("a buffer's allocator", function()
  it("stays alive as long as the buffer, whatever the collector's order", function()
    local p = testkit.counting()
    local h = imalloc.wrap(p)
    local b = h:buffer(16)
    h:release()  -- the handle's reference is gone; the buffer holds its own
    assert.equal(2, testkit.counts(p).refs)
    b:write(("z"):rep(16))
    assert.equal(("z"):rep(16), b:read())
    b = nil  -- luacheck: ignore
    helpers.collect()
    local c = testkit.counts(p)
    assert.same({ 1, 1, 1 }, { c.refs, c.allocs, c.frees })
  end)

  it("is released once per buffer, with many buffers and handles collected together", function()
    local p = testkit.counting()
    local objects = {}
    for i = 1, 200 do
      local h = imalloc.wrap(p)
      objects[#objects + 1] = h
      if i % 2 == 0 then objects[#objects + 1] = h:buffer(i) end
    end
    objects = nil  -- luacheck: ignore
    helpers.collect()
    local c = testkit.counts(p)
    assert.same({ 1, 100, 100 }, { c.refs, c.allocs, c.frees })
    assert.equal(c.addrefs, c.releases)
  end)
end)

describe("buffer methods on something else", function()
  it("raise, naming the buffer type", function()
    local b = imalloc.get():buffer(1)
    local read = helpers.field("read")
    assert.has_error(function() read(b, imalloc.get()) end,
      bad("read", 1, "IMalloc buffer expected, got IMalloc"))
  end)
end)

describe("buffers when the allocator fails", function()
  it("resize(0) returns fail and keeps the buffer as it was; bufferof fails", function()
    -- a counting IMalloc holds at most 1024 blocks: fill it
    local m = imalloc.wrap(testkit.counting())
    local b = m:buffer(8)
    b:write("abcdefgh")
    local filler = {}
    for _ = 1, 2000 do
      local p = m:alloc(1)
      if not p then break end
      filler[#filler + 1] = p
    end
    assert.equal(1023, #filler)
    assert.same({ nil, "not enough memory", 0x8007000E }, { b:resize(0) })
    assert.same({ nil, "not enough memory", 0x8007000E }, { m:bufferof("xyz") })
    assert.equal(8, #b)
    assert.equal("abcdefgh", b:read())
    for _, p in ipairs(filler) do m:free(p) end
    assert.equal(b, b:resize(0))
    assert.equal(0, #b)
    b:free()
    m:release()
  end)
end)
