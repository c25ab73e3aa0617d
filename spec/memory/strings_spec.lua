-- Strings the way COM wants them: NUL-terminated bytes and UTF-16LE, and
-- the edges of each range the conversions check: code points at the limits
-- of every UTF-8 length and of the surrogate block. Each boundary case sits
-- where an off-by-one in the C code would move it.
local helpers = require "helpers"
local imalloc = helpers.imalloc

local function bad(fname, n, msg)
  return ("bad argument #%d to '%s' (%s)"):format(n, fname, msg)
end

-- The UTF-16LE bytes of a list of units.
local function le16(...)
  local out = {}
  for i, u in ipairs { ... } do out[i] = helpers.u16le(u) end
  return table.concat(out)
end

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

describe("handle:wstrdup at code point boundaries", function()
  local m
  before_each(function() m = imalloc.get() end)

  -- code point, its UTF-8 (written out, not made by utf8.char), UTF-16 units
  local cases = {
    { 0x7F, "\127", { 0x7F } },                     -- last 1-byte form
    { 0x80, "\194\128", { 0x80 } },                 -- first 2-byte form
    { 0x7FF, "\223\191", { 0x7FF } },               -- last 2-byte form
    { 0x800, "\224\160\128", { 0x800 } },           -- first 3-byte form
    { 0xD7FF, "\237\159\191", { 0xD7FF } },         -- just below surrogates
    { 0xE000, "\238\128\128", { 0xE000 } },         -- just above them
    { 0xFFFF, "\239\191\191", { 0xFFFF } },         -- last of the BMP
    { 0x10000, "\240\144\128\128", { 0xD800, 0xDC00 } }, -- first pair
    { 0x40000, "\241\128\128\128", { 0xD8C0, 0xDC00 } }, -- each 4-byte lead
    { 0xFFFFF, "\243\191\191\191", { 0xDBBF, 0xDFFF } },
    { 0x100000, "\244\128\128\128", { 0xDBC0, 0xDC00 } },
    { 0x10FFFF, "\244\143\191\191", { 0xDBFF, 0xDFFF } }, -- last code point
  }

  for _, c in ipairs(cases) do
    it(("encodes U+%04X as %d unit(s) and reads it back"):format(c[1], #c[3]),
      function()
        local p, n = m:wstrdup("<" .. c[2] .. ">")
        assert.equal(#c[3] + 2, n)
        assert.equal(le16(0x3C, helpers.unpack(c[3])) .. le16(0x3E, 0),
          m:read(p))
        assert.equal("<" .. c[2] .. ">", m:wstring(p))
        m:free(p)
      end)
  end

  it("refuses the forms just outside each range, naming the byte", function()
    local refused = {
      { "\193\191", "U+007F in two bytes (overlong)" },
      { "\224\159\191", "U+07FF in three bytes (overlong)" },
      { "\240\143\191\191", "U+FFFF in four bytes (overlong)" },
      { "\237\160\128", "U+D800, first surrogate" },
      { "\237\191\191", "U+DFFF, last surrogate" },
      { "\244\144\128\128", "U+110000, beyond the last code point" },
      { "\245\128\128\128", "a lead byte beyond U+10FFFF" },
      { "\248\136\128\128\128", "a five-byte lead" },
      { "\248\144\128\128", "a five-byte lead, as if it led U+10000 in four" },
      { "\255\144\128\128", "the byte 0xFF, as if it led U+10000 in four" },
      { "\226\040\161", "a continuation byte missing" },
      { "\240\144\128", "a four-byte form cut short" },
    }
    for _, r in ipairs(refused) do
      assert.has_error(function() m:wstrdup("ok" .. r[1]) end,
        bad("wstrdup", 1, "invalid UTF-8 at byte 3"), r[2])
    end
  end)
end)

describe("handle:wstring at surrogate boundaries", function()
  local m
  before_each(function() m = imalloc.get() end)

  local function decode(...)
    local bytes = le16(...)
    local p = m:alloc(#bytes)
    m:write(p, bytes)
    local s = m:wstring(p, select("#", ...))
    m:free(p)
    return s
  end

  it("decodes the units next to the surrogate block as themselves", function()
    assert.equal("\237\159\191", decode(0xD7FF))
    assert.equal("\238\128\128", decode(0xE000))
    assert.equal("\239\191\191", decode(0xFFFF))
    assert.equal("\223\191\224\160\128", decode(0x7FF, 0x800))
    assert.equal("\127\194\128", decode(0x7F, 0x80))
  end)

  it("joins the first and last pairs", function()
    assert.equal("\240\144\128\128", decode(0xD800, 0xDC00))
    assert.equal("\244\143\191\191", decode(0xDBFF, 0xDFFF))
  end)

  it("replaces a high surrogate not followed by a low one", function()
    assert.equal("\239\191\189\237\159\191", decode(0xDBFF, 0xD7FF))
    assert.equal("\239\191\189\238\128\128", decode(0xDBFF, 0xE000))
    assert.equal("\239\191\189\239\191\189", decode(0xD800, 0xD800))
    assert.equal("a\239\191\189", decode(0x61, 0xDBFF))  -- at the end
  end)

  it("pairs only a high surrogate with a low one", function()
    assert.equal("\237\159\191\239\191\189", decode(0xD7FF, 0xDC00))
    assert.equal("\239\191\189\239\191\189", decode(0xDC00, 0xDC00))
    assert.equal("\239\191\189\239\191\189", decode(0xD800, 0xDBFF))
    assert.equal("\239\191\189\238\128\128", decode(0xD800, 0xE000))
  end)

  it("replaces a low surrogate that comes first", function()
    assert.equal("\239\191\189", decode(0xDC00))
    assert.equal("\239\191\189", decode(0xDFFF))
    assert.equal("\239\191\189\239\191\189", decode(0xDFFF, 0xDBFF))
  end)
end)
