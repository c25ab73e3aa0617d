-- imalloc.wrap: a handle on an IMalloc pointer of any origin, with its own
-- reference, and handle:pointer, which gives that pointer back.
-- (What wrap refuses by its vtable: image_spec.lua, unreadable_spec.lua.)
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit

local function counted()
  local p = testkit.counting()  -- one reference, the spec's own
  return p, function() return testkit.counts(p) end
end

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

  it("calls the wrapped object's HeapMinimize once a call, returning nothing", function()
    local p, counts = counted()
    local h = imalloc.wrap(p)
    assert.equal(0, select("#", h:heapminimize()))
    assert.equal(1, counts().minimizes)
    h:heapminimize()
    assert.equal(2, counts().minimizes)
    h:release()
  end)

  it("refuses to read or write a block whose size the object does not know", function()
    local p = testkit.counting()
    local h = imalloc.wrap(p)
    local b = h:alloc(10)
    testkit.size_unknown(p, true)
    assert.equal(-1, h:getsize(b))  -- GetSize's answer, passed on
    for _, call in ipairs {
      function() return h:read(b) end,
      function() return h:write(b, "x") end,
      function() return h:string(b) end,
    } do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.matches("bad argument #%d to '%a+' %(block of unknown size%)", err)
    end
    testkit.size_unknown(p, false)
    assert.equal(10, h:getsize(b))
    h:free(b)
    h:release()
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
