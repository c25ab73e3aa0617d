-- Memory crossing a module boundary: imalloc_peer is a second native module
-- that links nothing of imalloc. It frees what Lua allocated and allocates
-- what Lua frees, through the IMalloc* of a handle (imalloc.h), and on
-- Windows through ole32's CoTaskMemAlloc / CoTaskMemFree as well.
local helpers = require "helpers"
local imalloc = helpers.imalloc
local peer = require "imalloc_peer"
local run_example = helpers.run_example

describe("a block allocated from Lua", function()
  it("is freed by the other module with the task allocator", function()
    local m = imalloc.get()
    local p = m:strdup("from Lua")
    assert.equal("from Lua", peer.take(m, p))
    assert.equal(0, m:didalloc(p))
  end)

  it("is freed by the other module as a UTF-16 string", function()
    local m = imalloc.get()
    local p = m:wstrdup("h\195\169")
    local n, units = peer.wtake(m, p)
    assert.equal(2, n)
    assert.same({ 0x68, 0xE9 }, units)
    assert.equal(0, m:didalloc(p))
  end)

  it("is handed over from a detached buffer", function()
    local m = imalloc.get()
    local b = m:buffer(6):write("bufer\0")
    assert.equal("bufer", peer.take(m, b:detach()))
  end)

  if helpers.windows then
    it("is freed by ole32's CoTaskMemFree called directly (Windows only)", function()
      local m = imalloc.get()
      local p = m:strdup("to CoTaskMemFree")
      assert.equal("to CoTaskMemFree", peer.cotaskmem_take(p))
      assert.equal(0, m:didalloc(p))
    end)
  end
end)

describe("a block allocated by the other module", function()
  it("is freed from Lua", function()
    local m = imalloc.get()
    local p = peer.give(m, "from C")
    assert.equal(1, m:didalloc(p))
    assert.equal("from C", m:string(p))
    m:free(p)
    assert.equal(0, m:didalloc(p))
  end)

  it("is adopted by a buffer and freed by the collector", function()
    local m = imalloc.get()
    local p = peer.give(m, "adopted")
    local b = m:adopt(p)
    assert.equal(p, peer.buffer_ptr(b))  -- the public buffer layout
    b = nil  -- luacheck: ignore
    helpers.collect()
    assert.equal(0, m:didalloc(p))
  end)

  if helpers.windows then
    it("comes from ole32's CoTaskMemAlloc called directly (Windows only)", function()
      local m = imalloc.get()
      local p = peer.cotaskmem_give("from CoTaskMemAlloc")
      assert.equal(1, m:didalloc(p))
      assert.equal(20, m:getsize(p))
      assert.equal("from CoTaskMemAlloc", m:string(p))
      m:free(p)
    end)
  end
end)

describe("imalloc.h", function()
  it("gives another module the IMalloc* of a live handle, and nil otherwise", function()
    local m = imalloc.get()
    assert.equal(m:pointer(), peer.malloc_of(m))
    assert.is_nil(peer.malloc_of({}))
    local r = imalloc.get()
    r:release()
    assert.is_nil(peer.malloc_of(r))
  end)

  it("lets another module push a handle with its own reference", function()
    local p = helpers.testkit.counting()
    local h = imalloc.wrap(p)
    local pushed = peer.handle(h)
    assert.equal("IMalloc", imalloc.type(pushed))
    assert.is_true(pushed == h)
    assert.equal(3, helpers.testkit.counts(p).refs)
  end)

  it("raises in the other module for a released handle", function()
    local r = imalloc.get()
    r:release()
    assert.has_error(function() peer.take(r, nil) end,
      "bad argument #1 to 'take' (attempt to use a released IMalloc)")
  end)
end)

describe("examples", function()
  it("wide_string.lua hands a UTF-16 string to an API that frees it", function()
    local lines = run_example("examples/wide_string.lua")
    assert.same({
      "wstrdup: 9 UTF-16 units, 20 bytes with the NUL",
      "the API read 9 units and freed the string: DidAlloc is now 0",
      "buffer of 28 bytes, owned by Lua",
      "handed over: the API read 13 units; the buffer is released buffer",
    }, lines)
  end)
end)

describe("imalloc.h, for other C modules", function()
  it("raises a type error for a value that is no handle", function()
    assert.has_error(function() peer.take("x", nil) end,
      "bad argument #1 to 'take' (IMalloc expected, got string)")
    assert.has_error(function() peer.take(io.stdout, nil) end,
      "bad argument #1 to 'take' (IMalloc expected, got " .. helpers.typename(io.stdout) .. ")")
    assert.has_error(function() peer.take(helpers.testkit.static_pointer(), nil) end,
      "bad argument #1 to 'take' (IMalloc expected, got light userdata)")
  end)
end)
