-- The spy's arguments (issue 16, "smaller things"): a rule's counts and
-- sizes take any whole number, 2^70 too, and spy.format names what is
-- wrong with its argument instead of failing inside.
local common = require "spy.common"
local imalloc, spy = common.imalloc, common.spy

local m = imalloc.get()

common.isolate()

describe("a fault rule", function()
  common.session()

  it("takes sizes and counts beyond the integers as no allocation reaches them", function()
    assert.is_true(spy.fail { above = 2 ^ 70 })
    -- the first floats beyond a 64-bit lua_Integer, 2^63, and beyond a uint64_t
    assert.is_true(spy.fail { above = 2 ^ 63 })
    assert.is_true(spy.fail { above = 2 ^ 64 })
    assert.is_true(spy.fail { nth = 2 ^ 63, every = true })
    local p = assert(m:alloc(1000))
    assert.is_true(spy.fail { nth = 2 ^ 70, every = true })
    local q = assert(m:alloc(8))
    assert.is_true(spy.fail(nil))
    assert.equal(0, spy.report().failures)
    m:free(p)
    m:free(q)
  end)

  it("tells a whole number from one with a fraction between 2^31 and 2^53", function()
    -- beyond lua_Integer where it has 32 bits (5.1, 5.2 and LuaJIT on x86)
    assert.is_true(spy.fail { nth = 2 ^ 40, every = true })
    assert.has_error(function() spy.fail { nth = 2 ^ 40 + 0.5 } end,
      "bad argument #1 to 'fail' (nth must be an integer of at least 1)")
    assert.is_true(spy.fail(nil))
  end)

  it("still refuses what is not a whole number", function()
    for _, v in ipairs { 1.5, -1, -2 ^ 70, 1 / 0, -1 / 0, 0 / 0, "1" } do
      assert.has_error(function() spy.fail { above = v } end,
        "bad argument #1 to 'fail' (above must be a non-negative integer)")
    end
    for _, v in ipairs { 0, 2.5, 1 / 0, 0 / 0 } do
      assert.has_error(function() spy.fail { nth = v } end,
        "bad argument #1 to 'fail' (nth must be an integer of at least 1)")
    end
  end)
end)

describe("spy.format", function()
  it("names a bad argument", function()
    assert.has_error(function() spy.format(1) end,
      "bad argument #1 to 'format' (report table expected, got number)")
    assert.has_error(function() spy.format("x") end,
      "bad argument #1 to 'format' (report table expected, got string)")
    assert.has_error(function() spy.format({}) end,
      "bad argument #1 to 'format' (not a report: no field 'count')")
    local r = spy.report()
    r.blocks = nil
    assert.has_error(function() spy.format(r) end,
      "bad argument #1 to 'format' (not a report: no field 'blocks')")
    assert.equal("string", type(spy.format(spy.report())))
    assert.equal("string", type(spy.format()))
  end)
end)
