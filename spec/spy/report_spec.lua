-- spy.report: the outstanding spied blocks (address, size, seq, where) and
-- the counters, for every allocation path of the binding.
local common = require "spy.common"
local imalloc, spy, where = common.imalloc, common.spy, common.where
local peer = require "imalloc_peer"

local m = imalloc.get()

common.isolate()

describe("a block allocated before start", function()
  local before, before_buffer  -- allocated before the spy started
  before_each(function()
    before, before_buffer = m:alloc(24), m:buffer(8)
    assert.is_true(spy.start())
  end)
  after_each(function()
    if before then m:free(before) end
    if before_buffer then before_buffer:free() end
    assert.is_true(spy.stop())
  end)

  it("can be asked about right after start", function()
    -- The first calls after the start ask about a block the spy never saw.
    -- Wine 8's ole32 would fault in GetSize and DidAlloc here if nothing
    -- had been allocated under a spy yet: spy.start makes that first
    -- allocation itself (src/spy.c, first_allocation).
    assert.equal(24, m:getsize(before))
    assert.equal(1, m:didalloc(before))
    assert.equal(8, #before_buffer)
  end)

  it("is not in the report", function()
    local r = spy.report()
    assert.same({}, r.blocks)
    assert.equal(0, r.count)
    assert.equal(0, r.allocs)
  end)

  it("is not counted when it is freed", function()
    m:free(before)
    before_buffer:free()
    before, before_buffer = nil, nil
    local r = spy.report()
    assert.equal(0, r.frees)
    assert.equal(0, r.count)
  end)
end)

describe("spy.report", function()
  common.session()

  it("gives a block allocated on a chunk's line 1 that line", function()
    local p = assert((loadstring or load)("local m = ... local p = m:alloc(5) return p", "=first line"))(m)
    assert.same({ { p, 5, "first line:1" } }, common.blocks(spy.report()))
    m:free(p)
  end)

  it("lists a block of m:alloc with its address, size, seq and line", function()
    local p, w = m:alloc(100), where()
    local r = spy.report()
    assert.same({ { p, 100, w } }, common.blocks(r))
    assert.equal(1, r.blocks[1].seq)
    assert.equal(1, r.count)
    assert.equal(100, r.bytes)
    assert.equal(1, r.allocs)
    m:free(p)
    r = spy.report()
    assert.same({}, r.blocks)
    assert.equal(0, r.bytes)
    assert.equal(1, r.frees)
  end)

  it("names the nearest Lua line when the call went through pcall", function()
    local ok, p = pcall(m.alloc, m, 7) local w = where()
    assert.is_true(ok)
    assert.same({ { p, 7, w } }, common.blocks())
    m:free(p)
  end)

  it("lists COM strings with their sizes, NUL included", function()
    local s, w1 = m:strdup("hello"), where()
    local ws, w2 = m:wstrdup("h\195\169llo"), where()
    assert.same({ { s, 6, w1 }, { ws, 12, w2 } }, common.blocks())
    m:free(s)
    m:free(ws)
  end)

  it("follows a buffer through resize and free", function()
    local b, w = m:buffer(16), where()
    assert.same({ { b:ptr(), 16, w } }, common.blocks())
    local seq = spy.report().blocks[1].seq
    -- resize is Realloc: the block may move, and takes a new seq and the
    -- line of the resize
    b:resize(5000) w = where()
    local r = spy.report()
    assert.same({ { b:ptr(), 5000, w } }, common.blocks(r))
    assert.is_true(r.blocks[1].seq > seq)
    assert.equal(1, r.reallocs)
    -- resize(0) is Alloc(0) then Free of the old block
    b:resize(0) w = where()
    assert.same({ { b:ptr(), 0, w } }, common.blocks())
    b:free()
    assert.same({}, common.blocks())
  end)

  it("follows m:realloc: the block takes its seq and line", function()
    local p, w = m:alloc(10), where()
    local q, w2 = m:realloc(p, 300000), where()
    assert.same({ { q, 300000, w2 } }, common.blocks())
    assert.is_not.equal(w, w2)
    m:free(q)
  end)

  it("lists blocks by seq, oldest first", function()
    local ps = {}
    for i = 1, 40 do ps[i] = m:alloc(i) end
    for i = 1, 40, 3 do m:free(ps[i]); ps[i] = false end
    local r = spy.report()
    local expect = {}
    for i = 1, 40 do
      if ps[i] then expect[#expect + 1] = ps[i] end
    end
    assert.equal(#expect, r.count)
    for i, b in ipairs(r.blocks) do
      assert.equal(expect[i], b.address)
      if i > 1 then assert.is_true(b.seq > r.blocks[i - 1].seq) end
    end
    local bytes = 0
    for _, b in ipairs(r.blocks) do bytes = bytes + b.size end
    assert.equal(bytes, r.bytes)
    for i = 1, 40 do if ps[i] then m:free(ps[i]) end end
    assert.equal(0, spy.report().count)
  end)

  it("gives no block the line of a call on another IMalloc", function()
    -- other:alloc goes to a counting allocator the spy does not watch; the
    -- next spied allocation on this thread, from C, must not take its line
    local other = imalloc.wrap(common.helpers.testkit.counting())
    local x = other:alloc(10)
    local p = peer.give(m, "123456789")
    assert.same({ { p, 10, nil } }, common.blocks())
    m:free(p)
    other:free(x)
  end)

  it("lists a block native code allocated, without a where", function()
    local p = peer.give(m, "from C")
    assert.same({ { p, 7, nil } }, common.blocks())
    m:free(p)
  end)

  it("forgets a buffer's block that the collector freed", function()
    local b = m:buffer(64)
    assert.equal(1, spy.report().count)
    b = nil  -- luacheck: ignore
    common.helpers.collect()
    assert.equal(0, spy.report().count)
  end)

  it("counts allocations, reallocations and frees since start", function()
    local p = m:alloc(10)
    p = m:realloc(p, 20000)
    local s = m:strdup("x")
    m:free(p)
    m:free(s)
    local r = spy.report()
    assert.same({ 2, 1, 2 }, { r.allocs, r.reallocs, r.frees })
    assert.equal(0, r.count)  -- nothing outstanding
    assert.equal(0, r.failures)
    assert.equal(0, r.dropped)
    assert.is_true(r.active)
  end)
end)

describe("spy.format", function()
  it("prints the report, a line per block", function()
    assert.is_true(spy.start())
    local p, w = m:alloc(3), where()
    local q = peer.give(m, "x")
    local text = spy.format()
    assert.equal(table.concat({
      "spy (active): 2 blocks, 5 bytes outstanding; 2 allocs, 0 reallocs, 0 frees; 0 failures injected",
      ("  #1  3 bytes at 0x%x  %s"):format(imalloc.address(p), w),
      ("  #2  2 bytes at 0x%x  (not allocated from Lua)"):format(imalloc.address(q)),
    }, "\n"), text)
    m:free(p)
    m:free(q)
    assert.is_true(spy.stop())
    assert.equal("spy (stopped): 0 blocks, 0 bytes outstanding; 2 allocs, 0 reallocs, 2 frees; 0 failures injected",
      spy.format(spy.report()))
  end)
end)
