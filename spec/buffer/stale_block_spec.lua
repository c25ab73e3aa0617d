-- A buffer re-checks its block before it touches it (when the handle that
-- made it checks pointers): a block freed or moved behind the buffer's
-- back (a handle with setchecks(false), native code handed b:ptr(), a
-- realloc) is an error, not a read of freed memory, and __gc then frees
-- nothing.
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit
local peer = require "imalloc_peer"

local STALE = "buffer's block was freed or resized behind its back"
local RELEASED = "attempt to use a released buffer"
local OWNED = "bad argument #1 to 'free' (pointer is owned by a buffer (free or detach the buffer))"

local function stale(f)
  assert.has_error(f, STALE)
end

-- m:free refuses p: a buffer owns the block at p.
local function owned(m, p)
  assert.has_error(function() m:free(p) end, OWNED)
end

describe("a buffer whose block was freed behind its back", function()
  local m, u
  before_each(function()
    m = assert(imalloc.get())
    u = assert(imalloc.get()):setchecks(false)
  end)

  it("raises in every method that uses the block, and is then released", function()
    for _, use in ipairs {
      function(b) return b:read() end,
      function(b) return b:write("x") end,
      function(b) return b:resize(32) end,
      function(b) return #b end,
      function(b) return b:ptr() end,
      function(b) return b:detach() end,
      function(b) return b:free() end,
    } do
      local b = assert(m:buffer(16))
      u:free(b:ptr())
      stale(function() use(b) end)
      assert.equal("released buffer", imalloc.type(b))
      assert.has_error(function() b:read() end, RELEASED)
    end
  end)

  it("raises when native code freed it (b:ptr() handed over)", function()
    local b = assert(m:buffer(8))
    b:write("native\0")
    assert.equal("native", peer.take(m, b:ptr()))
    stale(function() b:read() end)
  end)

  it("raises when a realloc moved it", function()
    local b = assert(m:buffer(16))
    local old = b:ptr()
    local q = assert(u:realloc(old, helpers.pow2(20)))  -- far too big to stay in place
    assert.are_not.equal(old, q)
    stale(function() b:write("x") end)
    m:free(q)
  end)

  it("raises when a realloc resized it in place", function()
    local b = assert(m:buffer(64))
    local old = b:ptr()
    local q = assert(u:realloc(old, 60))
    stale(function() b:read() end)
    m:free(q)  -- the buffer gave it up: it is the caller's again
  end)

  it("frees nothing in __gc", function()
    local counting = testkit.counting()
    local w = imalloc.wrap(counting)
    local wu = imalloc.wrap(counting):setchecks(false)
    local b = assert(w:buffer(16))
    wu:free(b:ptr())
    local q = assert(w:alloc(20))  -- the same address again (malloc's size class)
    b = nil  -- luacheck: ignore
    helpers.collect()
    assert.equal(1, w:didalloc(q))  -- not freed by the buffer's __gc
    assert.equal(1, testkit.counts(counting).frees)
    w:free(q)
  end)

  it("does not take back the block of another buffer that now has its address", function()
    local b = assert(m:buffer(20))
    local p = b:ptr()
    u:free(p)
    local b2 = assert(m:buffer(24))  -- of another size
    stale(function() return #b end)
    if b2:ptr() == p then  -- the built-in allocator gives the address out again
      owned(m, p)
    end
    b2:write("still owned")
    b2:free()
  end)

  it("does not take back, when collected, the block of another buffer that now has its address", function()
    local b = assert(m:buffer(20))
    local p = b:ptr()
    u:free(p)
    local b2 = assert(m:buffer(24))
    b = nil  -- luacheck: ignore
    helpers.collect()  -- b's __gc finds its block gone, and forgets only its own record
    if b2:ptr() == p then  -- the built-in allocator gives the address out again
      owned(m, p)
    end
    b2:free()
  end)

  it("keeps, when it resizes, the record of another buffer that now has its old address", function()
    local b = assert(m:buffer(20))
    local p = b:ptr()
    u:free(p)
    local b2 = assert(m:buffer(20))  -- of the same size: b cannot tell it from its own
    if b2:ptr() == p then  -- the built-in allocator gives the address out again
      -- b's Realloc moves b2's block: the record of p stays b2's, which
      -- still takes a block at p for its own
      assert.equal(b, b:resize(4096))
      assert.are_not.equal(p, b:ptr())
      local q = assert(m:alloc(20))
      if q == p then  -- handed out again at once (the built-in allocator)
        owned(m, q)
        b2:free()  -- b2 takes q for its block, and frees it
        assert.equal(0, m:didalloc(q))
      else  -- elsewhere (a 32-bit process's heap): b2's block went with b's Realloc
        stale(function() b2:free() end)
        m:free(q)
      end
      b:free()
    else  -- a heap that keeps freed blocks aside (Wine's checking heap)
      b2:free()
      stale(function() b:free() end)
    end
  end)

  it("is still trusted when the handle that made it does not check", function()
    local b = assert(u:buffer(16))
    b:write("unchecked")
    assert.equal("unchecked", b:read(9))
    b:free()
  end)
end)

describe("a buffer whose block is its own", function()
  it("works as before after adopt, resize and resize(0)", function()
    local m = assert(imalloc.get())
    local b = m:adopt(assert(m:strdup("abc")))
    assert.equal(4, #b)
    b:resize(100)
    b:write("hello")
    assert.equal("hello", b:read(5))
    b:resize(0)
    assert.equal(0, #b)
    b:free()
  end)
end)
