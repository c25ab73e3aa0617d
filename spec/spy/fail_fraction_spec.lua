-- Fault injection, fraction: each allocation fails with the given
-- probability, decided by a generator seeded with `seed` (splitmix64, in C),
-- so the same seed fails the same allocations on every platform.
local common = require "spy.common"
local imalloc, spy = common.imalloc, common.spy

local m = imalloc.get()

local function pattern(n, size)
  local s = {}
  for i = 1, n do
    local p = m:alloc(size or 1)
    if p then m:free(p) end
    s[i] = p and "." or "x"
  end
  return table.concat(s)
end

-- What { fraction = 0.25, seed = 42 } decides for the first 64 allocations,
-- the same on Linux and under Wine.
local SEED42 = ".x..x.x...x....xx.x..x..x...........x..x.x....xx...xx.x....x...x"

common.isolate()

describe("spy.fail { fraction = f, seed = s }", function()
  common.session()

  it("fails the allocations its seed decides, the same every time", function()
    spy.fail { fraction = 0.25, seed = 42 }
    local first = pattern(64)
    assert.equal(SEED42, first)
    spy.fail { fraction = 0.25, seed = 42 }
    assert.equal(first, pattern(64))
    local _, fails = first:gsub("x", "")
    assert.equal(fails * 2, spy.report().failures)
  end)

  it("fails other allocations with another seed", function()
    spy.fail { fraction = 0.25, seed = 43 }
    assert.is_not.equal(SEED42, pattern(64))
  end)

  it("fails about the fraction asked", function()
    spy.fail { fraction = 0.1, seed = 7 }
    local _, fails = pattern(2000):gsub("x", "")
    assert.is_true(fails > 140 and fails < 260, fails)
  end)

  it("fails all with 1 and none with 0, zero-byte allocations never", function()
    spy.fail { fraction = 1, seed = 1 }
    assert.equal("xxxx", pattern(4))
    assert.equal("....", pattern(4, 0))
    spy.fail { fraction = 0, seed = 1 }
    assert.equal("....", pattern(4))
  end)

  it("draws for every allocation, so nth and fraction combine", function()
    spy.fail { fraction = 0.25, seed = 42, nth = 1 }
    assert.equal("x" .. SEED42:sub(2, 16), pattern(16))
    spy.fail(nil)
  end)
end)
