-- Fault injection, nth: the nth allocation since the rule was set fails
-- (once, or every nth with every = true). Allocations are Alloc and
-- Realloc(NULL, n) of at least one byte: a zero-byte request cannot be
-- failed through a spy, so it is neither failed nor counted.
local common = require "spy.common"
local imalloc, spy = common.imalloc, common.spy

local m = imalloc.get()
local NOMEM = { nil, "not enough memory", 0x8007000E }

--- "." for each allocation of `size` that succeeds, "x" for each that fails
-- (returning exactly NOMEM); frees what it got.
local function pattern(n, size)
  local s = {}
  for i = 1, n do
    local r = { m:alloc(size or 1) }
    if r[1] then
      m:free(r[1])
      s[i] = "."
    else
      assert.same(NOMEM, r)
      s[i] = "x"
    end
  end
  return table.concat(s)
end

common.isolate()

describe("spy.fail { nth = n }", function()
  common.session()

  it("fails the nth allocation once", function()
    spy.fail { nth = 3 }
    assert.equal("..x......", pattern(9))
    assert.equal(1, spy.report().failures)
  end)

  it("fails every nth allocation with every = true", function()
    spy.fail { nth = 3, every = true }
    assert.equal("..x..x..x.", pattern(10))
    assert.equal(3, spy.report().failures)
  end)

  it("fails the nth allocation once with every = false", function()
    spy.fail { nth = 3, every = false }
    assert.equal("..x......", pattern(9))
    assert.equal(1, spy.report().failures)
  end)

  it("neither fails nor counts zero-byte allocations", function()
    spy.fail { nth = 2 }
    assert.equal("....", pattern(4, 0))
    assert.equal(".", pattern(1))
    assert.equal("...", pattern(3, 0))
    assert.equal("x", pattern(1))
    -- the same with every nth
    spy.fail { nth = 1, every = true }
    assert.equal("xxx", pattern(3))
    assert.equal("...", pattern(3, 0))
    local b = m:buffer(0)
    assert.equal(0, #b)
    b:free()
  end)

  it("is cleared by fail(nil), and counts from zero when set again", function()
    spy.fail(nil)
    assert.equal("......", pattern(6))
    spy.fail { nth = 2 }
    assert.equal(".x..", pattern(4))
    spy.fail {}
    assert.equal("....", pattern(4))
  end)

  it("fails every allocating method with nil, message, code", function()
    spy.fail { nth = 1, every = true }
    assert.same(NOMEM, { m:alloc(8) })
    assert.same(NOMEM, { m:strdup("") })
    assert.same(NOMEM, { m:wstrdup("abc") })
    assert.same(NOMEM, { m:buffer(16) })
    -- m:realloc(nil, n) is an allocation too: realloc_spec.lua
    spy.fail(nil)
  end)

  it("never fails a Realloc of a live block", function()
    local b = assert(m:buffer(8))
    local p = assert(m:alloc(8))
    spy.fail { nth = 1, every = true }
    assert.equal(b, b:resize(100000))
    p = assert(m:realloc(p, 70000))
    assert.equal(b, b:resize(0))  -- Alloc(0): zero bytes, never failed
    spy.fail(nil)
    m:free(p)
    b:free()
  end)

  it("lets a script test its own out-of-memory paths", function()
    -- A function that needs two blocks and must not leak when the second
    -- one cannot be had.
    local function pair(a, b)
      local p, err, code = m:strdup(a)
      if not p then return nil, err, code end
      local q
      q, err, code = m:strdup(b)
      if not q then
        m:free(p)
        return nil, err, code
      end
      return p, q
    end
    for n = 1, 2 do
      spy.fail { nth = n }
      assert.same(NOMEM, { pair("one", "two") })
      assert.equal(0, spy.report().count)
    end
    spy.fail { nth = 3 }
    local p, q = pair("one", "two")
    assert.equal("two", m:string(q))
    m:free(p)
    m:free(q)
    assert.equal(0, spy.report().count)
  end)
end)
