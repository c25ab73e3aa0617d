local helpers = require "helpers"

describe("require 'imalloc'", function()
  it("returns a table with the API", function()
    local imalloc = require "imalloc"
    for _, name in ipairs { "get", "wrap", "type", "address", "hresult" } do
      assert.is_function(imalloc[name], name)
    end
  end)

  it("names its backend", function()
    local expected = helpers.windows and "ole32" or "builtin"
    assert.equal(expected, helpers.imalloc.backend)
  end)

  it("leaves the global table alone", function()
    local before = {}
    for k in pairs(_G) do before[k] = true end
    package.loaded["imalloc"], package.loaded["imalloc.core"] = nil, nil
    require "imalloc"
    for k in pairs(_G) do
      assert.is_true(before[k], "new global: " .. tostring(k))
    end
  end)

  it("gives handles and buffers __gc everywhere, __close where Lua has <close>", function()
    local m = helpers.imalloc.get()
    local b = m:buffer(1)
    for _, mt in ipairs { debug.getmetatable(m), debug.getmetatable(b) } do
      assert.is_function(mt.__gc)
      assert.equal(helpers.lua == "5.4", mt.__close ~= nil)
    end
    b:free()
  end)

  it("returns the same core to every require", function()
    assert.equal(require "imalloc.core", require "imalloc.core")
  end)
end)

describe("imalloc.type", function()
  local imalloc = helpers.imalloc

  it("returns 'IMalloc' for a live handle", function()
    assert.equal("IMalloc", imalloc.type(imalloc.get()))
  end)

  it("returns 'released IMalloc' for a released handle", function()
    local m = imalloc.get()
    m:release()
    assert.equal("released IMalloc", imalloc.type(m))
  end)

  it("returns nil for anything else", function()
    assert.is_nil(imalloc.type(nil))
    assert.is_nil(imalloc.type(1))
    assert.is_nil(imalloc.type(io.stdout))
    assert.is_nil(imalloc.type(imalloc.get():pointer()))
  end)

  it("raises without an argument", function()
    assert.has_error(function() imalloc.type() end,
      "bad argument #1 to 'type' (value expected)")
  end)
end)

describe("imalloc.hresult", function()
  local imalloc = helpers.imalloc

  it("returns the name and text of a known HRESULT", function()
    assert.equal("E_INVALIDARG: one or more arguments are invalid",
      imalloc.hresult(0x80070057))
    assert.equal("E_NOINTERFACE: no such interface supported",
      imalloc.hresult(imalloc.E_NOINTERFACE))
  end)

  it("returns the hex code of an unknown one", function()
    assert.equal("HRESULT 0x8000FFFF", imalloc.hresult(0x8000FFFF))
    assert.equal("E_NOTIMPL: not implemented", imalloc.hresult(0x80004001))  -- the first known
  end)

  it("raises for a code outside 32 bits", function()
    assert.has_error(function() imalloc.hresult(-1) end,
      "bad argument #1 to 'hresult' (HRESULT out of range (0 to 0xFFFFFFFF))")
  end)
end)

describe("imalloc.address", function()
  local imalloc = helpers.imalloc

  it("returns a pointer as an integer", function()
    local m = imalloc.get()
    local p = m:alloc(8)
    local a = imalloc.address(p)
    assert.is_true(a ~= 0 and a % 1 == 0)  -- an integer subtype: spec/runtime/5.4
    -- tostring prints "%p": 0x-prefixed on glibc, bare upper-case hex on msvcrt
    local hex = tostring(p):match("^userdata: (%w+)$"):gsub("^0x", "")
    assert.equal(tonumber(hex, 16), a)
    m:free(p)
  end)

  it("returns 0 for nil and an integer as it is", function()
    assert.equal(0, imalloc.address(nil))
    assert.equal(4096, imalloc.address(4096))
  end)
end)

describe("imalloc.hresult of codes it has no name for", function()
  local imalloc = require "imalloc"

  it("writes eight hex digits, leading zeros included", function()
    assert.equal("HRESULT 0x0000FFFF", imalloc.hresult(0xFFFF))
    assert.equal("HRESULT 0x00000002", imalloc.hresult(2))
    assert.equal("HRESULT 0x00000000", imalloc.hresult(0))  -- the lowest taken
    assert.equal("HRESULT 0x0FFFFFFF", imalloc.hresult(0x0FFFFFFF))
    assert.equal("HRESULT 0x10000000", imalloc.hresult(0x10000000))
    assert.equal("HRESULT 0xFFFFFFFF", imalloc.hresult(0xFFFFFFFF))
    assert.equal("HRESULT 0xABCDEF09", imalloc.hresult(0xABCDEF09))
  end)
end)

describe("constants", function()
  local imalloc = require "imalloc"

  it("include S_FALSE and MEMCTX_TASK", function()
    assert.equal(1, imalloc.S_FALSE)
    assert.equal(1, imalloc.MEMCTX_TASK)
    assert.is_not_nil(imalloc.get(imalloc.MEMCTX_TASK))
  end)
end)
