-- free, realloc and getsize refuse what DidAlloc says the allocator did not
-- hand out, so a script cannot corrupt the heap by mistake.
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit

local function refused(fname)
  return ("bad argument #1 to '%s' (pointer is not a live block of this IMalloc)")
    :format(fname)
end

describe("pointer checks", function()
  local m
  before_each(function() m = imalloc.get() end)

  local function foreign()
    local c = testkit.crt_malloc(64)
    return {
      stack = testkit.stack_pointer(),
      static = testkit.static_pointer(),
      crt = c,
      small_integer = 16,
    }, function() testkit.crt_free(c) end
  end

  it("refuse a double free", function()
    local p = m:alloc(32)
    m:free(p)
    assert.has_error(function() m:free(p) end, refused("free"))
  end)

  it("refuse a block after realloc moved it", function()
    local p = m:alloc(16)
    local q = m:realloc(p, helpers.pow2(20))
    if q ~= p then
      assert.has_error(function() m:free(p) end, refused("free"))
    end
    m:free(q)
  end)

  for _, fname in ipairs { "free", "getsize" } do
    it("refuse freed, interior and foreign pointers in " .. fname, function()
      local call = helpers.method(fname)
      local p = m:alloc(64)
      local interior = testkit.offset(p, 8)
      assert.has_error(function() call(m, interior) end, refused(fname))
      local others, done = foreign()
      for what, q in pairs(others) do
        assert.has_error(function() call(m, q) end, refused(fname), what)
      end
      done()
      m:free(p)
      assert.has_error(function() call(m, p) end, refused(fname))
    end)
  end

  it("refuse freed, interior and foreign pointers in realloc", function()
    local p = m:alloc(64)
    assert.has_error(function() m:realloc(testkit.offset(p, 16), 8) end, refused("realloc"))
    local others, done = foreign()
    for what, q in pairs(others) do
      assert.has_error(function() m:realloc(q, 8) end, refused("realloc"), what)
    end
    done()
    m:free(p)
    assert.has_error(function() m:realloc(p, 8) end, refused("realloc"))
  end)

  it("refuse blocks of another allocator", function()
    local other = imalloc.wrap(testkit.counting())
    local p = other:alloc(8)
    assert.has_error(function() m:free(p) end, refused("free"))
    other:free(p)
  end)

  it("are skipped after setchecks(false), which returns the handle", function()
    local p = m:alloc(8)
    assert.equal(m, m:setchecks(false))
    -- a good pointer still works; a bad one would now reach the allocator
    assert.equal(8, m:getsize(p))
    m:free(p)
    m:setchecks(true)
    assert.has_error(function() m:free(p) end, refused("free"))
  end)

  it("are per handle", function()
    local a, b = imalloc.get(), imalloc.get()
    a:setchecks(false)
    local p = b:alloc(8)
    b:free(p)
    assert.has_error(function() b:free(p) end, refused("free"))
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
