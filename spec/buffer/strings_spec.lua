-- Buffers as strings: b:string(), b:wstring(), m:bufferof(s), and what
-- tostring says.
local helpers = require "helpers"
local imalloc = helpers.imalloc

describe("handle:bufferof", function()
  local m
  before_each(function() m = assert(imalloc.get()) end)

  it("returns a buffer holding a copy of the string, no NUL added", function()
    local b = assert(m:bufferof("by\0tes"))
    assert.equal("buffer", imalloc.type(b))
    assert.equal(6, #b)
    assert.equal("by\0tes", b:read())
    assert.equal(6, m:getsize(b:ptr()))
    b:free()
  end)

  it("returns a zero-byte buffer for the empty string", function()
    local b = assert(m:bufferof(""))
    assert.equal(0, #b)
    assert.equal("", b:read())
    b:free()
  end)

  it("raises for a value that is not a string", function()
    assert.has_error(function() m:bufferof({}) end,
      "bad argument #1 to 'bufferof' (string expected, got table)")
  end)
end)

describe("buffer:string", function()
  it("returns the bytes up to the first NUL, or all of them", function()
    local m = assert(imalloc.get())
    assert.equal("abc", assert(m:bufferof("abc\0def")):string())
    assert.equal("abcdef", assert(m:bufferof("abcdef")):string())
  end)
end)

describe("buffer:wstring", function()
  it("returns UTF-16LE as UTF-8, to the NUL or exactly n units", function()
    local m = assert(imalloc.get())
    local p, units = m:wstrdup("Grüße")
    local b = m:adopt(p)
    assert.equal(5, units)
    assert.equal("Grüße", b:wstring())
    assert.equal("Grü", b:wstring(3))
    assert.equal("Grüße\0", b:wstring(6))
    assert.has_error(function() b:wstring(7) end,
      "bad argument #1 to 'wstring' (out of bounds: 7 characters in a 12-byte block)")
    b:free()
  end)
end)

describe("tostring of a buffer", function()
  it("gives its size and the block's address", function()
    local m = assert(imalloc.get())
    local b = assert(m:buffer(16))
    local address = ("%x"):format(imalloc.address(b:ptr()))
    assert.equal("IMalloc buffer (16 bytes at 0x" .. address .. ")", tostring(b))
    b:free()
    assert.equal("IMalloc buffer (released)", tostring(b))
  end)
end)
