-- The spy at the edges of its rules and books: rule values on the limits
-- of their ranges, allocations through a C function (pcall), and
-- allocations the allocator itself refuses. (Realloc: realloc_spec.)
local common = require "spy.common"
local imalloc, spy = common.imalloc, common.spy
local testkit = common.helpers.testkit

local m = imalloc.get()
local NOMEM = { nil, "not enough memory", 0x8007000E }
local HUGE = common.helpers.sizemax  -- refused at once by every allocator here

local function outcomes(n, size)
  local s = {}
  for i = 1, n do
    local p = m:alloc(size)
    s[i] = p and "." or "x"
    if p then m:free(p) end
  end
  return table.concat(s)
end

common.isolate()

describe("spy.fail at the limits of each field", function()
  common.session()  -- a rule ends with its session

  it("frees a block it never saw while its index holds 128 records", function()
    -- the index (128 slots at first) must have an empty slot left for a
    -- lookup of an address it lacks to end
    assert.is_true(spy.stop())
    local unseen = assert(m:alloc(8))
    assert.is_true(spy.start())
    local ps = {}
    for i = 1, 128 do ps[i] = assert(m:alloc(8)) end
    assert.equal(128, spy.report().count)
    m:free(unseen)
    assert.equal(128, spy.report().count)
    for i = 1, 128 do m:free(ps[i]) end
    assert.equal(0, spy.report().count)
  end)

  it("takes every = false without nth, and fails nothing", function()
    assert.is_true(spy.fail { every = false })
    assert.equal("....", outcomes(4, 1))
  end)

  it("draws with seed 0 when a fraction has no seed", function()
    spy.fail { fraction = 0.5 }
    local unseeded = outcomes(64, 1)
    spy.fail { fraction = 0.5, seed = 0 }
    assert.equal(outcomes(64, 1), unseeded)
    spy.fail { fraction = 0.5, seed = 1 }
    assert.not_equal(outcomes(64, 1), unseeded)
  end)

  it("fails every allocation with fraction 1, none with fraction 0", function()
    spy.fail { fraction = 1 }
    assert.equal("xxxx", outcomes(4, 1))
    spy.fail { fraction = 0 }
    assert.equal("....", outcomes(4, 1))
  end)

  it("fails every allocation of a byte or more with above = 0", function()
    spy.fail { above = 0 }
    assert.equal("xx", outcomes(2, 1))
    assert.equal("..", outcomes(2, 0))
    spy.fail { above = 8 }
    assert.equal("..", outcomes(2, 8))
    assert.equal("xx", outcomes(2, 9))
  end)

  it("refuses a fraction below 0 and a key that is not a name", function()
    assert.has_error(function() spy.fail { fraction = -0.001 } end,
      "bad argument #1 to 'fail' (fraction must be a number from 0 to 1)")
    assert.has_error(function() spy.fail { [1] = true } end,
      "bad argument #1 to 'fail' (unknown field '1' in fault rule)")
  end)
end)

describe("spy books", function()
  common.session()

  local function find(p)
    for _, b in ipairs(spy.report().blocks) do
      if b.address == p then return b end
    end
  end

  it("records the Lua line that called through a C function", function()
    local ok, p = pcall(m.alloc, m, 24); local line = common.where()
    assert.is_true(ok)
    assert.equal(line, find(p).where)
    m:free(p)
  end)

  it("keeps a block's line when native code reallocates it", function()
    testkit.cotaskmem_open(package.searchpath("imalloc.core", package.cpath))
    local p = m:alloc(8); local line = common.where()
    local q = testkit.cotaskmem_realloc(p, 4000)
    local b = find(q)
    assert.equal(4000, b.size)
    assert.equal(line, b.where)
    testkit.cotaskmem_free(q)
    assert.is_nil(find(q))
  end)

  it("gives a native allocation no line, after Lua used another IMalloc", function()
    testkit.cotaskmem_open(package.searchpath("imalloc.core", package.cpath))
    local other = imalloc.wrap(testkit.counting())
    other:free(other:alloc(8))  -- tags, but reaches no task allocator
    local q = testkit.cotaskmem_alloc(24)
    assert.equal(24, find(q).size)
    assert.is_nil(find(q).where)
    testkit.cotaskmem_free(q)
    other:release()
  end)

  it("ignores the Realloc of a block allocated before start", function()
    assert.is_true(spy.stop())
    local p, q = m:alloc(8), m:alloc(8)
    assert.is_true(spy.start())
    assert.same(NOMEM, { m:realloc(p, HUGE) })
    assert.is_nil(m:realloc(q, 0))
    local r = spy.report()
    assert.equal(0, r.frees)
    assert.equal(0, r.count)
    m:free(p)
    assert.equal(0, spy.report().frees)
  end)

  it("records nothing for an allocation the allocator refuses", function()
    local r0 = spy.report()
    assert.same(NOMEM, { m:alloc(HUGE) })
    local r1 = spy.report()
    assert.equal(r0.allocs, r1.allocs)
    assert.equal(r0.count, r1.count)
    assert.equal(r0.failures, r1.failures)  -- not the spy's doing
  end)
end)
