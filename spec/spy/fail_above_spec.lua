-- Fault injection, above: every allocation of more than n bytes fails.
local common = require "spy.common"
local imalloc, spy = common.imalloc, common.spy

local m = imalloc.get()
local NOMEM = { nil, "not enough memory", 0x8007000E }

common.isolate()

describe("spy.fail { above = n }", function()
  common.session()

  it("fails allocations above n bytes, not n bytes", function()
    spy.fail { above = 100 }
    local p = assert(m:alloc(100))
    assert.same(NOMEM, { m:alloc(101) })
    assert.same(NOMEM, { m:alloc(common.helpers.pow2(20)) })
    assert.same(NOMEM, { m:strdup(("x"):rep(100)) })  -- 101 bytes
    local s = assert(m:strdup(("x"):rep(99)))
    assert.same(NOMEM, { m:wstrdup(("x"):rep(50)) })  -- 102 bytes
    assert.same(NOMEM, { m:buffer(1000) })
    assert.equal(5, spy.report().failures)
    m:free(p)
    m:free(s)
  end)

  it("with 0 fails every allocation but a zero-byte one", function()
    spy.fail { above = 0 }
    assert.same(NOMEM, { m:alloc(1) })
    local z = assert(m:alloc(0))
    assert.equal(0, m:getsize(z))
    m:free(z)
  end)

  it("never fails the Realloc that grows a live block above n", function()
    spy.fail { above = 10 }
    local b = assert(m:buffer(10))
    assert.equal(b, b:resize(10000))
    assert.equal(10000, #b)
    b:free()
  end)

  it("combines with nth: either rule fails an allocation", function()
    spy.fail { above = 1000, nth = 2 }
    local before = spy.report().failures
    local a = assert(m:alloc(10))
    assert.same(NOMEM, { m:alloc(10) })
    local c = assert(m:alloc(10))
    assert.same(NOMEM, { m:alloc(2000) })
    assert.equal(before + 2, spy.report().failures)
    spy.fail(nil)
    m:free(a)
    m:free(c)
  end)
end)
