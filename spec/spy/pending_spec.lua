-- spy.stop while spied blocks are live: CoRevokeMallocSpy answers
-- E_ACCESSDENIED and the revoke stays pending; the allocator keeps calling
-- the spy, and releases it when the last spied block is freed, here by the
-- collector.
local common = require "spy.common"
local imalloc, spy, where = common.imalloc, common.spy, common.where

local m = imalloc.get()
local before = m:alloc(5)  -- not spied: freeing it does not end the wait
local p, b, late

describe("spy.stop with spied blocks live", function()
  it("answers E_ACCESSDENIED", function()
    assert.is_true(spy.start { fail = { above = 1000 } })
    p = m:alloc(10)
    b = m:buffer(20)
    assert.same({ nil, "E_ACCESSDENIED: access is denied", imalloc.E_ACCESSDENIED },
      { spy.stop() })
    assert.equal(0x80070005, imalloc.E_ACCESSDENIED)
  end)

  it("leaves the spy registered, pending, with its blocks listed", function()
    local r = spy.report()
    assert.is_false(r.active)
    assert.is_true(r.pending)
    assert.equal(2, r.count)
    assert.equal(30, r.bytes)
  end)

  it("answers E_ACCESSDENIED again to a second stop", function()
    common.assert_hresult("E_ACCESSDENIED", spy.stop())
    assert.is_true(spy.report().pending)
  end)

  it("makes start answer CO_E_OBJISREG meanwhile", function()
    common.assert_hresult("CO_E_OBJISREG", spy.start())
    assert.is_true(spy.report().pending)
  end)

  it("turns fault injection off: stop ended the session's rule", function()
    local big = assert(m:alloc(5000))
    m:free(big)
    assert.has_error(function() spy.fail { nth = 1 } end,
      "the spy is not active (spy.start() first)")
  end)

  it("still sees new allocations, which are spied too", function()
    local w
    late, w = m:strdup("late"), where()
    local r = spy.report()
    assert.equal(3, r.count)
    assert.same({ late, 5, w }, common.blocks(r)[3])
  end)

  it("stays pending when a block allocated before start is freed", function()
    m:free(before)
    assert.is_true(spy.report().pending)
  end)

  it("stays pending while any spied block is live", function()
    m:free(p)
    m:free(late)
    local r = spy.report()
    assert.is_true(r.pending)
    assert.equal(1, r.count)
  end)

  it("releases the spy when the last one is freed, by the collector here", function()
    b = nil
    common.helpers.collect()
    local r = spy.report()
    assert.is_false(r.active)
    assert.is_false(r.pending)
    assert.same({}, r.blocks)
    assert.equal(0, r.count)
    assert.equal(4, r.frees)
  end)

  it("lets stop answer CO_E_OBJNOTREG and start register again", function()
    common.assert_hresult("CO_E_OBJNOTREG", spy.stop())
    assert.is_true(spy.start())
    assert.equal(0, spy.report().allocs)
    assert.is_true(spy.stop())
  end)
end)
