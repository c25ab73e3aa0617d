-- A handle owns the references it took and gives back exactly those. The
-- counting IMalloc of the test kit records every AddRef and Release.
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit

local function counted()
  local p = testkit.counting()  -- one reference, the spec's own
  return p, function() return testkit.counts(p) end
end

describe("a handle's lifetime", function()
  it("takes one reference on wrap and gives it back when collected", function()
    local p, counts = counted()
    local h = imalloc.wrap(p)
    assert.same({ 1, 0, 2 }, { counts().addrefs, counts().releases, counts().refs })
    h = nil  -- luacheck: ignore
    helpers.collect()
    assert.same({ 1, 1, 1 }, { counts().addrefs, counts().releases, counts().refs })
  end)

  it("gives back nothing more after release", function()
    local p, counts = counted()
    local h = imalloc.wrap(p)
    local com, owned = h:release()
    assert.same({ 1, 0 }, { com, owned })
    assert.equal("released IMalloc", imalloc.type(h))
    h = nil  -- luacheck: ignore
    helpers.collect()
    assert.equal(1, counts().releases)
    assert.equal(1, counts().refs)
  end)

  it("gives back every addref'd reference, and only those", function()
    local p, counts = counted()
    local h = imalloc.wrap(p)
    assert.equal(3, h:addref())
    assert.equal(4, h:addref())
    local com, owned = h:release()
    assert.same({ 3, 2 }, { com, owned })
    h = nil  -- luacheck: ignore
    helpers.collect()
    assert.same({ 3, 3, 1 }, { counts().addrefs, counts().releases, counts().refs })
  end)

  it("stays live until the last owned reference is released", function()
    local p = counted()
    local h = imalloc.wrap(p)
    h:addref()
    h:release()
    assert.equal("IMalloc", imalloc.type(h))
    h:release()
    assert.equal("released IMalloc", imalloc.type(h))
  end)

  it("raises on every method once released", function()
    local h = imalloc.get()
    h:release()
    local calls = {
      alloc = { 1 }, realloc = { nil, 1 }, free = { nil }, getsize = { nil },
      didalloc = { nil }, heapminimize = {}, queryinterface = { imalloc.IID_IMalloc },
      addref = {}, release = {}, pointer = {}, setchecks = { true },
    }
    for name, args in pairs(calls) do
      local call = helpers.method(name)
      assert.has_error(function() call(h, helpers.unpack(args, 1, 2)) end,
        "attempt to use a released IMalloc", name)
    end
  end)

  it("lets __gc run on a released handle without effect", function()
    local p, counts = counted()
    local h = imalloc.wrap(p)
    h:release()
    local mt = debug.getmetatable(h)
    mt.__gc(h)
    mt.__gc(h)
    assert.equal(1, counts().releases)
  end)

  it("gives back the references of 100,000 collected handles, and their memory", function()
    local p, counts = counted()
    helpers.collect()
    local before = collectgarbage("count")
    for _ = 1, 100000 do imalloc.wrap(p) end
    for _ = 1, 100000 do imalloc.get() end
    helpers.collect()
    assert.equal(100000, counts().releases)
    assert.equal(1, counts().refs)
    assert.is_true(collectgarbage("count") < before + 64,
      ("%.0f KiB before, %.0f KiB after"):format(before, collectgarbage("count")))
  end)
end)

describe("imalloc.wrap", function()
  it("returns a handle on the same pointer, with its own reference", function()
    local m = imalloc.get()
    local w = imalloc.wrap(m:pointer())
    assert.equal(m:pointer(), w:pointer())
    assert.is_true(m == w)
    m:release()
    local p = w:alloc(8)  -- still usable: w owns its own reference
    w:free(p)
  end)

  it("returns a handle whose methods call the wrapped object", function()
    local p, counts = counted()
    local h = imalloc.wrap(p)
    local b = h:alloc(10)
    assert.equal(10, h:getsize(b))
    assert.equal(1, h:didalloc(b))
    h:free(b)
    assert.same({ 1, 1 }, { counts().allocs, counts().frees })
    -- the process allocator did not hand it out
    assert.equal(0, imalloc.get():didalloc(b))
  end)

  it("raises for anything but a light userdata", function()
    assert.has_error(function() imalloc.wrap(1234) end,
      "bad argument #1 to 'wrap' (light userdata expected, got number)")
    assert.has_error(function() imalloc.wrap(imalloc.get()) end,
      "bad argument #1 to 'wrap' (light userdata expected, got IMalloc)")
    assert.has_error(function() imalloc.wrap() end,
      "bad argument #1 to 'wrap' (light userdata expected, got no value)")
  end)

  it("raises for a pointer whose vtable does not point into loaded code", function()
    local m = imalloc.get()
    local freed = m:alloc(64)
    m:free(freed)
    local c = testkit.crt_malloc(64)
    testkit.poke(c, ("\0"):rep(64))
    for what, p in pairs { freed = freed, static = testkit.static_pointer(),
                           crt = c, stack = testkit.stack_pointer() } do
      assert.has_error(function() imalloc.wrap(p) end,
        "bad argument #1 to 'wrap' (pointer is not a COM interface (no vtable into loaded code))",
        what)
    end
    testkit.crt_free(c)
  end)

  it("raises for NULL and for a block of the task allocator", function()
    local m = imalloc.get()
    local b = m:alloc(64)
    assert.has_error(function() imalloc.wrap(testkit.null()) end,
      "bad argument #1 to 'wrap' (NULL interface pointer)")
    assert.has_error(function() imalloc.wrap(b) end,
      "bad argument #1 to 'wrap' (pointer is a memory block, not an interface)")
    m:free(b)
  end)
end)

describe("handle:pointer", function()
  it("returns the interface pointer as a light userdata that wrap takes back", function()
    local m = imalloc.get()
    local p = m:pointer()
    assert.equal("userdata", type(p))
    assert.is_nil(getmetatable(p))
    assert.is_true(imalloc.wrap(p) == m)
  end)
end)

describe("==", function()
  it("is false, without raising, between a handle and anything else", function()
    local m = imalloc.get()
    local b = assert(m:buffer(4))
    -- Lua calls the right operand's __eq when the left one has none
    assert.is_false(b == m)
    assert.is_false(m == b)
    assert.is_false(io.stdout == m)
    assert.is_false(m == io.stdout)
    assert.is_false(b == io.stdout)
    assert.is_false(io.stdout == b)
    b:free()
  end)

  it("is false between a live handle and a released one on the same pointer", function()
    local m, w = imalloc.get(), imalloc.get()
    assert.is_true(m == w)
    w:release()
    assert.is_false(m == w)
    assert.is_false(w == m)
  end)
end)
