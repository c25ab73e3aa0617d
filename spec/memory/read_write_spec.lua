-- Reading and writing blocks.
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
    assert.equal(0, select("#", m:write(p, "abcdefgh")))  -- returns nothing
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
