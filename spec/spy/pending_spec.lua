-- spy.stop while spied blocks are live: CoRevokeMallocSpy answers
-- E_ACCESSDENIED and the revoke stays pending; the allocator keeps calling
-- the spy, and releases it when the last spied block is freed, here by the
-- collector. Each test makes that state afresh (pending()) and frees what is
-- left after it, which releases the spy.
local common = require "spy.common"
local imalloc, spy, where = common.imalloc, common.spy, common.where

local m = imalloc.get()

common.isolate()

-- The blocks of a test: before (allocated before the start, not spied),
-- p and b (spied, live at the stop), late (after it). Freed ones are nil.
local s

--- The spy started with a rule, two spied blocks live, and a stop asked:
-- returns what the stop answered.
local function pending()
  s = { before = m:alloc(5) }
  assert.is_true(spy.start { fail = { above = 1000 } })
  s.p = m:alloc(10)
  s.b = m:buffer(20)
  return spy.stop()
end

describe("spy.stop with spied blocks live", function()
  after_each(function()
    if s.before then m:free(s.before) end
    if s.p then m:free(s.p) end
    if s.late then m:free(s.late) end
    if s.b then s.b:free() end
    s = nil
  end)

  it("answers E_ACCESSDENIED", function()
    assert.same({ nil, "E_ACCESSDENIED: access is denied", imalloc.E_ACCESSDENIED },
      { pending() })
    assert.equal(0x80070005, imalloc.E_ACCESSDENIED)
  end)

  it("leaves the spy registered, pending, with its blocks listed", function()
    pending()
    local r = spy.report()
    assert.is_false(r.active)
    assert.is_true(r.pending)
    assert.equal(2, r.count)
    assert.equal(30, r.bytes)
  end)

  it("answers E_ACCESSDENIED again to a second stop", function()
    pending()
    common.assert_hresult("E_ACCESSDENIED", spy.stop())
    assert.is_true(spy.report().pending)
  end)

  it("makes start answer CO_E_OBJISREG meanwhile", function()
    pending()
    common.assert_hresult("CO_E_OBJISREG", spy.start())
    assert.is_true(spy.report().pending)
  end)

  it("turns fault injection off: stop ended the session's rule", function()
    pending()
    local big = assert(m:alloc(5000))
    m:free(big)
    assert.has_error(function() spy.fail { nth = 1 } end,
      "the spy is not active (spy.start() first)")
  end)

  it("still sees new allocations, which are spied too", function()
    pending()
    local w
    s.late, w = m:strdup("late"), where()
    local r = spy.report()
    assert.equal(3, r.count)
    assert.same({ s.late, 5, w }, common.blocks(r)[3])
  end)

  it("stays pending when a block allocated before start is freed", function()
    pending()
    m:free(s.before)
    s.before = nil
    assert.is_true(spy.report().pending)
  end)

  it("stays pending while any spied block is live", function()
    pending()
    s.late = m:strdup("late")
    m:free(s.p)
    m:free(s.late)
    s.p, s.late = nil, nil
    local r = spy.report()
    assert.is_true(r.pending)
    assert.equal(1, r.count)
  end)

  it("releases the spy when the last one is freed, by the collector here", function()
    pending()
    s.late = m:strdup("late")
    m:free(s.p)
    m:free(s.late)
    s.p, s.late = nil, nil
    assert.is_true(spy.report().pending)
    s.b = nil
    common.helpers.collect()
    local r = spy.report()
    assert.is_false(r.active)
    assert.is_false(r.pending)
    assert.same({}, r.blocks)
    assert.equal(0, r.count)
    assert.equal(3, r.frees)
  end)

  it("lets stop answer CO_E_OBJNOTREG and start register again", function()
    pending()
    m:free(s.p)
    s.b:free()
    s.p, s.b = nil, nil
    assert.is_false(spy.report().pending)
    common.assert_hresult("CO_E_OBJNOTREG", spy.stop())
    assert.is_true(spy.start())
    assert.equal(0, spy.report().allocs)
    assert.is_true(spy.stop())
  end)
end)
