-- Realloc under the spy, where Wine 8's ole32 and the built-in allocator
-- differ. Wine's allocator_Realloc (dlls/combase/malloc.c) takes the block
-- off its list of spied blocks before it calls PreRealloc, and treats a 0
-- from PreRealloc as a forced failure whatever the size asked:
--  * Realloc(p, 0) under a spy returns NULL and does not free p (the spy
--    must answer 0 for 0 bytes). Microsoft documents a 0 from PreRealloc as
--    a forced failure only when the size asked is not 0, and the built-in
--    allocator frees p.
--  * Realloc(NULL, n) looks NULL up in that list, finds an empty slot, and
--    counts one spied block fewer: from then on Wine's count of spied
--    blocks is one short, and once it has gone below zero (it is unsigned)
--    a stop answers E_ACCESSDENIED for good.
-- So Realloc(NULL, n) runs in a fresh process, which it may leave so.
local common = require "spy.common"
local imalloc, spy, where = common.imalloc, common.spy, common.where

local m = imalloc.get()
local NOMEM = { nil, "not enough memory", 0x8007000E }

common.isolate()

describe("Realloc under the spy", function()
  it("moves a spied block's record to the new block", function()
    assert.is_true(spy.start())
    local p = m:alloc(8)
    local seq = spy.report().blocks[1].seq
    local q, w = m:realloc(p, 100000), where()
    local r = spy.report()
    assert.same({ { q, 100000, w } }, common.blocks(r))
    assert.is_true(r.blocks[1].seq > seq)
    assert.equal(1, r.reallocs)
    m:free(q)
    assert.is_true(spy.stop())
  end)

  it("brings a block allocated before start into the books", function()
    local before = m:alloc(12)
    assert.is_true(spy.start())
    local q, w = m:realloc(before, 40), where()
    assert.same({ { q, 40, w } }, common.blocks())
    m:free(q)
    assert.equal(0, spy.report().count)
    assert.is_true(spy.stop())
  end)

  it("keeps a block's record as it was when the allocator fails", function()
    assert.is_true(spy.start())
    local p = m:alloc(8)
    local r1 = spy.report()
    assert.same(NOMEM, { m:realloc(p, common.helpers.sizemax) })
    local r2 = spy.report()
    -- Wine has also taken p off its own list here: it no longer holds a
    -- stop back (the books of this spy still list it until it is freed)
    assert.same(r1.blocks, r2.blocks)
    assert.equal(8, m:getsize(p))
    m:free(p)
    assert.equal(0, spy.report().count)
    assert.is_true(spy.stop())
  end)

  it("with 0 bytes frees the block in the books", function()
    assert.is_true(spy.start())
    local p = m:alloc(8)
    local r = spy.report()
    assert.is_nil(m:realloc(p, 0))
    assert.equal(0, spy.report().count)
    assert.equal(r.frees + 1, spy.report().frees)
    if common.windows then
      -- Wine: Realloc(p, 0) under a spy does not free p (see above); it is
      -- still a block of the allocator, which no longer counts it as spied
      assert.equal(1, m:didalloc(p))
      m:free(p)
    else
      assert.equal(0, m:didalloc(p))
    end
    assert.equal(0, m:didalloc(p))
    assert.is_true(spy.stop())
  end)

  it("of NULL is an allocation, which a fault rule can fail", function()
    -- in a fresh process, whose spy it leaves pending for good under Wine
    local out = common.helpers.run_fresh [[
      local imalloc = require "imalloc"
      local spy, m = imalloc.spy, imalloc.get()
      local function where()
        local info = debug.getinfo(2, "Sl")
        return info.short_src .. ":" .. info.currentline
      end
      local function show(...)
        local t, n = { ... }, select("#", ...)
        for i = 1, n do t[i] = tostring(t[i]) end
        return table.concat(t, ",", 1, n)
      end
      print("start", spy.start())
      local q, w = m:realloc(nil, 16), where()
      local r = spy.report()
      print("block", #r.blocks, r.blocks[1].address == q, r.blocks[1].size,
        r.blocks[1].where == w, r.allocs)
      spy.fail { nth = 1 }
      print("failed", show(m:realloc(nil, 16)))
      print("failures", spy.report().failures)
      m:free(q)
      print("count", spy.report().count)
      print("stop", show(spy.stop()))
      print("pending", spy.report().pending)
    ]]
    local stop, pending = "true", "false"
    if common.windows then
      -- Wine counted NULL as a spied block freed, twice: its count is below
      -- zero and the stop stays pending although nothing spied is live
      stop = ("nil,%s,%d"):format(imalloc.hresult(imalloc.E_ACCESSDENIED), imalloc.E_ACCESSDENIED)
      pending = "true"
    end
    assert.equal(table.concat({
      "start\ttrue",
      "block\t1\ttrue\t16\ttrue\t1",
      "failed\tnil,not enough memory," .. NOMEM[3],
      "failures\t1",
      "count\t0",
      "stop\t" .. stop,
      "pending\t" .. pending,
      "",
    }, "\n"), out)
  end)
end)
