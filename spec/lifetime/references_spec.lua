-- A handle owns the references it took and gives back exactly those. The
-- counting IMalloc of the test kit records every AddRef and Release. And
-- what many handles or buffers take in Lua memory goes back once they are gone.
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit

local function counted()
  local p = testkit.counting()  -- one reference, the spec's own
  return p, function() return testkit.counts(p) end
end

describe("a handle's lifetime", function()
  it("takes one reference on wrap and gives it back when collected", function()
    local p, counts = counted()
    local h = imalloc.wrap(p)
    assert.same({ 1, 0, 2 }, { counts().addrefs, counts().releases, counts().refs })
    h = nil  -- luacheck: ignore
    helpers.collect()
    assert.same({ 1, 1, 1 }, { counts().addrefs, counts().releases, counts().refs })
  end)

  it("gives back nothing more after release", function()
    local p, counts = counted()
    local h = imalloc.wrap(p)
    local com, owned = h:release()
    assert.same({ 1, 0 }, { com, owned })
    assert.equal("released IMalloc", imalloc.type(h))
    h = nil  -- luacheck: ignore
    helpers.collect()
    assert.equal(1, counts().releases)
    assert.equal(1, counts().refs)
  end)

  it("gives back every addref'd reference, and only those", function()
    local p, counts = counted()
    local h = imalloc.wrap(p)
    assert.equal(3, h:addref())
    assert.equal(4, h:addref())
    local com, owned = h:release()
    assert.same({ 3, 2 }, { com, owned })
    h = nil  -- luacheck: ignore
    helpers.collect()
    assert.same({ 3, 3, 1 }, { counts().addrefs, counts().releases, counts().refs })
  end)

  it("stays live until the last owned reference is released", function()
    local p = counted()
    local h = imalloc.wrap(p)
    h:addref()
    h:release()
    assert.equal("IMalloc", imalloc.type(h))
    h:release()
    assert.equal("released IMalloc", imalloc.type(h))
  end)

  it("raises on every method once released", function()
    local h = imalloc.get()
    h:release()
    local calls = {
      alloc = { 1 }, realloc = { nil, 1 }, free = { nil }, getsize = { nil },
      didalloc = { nil }, heapminimize = {}, queryinterface = { imalloc.IID_IMalloc },
      addref = {}, release = {}, pointer = {}, setchecks = { true },
    }
    for name, args in pairs(calls) do
      local call = helpers.method(name)
      assert.has_error(function() call(h, helpers.unpack(args, 1, 2)) end,
        "attempt to use a released IMalloc", name)
    end
  end)

  it("lets __gc run on a released handle without effect", function()
    local p, counts = counted()
    local h = imalloc.wrap(p)
    h:release()
    local mt = debug.getmetatable(h)
    mt.__gc(h)
    mt.__gc(h)
    assert.equal(1, counts().releases)
  end)

  it("gives back the references of 100,000 collected handles, and their memory", function()
    local p, counts = counted()
    helpers.collect()
    local before = collectgarbage("count")
    for _ = 1, 100000 do imalloc.wrap(p) end
    for _ = 1, 100000 do imalloc.get() end
    helpers.collect()
    assert.equal(100000, counts().releases)
    assert.equal(1, counts().refs)
    assert.is_true(collectgarbage("count") < before + 64,
      ("%.0f KiB before, %.0f KiB after"):format(before, collectgarbage("count")))
  end)
end)

describe("the table of blocks that buffers own", function()
  local m = assert(imalloc.get())

  it("gives its room back once the buffers are gone", function()
    collectgarbage()
    collectgarbage()
    local before = collectgarbage("count")
    local t = {}
    for i = 1, 100000 do t[i] = m:buffer(0) end
    local peak = collectgarbage("count")
    for i = 1, #t do t[i]:free() end
    t = nil  -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    local after = collectgarbage("count")
    -- 100000 buffers take some 10 MB of Lua memory, their record a few; all
    -- of it goes back (a margin of 256 KB for the runtimes' own growth)
    assert.is_true(peak - before > 4096, ("peak %.0f KB over %.0f KB"):format(peak, before))
    assert.is_true(after - before < 256, ("%.0f KB kept"):format(after - before))
  end)
end)
