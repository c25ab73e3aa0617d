-- spy.start and spy.stop: one spy per process, registered with
-- CoRegisterMallocSpy (ole32's, or the built-in allocator's).
local common = require "spy.common"
local imalloc, spy = common.imalloc, common.spy

common.isolate()

-- "before any start": in a process where no spy ever was.
describe("spy.report before any start", function()
  it("is empty and inactive", function()
    -- every field, by name, with its value (a table's: whether it is empty)
    assert.equal(table.concat({
      "active\tfalse", "allocs\t0", "blocks\ttable, empty", "bytes\t0", "count\t0",
      "dropped\t0", "failures\t0", "frees\t0", "pending\tfalse", "reallocs\t0", "",
    }, "\n"), common.helpers.run_fresh [[
      local r = require("imalloc").spy.report()
      local keys = {}
      for k in pairs(r) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do
        local v = r[k]
        if type(v) == "table" then v = "table, " .. (next(v) == nil and "empty" or "not empty") end
        print(k, tostring(v))
      end
    ]])
  end)
end)

describe("spy.stop", function()
  it("answers CO_E_OBJNOTREG when the spy was never started", function()
    local out = common.helpers.run_fresh [[
      local imalloc = require "imalloc"
      local ok, msg, code = imalloc.spy.stop()
      print(select("#", imalloc.spy.stop()), ok, msg, code == imalloc.CO_E_OBJNOTREG)
    ]]
    assert.equal(("3\tnil\t%s\ttrue\n"):format(imalloc.hresult(imalloc.CO_E_OBJNOTREG)), out)
    assert.matches("^CO_E_OBJNOTREG: ", imalloc.hresult(imalloc.CO_E_OBJNOTREG))
  end)
end)

describe("spy.start", function()
  it("registers the spy and returns true", function()
    assert.is_true(spy.start())
    local r = spy.report()
    assert.is_true(r.active)
    assert.is_false(r.pending)
    assert.is_true(spy.stop())
  end)

  it("answers CO_E_OBJISREG while the spy is registered", function()
    assert.is_true(spy.start())
    common.assert_hresult("CO_E_OBJISREG", spy.start())
    assert.is_true(spy.report().active)
    assert.is_true(spy.stop())
  end)

  it("is undone by stop, which returns true with no spied block live", function()
    local m = imalloc.get()
    assert.is_true(spy.start())
    m:free(m:alloc(10))
    assert.is_true(spy.stop())
    local r = spy.report()
    assert.is_false(r.active)
    assert.is_false(r.pending)
    -- the counters of the session stay readable after it
    assert.equal(1, r.allocs)
    assert.equal(1, r.frees)
    common.assert_hresult("CO_E_OBJNOTREG", spy.stop())
  end)

  it("can start again, with fresh books", function()
    local m = imalloc.get()
    assert.is_true(spy.start())
    m:free(m:alloc(5))
    m:free(m:alloc(7))
    assert.is_true(spy.stop())
    assert.equal(2, spy.report().allocs)
    assert.is_true(spy.start())
    local p = m:alloc(3)
    local r = spy.report()
    assert.equal(1, r.allocs)
    assert.equal(0, r.frees)
    assert.equal(1, r.blocks[1].seq)
    m:free(p)
    assert.is_true(spy.stop())
  end)

  it("takes where = false: no Lua location is recorded", function()
    local m = imalloc.get()
    assert.is_true(spy.start { where = false })
    local p = m:alloc(3)
    assert.same({ { p, 3, nil } }, common.blocks())
    m:free(p)
    assert.is_true(spy.stop())
  end)

  it("takes a fault rule as fail", function()
    local m = imalloc.get()
    assert.is_true(spy.start { fail = { nth = 1 } })
    assert.same({ nil, "not enough memory", imalloc.E_OUTOFMEMORY }, { m:alloc(1) })
    assert.equal(1, spy.report().failures)
    assert.is_true(spy.stop())
  end)

  it("raises for an unknown option or a bad value", function()
    assert.has_error(function() spy.start { wher = true } end,
      "bad argument #1 to 'start' (unknown option 'wher')")
    assert.has_error(function() spy.start { where = 1 } end,
      "bad argument #1 to 'start' (where must be a boolean)")
    assert.has_error(function() spy.start { fail = 3 } end,
      "bad argument #1 to 'start' (fault rule must be a table or nil)")
    assert.has_error(function() spy.start(true) end,
      "bad argument #1 to 'start' (table expected, got boolean)")
    assert.is_false(spy.report().active)
  end)
end)

describe("spy.fail", function()
  it("raises when the spy is not active", function()
    assert.has_error(function() spy.fail { nth = 1 } end,
      "the spy is not active (spy.start() first)")
    assert.has_error(function() spy.fail(nil) end,
      "the spy is not active (spy.start() first)")
  end)

  it("raises for a malformed rule", function()
    assert.is_true(spy.start())
    local cases = {
      { { nth = 0 }, "nth must be an integer of at least 1" },
      { { nth = 1.5 }, "nth must be an integer of at least 1" },
      { { every = true }, "every needs nth" },
      { { nth = 2, every = 1 }, "every must be a boolean" },
      { { above = -1 }, "above must be a non-negative integer" },
      { { above = 1.5 }, "above must be a non-negative integer" },
      { { fraction = 1.5 }, "fraction must be a number from 0 to 1" },
      { { fraction = 0 / 0 }, "fraction must be a number from 0 to 1" },
      { { fraction = 0.5, seed = 0.5 }, "seed must be an integer" },
      { { nht = 1 }, "unknown field 'nht' in fault rule" },
    }
    for _, case in ipairs(cases) do
      assert.has_error(function() spy.fail(case[1]) end,
        "bad argument #1 to 'fail' (" .. case[2] .. ")")
    end
    assert.has_error(function() spy.fail() end,
      "bad argument #1 to 'fail' (value expected)")
    assert.is_true(spy.fail {})
    assert.is_true(spy.stop())
  end)
end)
