-- Reading and writing blocks, and strings the way COM wants them.
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit

local function bad(fname, n, msg)
  return ("bad argument #%d to '%s' (%s)"):format(n, fname, msg)
end
local NOT_OURS = "pointer is not a live block of this IMalloc"

describe("handle:write", function()
  local m
  before_each(function() m = imalloc.get() end)

  it("copies a string into a block, at an offset", function()
    local p = m:alloc(8)
    m:write(p, "abcdefgh")
    m:write(p, "XY", 3)
    assert.equal("abcXYfgh", testkit.peek(p, 8))
    m:free(p)
  end)

  it("writes the empty string at the end of a block", function()
    local p = m:alloc(4)
    assert.has_no_error(function() m:write(p, "", 4) end)
    m:free(p)
  end)

  it("raises out of bounds and writes nothing", function()
    local p = m:alloc(4)
    m:write(p, "1234")
    assert.has_error(function() m:write(p, "abcde") end,
      bad("write", 2, "out of bounds: 5 bytes at offset 0 of a 4-byte block"))
    assert.has_error(function() m:write(p, "ab", 3) end,
      bad("write", 2, "out of bounds: 2 bytes at offset 3 of a 4-byte block"))
    assert.has_error(function() m:write(p, "", 5) end,
      bad("write", 2, "out of bounds: 0 bytes at offset 5 of a 4-byte block"))
    assert.equal("1234", testkit.peek(p, 4))
    m:free(p)
  end)

  it("raises for a bad offset", function()
    local p = m:alloc(4)
    assert.has_error(function() m:write(p, "a", -1) end,
      bad("write", 3, "offset must not be negative"))
    assert.has_error(function() m:write(p, "a", 0.5) end,
      bad("write", 3, "number has no integer representation"))
    assert.has_error(function() m:write(p, "a", "1") end,
      bad("write", 3, "number expected, got string"))
    m:free(p)
  end)

  it("raises for freed, foreign and NULL pointers", function()
    local p = m:alloc(4)
    m:free(p)
    assert.has_error(function() m:write(p, "a") end, bad("write", 1, NOT_OURS))
    assert.has_error(function() m:write(testkit.static_pointer(), "a") end,
      bad("write", 1, NOT_OURS))
    assert.has_error(function() m:write(nil, "a") end, bad("write", 1, "NULL pointer"))
    local q = m:alloc(1)
    assert.has_error(function() m:write(q, {}) end,
      bad("write", 2, "string expected, got table"))
    m:free(q)
  end)
end)

describe("handle:read", function()
  local m
  before_each(function() m = imalloc.get() end)

  it("returns the rest of the block by default", function()
    local p = m:alloc(6)
    m:write(p, "abcdef")
    assert.equal("abcdef", m:read(p))
    assert.equal("abc", m:read(p, 3))
    assert.equal("cd", m:read(p, 2, 2))
    assert.equal("def", m:read(p, nil, 3))
    assert.equal("", m:read(p, nil, 6))
    m:free(p)
  end)

  it("returns the empty string for a zero-length block", function()
    local p = m:alloc(0)
    assert.equal("", m:read(p))
    m:free(p)
  end)

  it("raises out of bounds", function()
    local p = m:alloc(6)
    assert.has_error(function() m:read(p, 7) end,
      bad("read", 2, "out of bounds: 7 bytes at offset 0 of a 6-byte block"))
    assert.has_error(function() m:read(p, 1, 6) end,
      bad("read", 2, "out of bounds: 1 bytes at offset 6 of a 6-byte block"))
    assert.has_error(function() m:read(p, nil, 7) end,
      bad("read", 3, "out of bounds: 0 bytes at offset 7 of a 6-byte block"))
    assert.has_error(function() m:read(p, -1) end,
      bad("read", 2, "length must not be negative"))
    m:free(p)
  end)

  it("raises for an interior pointer", function()
    local p = m:alloc(16)
    assert.has_error(function() m:read(testkit.offset(p, 8), 1) end,
      bad("read", 1, NOT_OURS))
    m:free(p)
  end)
end)

describe("handle:string", function()
  it("returns the bytes up to the first NUL, or to the end", function()
    local m = imalloc.get()
    local p = m:alloc(8)
    m:write(p, "ab\0cdefg")
    assert.equal("ab", m:string(p))
    m:write(p, "abcdefgh")
    assert.equal("abcdefgh", m:string(p))
    m:free(p)
  end)
end)

describe("handle:strdup", function()
  it("returns a NUL-terminated copy in a new block", function()
    local m = imalloc.get()
    local p = m:strdup("a\0b")
    assert.equal(4, m:getsize(p))
    assert.equal("a\0b\0", m:read(p))
    m:free(p)
  end)

  it("raises for a non-string", function()
    local m = imalloc.get()
    assert.has_error(function() m:strdup({}) end,
      bad("strdup", 1, "string expected, got table"))
  end)
end)

describe("handle:wstrdup", function()
  local m
  before_each(function() m = imalloc.get() end)

  it("returns UTF-16LE with a NUL, and its length in units", function()
    local p, n = m:wstrdup("A\195\169\226\130\172\240\159\152\128")
    assert.equal(5, n)  -- the emoji is a surrogate pair
    assert.equal(12, m:getsize(p))
    assert.equal("A\0\233\0\172\032\061\216\000\222\0\0", m:read(p))
    m:free(p)
  end)

  it("returns a lone NUL for the empty string", function()
    local p, n = m:wstrdup("")
    assert.equal(0, n)
    assert.equal("\0\0", m:read(p))
    m:free(p)
  end)

  it("raises for invalid UTF-8, naming the byte", function()
    local cases = {
      { "\255", 1 }, { "ab\128", 3 }, { "\192\175", 1 },   -- stray, overlong
      { "x\237\160\128", 2 },                             -- a surrogate
      { "\244\144\128\128", 1 },                          -- beyond U+10FFFF
      { "\226\130", 1 },                                  -- truncated
    }
    for _, c in ipairs(cases) do
      assert.has_error(function() m:wstrdup(c[1]) end,
        bad("wstrdup", 1, ("invalid UTF-8 at byte %d"):format(c[2])))
    end
  end)
end)

describe("handle:wstring", function()
  local m
  before_each(function() m = imalloc.get() end)

  it("returns UTF-8 up to the NUL", function()
    local s = "gr\195\188\195\159e \240\159\152\128"
    local p = m:wstrdup(s)
    assert.equal(s, m:wstring(p))
    m:free(p)
  end)

  it("stops at the end of a block without a NUL", function()
    local p = m:alloc(4)
    m:write(p, "h\0i\0")
    assert.equal("hi", m:wstring(p))
    m:free(p)
  end)

  it("returns exactly n units when given, NULs included", function()
    local p = m:alloc(6)
    m:write(p, "a\0\0\0b\0")
    assert.equal("a\0b", m:wstring(p, 3))
    assert.equal("a", m:wstring(p, 1))
    assert.has_error(function() m:wstring(p, 4) end,
      bad("wstring", 2, "out of bounds: 4 characters in a 6-byte block"))
    m:free(p)
  end)

  it("turns unpaired surrogates into U+FFFD", function()
    local p = m:alloc(10)
    -- lone high, lone low, then a high followed by a non-surrogate
    m:write(p, "\061\216\000\222x\0\061\216y\0")
    assert.equal("\240\159\152\128x\239\191\189y", m:wstring(p, 5))
    m:write(p, "\000\222\061\216\0\0")
    assert.equal("\239\191\189\239\191\189", m:wstring(p))
    m:free(p)
  end)
end)
