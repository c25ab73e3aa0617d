-- To-be-closed variables (`local x <close>`), which only Lua 5.4 has: a
-- handle gives back its references and a buffer frees its block at the end
-- of the scope, however the scope ends. CMake runs this file (and all of
-- spec/runtime/5.4/) on Lua 5.4 only; the other runtimes give the same objects
-- back through __gc (spec/lifetime/references, spec/lifetime/collector,
-- spec/buffer/methods).
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit
local counted = helpers.counted

describe("a handle", function()
  it("gives it back at the end of a <close> scope, and not again when collected", function()
    local p = testkit.counting()
    local function counts() return testkit.counts(p) end
    do
      local h <close> = imalloc.wrap(p)
      assert.equal(2, counts().refs)
    end
    assert.equal(1, counts().releases)
    helpers.collect()
    assert.equal(1, counts().releases)
  end)
end)

describe("a handle closed by its scope", function()
  it("raises when used after (handle/fastcheck: its methods check it is still live)", function()
    local kept
    do
      local m <close> = assert(imalloc.get())
      m:heapminimize()
      kept = m
    end
    assert.has_error(function() kept:heapminimize() end, "attempt to use a released IMalloc")
  end)
end)

describe("__close", function()
  it("does nothing on a released handle or a freed buffer, before or after __gc", function()
    local p, expect = counted()
    local h = imalloc.wrap(p)
    local b = h:buffer(8)
    local hmt, bmt = debug.getmetatable(h), debug.getmetatable(b)
    bmt.__close(b)
    bmt.__gc(b)
    bmt.__close(b)
    hmt.__close(h)
    hmt.__gc(h)
    hmt.__close(h)
    expect(0, 0)
    assert.equal("released buffer", imalloc.type(b))
    assert.equal("released IMalloc", imalloc.type(h))
  end)
end)

describe("a buffer", function()
  local m
  before_each(function() m = imalloc.get() end)
  after_each(function() m:release() end)

  it("frees the block at the end of a <close> scope", function()
    local p
    do
      local b <close> = m:buffer(8)
      p = b:ptr()
    end
    assert.equal(0, m:didalloc(p))
  end)
end)

describe("a <close> scope", function()
  it("gives back its handles and buffers when an error is thrown in the middle", function()
    local p, expect = counted()
    local ok, err = pcall(function()
      local h <close> = imalloc.wrap(p)
      local b <close> = h:buffer(32)
      local a <close> = h:adopt(h:alloc(4))
      b:write("x")
      error("thrown in the middle", 0)
    end)
    assert.same({ false, "thrown in the middle" }, { ok, err })
    expect(0, 0)
    helpers.collect()
    expect(0, 0)
  end)

  it("closes every variable when another variable's __close raises", function()
    local p, expect = counted()
    local ok, err = pcall(function()
      local h <close> = imalloc.wrap(p)
      local bad <close> = setmetatable({}, { __close = function() error("close failed", 0) end })
      local b <close> = h:buffer(8)
    end)
    assert.same({ false, "close failed" }, { ok, err })
    expect(0, 0)
  end)

  it("closes every variable when the body and a __close both raise", function()
    local p, expect = counted()
    local ok, err = pcall(function()
      local h <close> = imalloc.wrap(p)
      local b <close> = h:buffer(8)
      local bad <close> = setmetatable({}, { __close = function(_, e) error("close saw: " .. e, 0) end })
      error("body", 0)
    end)
    assert.same({ false, "close saw: body" }, { ok, err })
    expect(0, 0)
  end)

  it("gives back nothing more for a handle released and a buffer freed inside it", function()
    local p, expect = counted()
    do
      local h <close> = imalloc.wrap(p)
      h:addref()
      local b <close> = h:buffer(8)
      b:free()
      h:release()
      h:release()
      expect(0, 0)
    end
    expect(0, 0)
    helpers.collect()
    expect(0, 0)
  end)

  it("leaves the block of a buffer detached inside it to its new owner", function()
    local p, expect = counted()
    local h = imalloc.wrap(p)
    local ptr
    do
      local b <close> = h:buffer(8)
      ptr = b:detach()
    end
    expect(1, 1)
    assert.equal(1, h:didalloc(ptr))
    h:free(ptr)
    h:release()
    expect(0, 0)
  end)

  it("closes on break and goto out of the scope", function()
    local p, expect = counted()
    for _ = 1, 3 do
      local h <close> = imalloc.wrap(p)
      local b <close> = h:buffer(4)
      break
    end
    expect(0, 0)
    do
      local h <close> = imalloc.wrap(p)
      goto out
    end
    ::out::
    expect(0, 0)
  end)

  it("is closed by coroutine.close in a coroutine suspended inside it", function()
    local p, expect = counted()
    local co = coroutine.create(function()
      local h <close> = imalloc.wrap(p)
      local b <close> = h:buffer(4)
      coroutine.yield()
    end)
    assert.is_true(coroutine.resume(co))
    expect(2, 1)
    assert.same({ true }, { coroutine.close(co) })
    expect(0, 0)
    co = nil  -- luacheck: ignore
    helpers.collect()
    expect(0, 0)
  end)

  it("is closed by coroutine.close after an error inside it, or else by the collector", function()
    local p, expect = counted()
    local body = function()
      local h <close> = imalloc.wrap(p)
      local b <close> = h:buffer(4)
      error("in the coroutine", 0)
    end
    local co = coroutine.create(body)
    assert.same({ false, "in the coroutine" }, { coroutine.resume(co) })
    assert.same({ false, "in the coroutine" }, { coroutine.close(co) })
    expect(0, 0)
    -- never closed: the handle and buffer are left to their __gc
    co = coroutine.create(body)
    coroutine.resume(co)
    co = nil  -- luacheck: ignore
    helpers.collect()
    expect(0, 0)
  end)
end)
