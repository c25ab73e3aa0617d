-- The edges of each range the binding converts or checks: code points at
-- the limits of every UTF-8 length and of the surrogate block, HRESULTs
-- whose hex form has leading zeros, a QueryInterface that answers with
-- another object. Each case sits on a boundary that an off-by-one in the
-- C code would move.
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit

local function bad(fname, n, msg)
  return ("bad argument #%d to '%s' (%s)"):format(n, fname, msg)
end

-- The UTF-16LE bytes of a list of units.
local function le16(...)
  local out = {}
  for i, u in ipairs { ... } do out[i] = helpers.u16le(u) end
  return table.concat(out)
end

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

  it("replaces a low surrogate that comes first", function()
    assert.equal("\239\191\189", decode(0xDC00))
    assert.equal("\239\191\189", decode(0xDFFF))
    assert.equal("\239\191\189\239\191\189", decode(0xDFFF, 0xDBFF))
  end)
end)

describe("imalloc.hresult of codes it has no name for", function()
  it("writes eight hex digits, leading zeros included", function()
    assert.equal("HRESULT 0x0000FFFF", imalloc.hresult(0xFFFF))
    assert.equal("HRESULT 0x00000002", imalloc.hresult(2))
    assert.equal("HRESULT 0x0FFFFFFF", imalloc.hresult(0x0FFFFFFF))
    assert.equal("HRESULT 0x10000000", imalloc.hresult(0x10000000))
    assert.equal("HRESULT 0xFFFFFFFF", imalloc.hresult(0xFFFFFFFF))
    assert.equal("HRESULT 0xABCDEF09", imalloc.hresult(0xABCDEF09))
  end)
end)

describe("handle:queryinterface answered with another object", function()
  it("releases that object's reference and returns E_NOINTERFACE", function()
    local a, b = testkit.counting(), testkit.counting()
    testkit.answer_qi_with(a, b)
    local m = imalloc.wrap(a)
    assert.same({ nil, "E_NOINTERFACE: no such interface supported", 0x80004002 },
      { m:queryinterface(imalloc.IID_IMalloc) })
    local cb = testkit.counts(b)
    assert.equal(1, cb.addrefs)    -- QueryInterface's reference ...
    assert.equal(1, cb.releases)   -- ... given back at once
    assert.equal(1, cb.refs)
    m:release()
    assert.equal(1, testkit.counts(a).refs)  -- the caller's, from counting()
  end)

  it("returns E_NOINTERFACE for a success that hands out NULL", function()
    local a = testkit.counting()
    testkit.answer_qi_with(a, false)
    local m = imalloc.wrap(a)
    assert.same({ nil, "E_NOINTERFACE: no such interface supported", 0x80004002 },
      { m:queryinterface(imalloc.IID_IUnknown) })
    m:release()
    assert.equal(1, testkit.counts(a).refs)
  end)
end)

describe("handle:queryinterface reading an IID", function()
  local m
  before_each(function() m = imalloc.get() end)
  after_each(function() m:release() end)

  local IMALLOC = "{00000002-0000-0000-C000-000000000046}"
  local function at(s, i, c) return s:sub(1, i - 1) .. c .. s:sub(i + 1) end
  local MALFORMED = 'IID expected as "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}"'

  it("takes the digits 0-9, a-f and A-F in every position", function()
    for i = 2, 37 do
      if not (i == 10 or i == 15 or i == 20 or i == 25) then
        for c in ("09afAF"):gmatch(".") do
          local q, msg = m:queryinterface(at(IMALLOC, i, c))
          if q then q:release() else assert.matches("^E_NOINTERFACE", msg) end
        end
      end
    end
  end)

  it("refuses the characters next to each digit range, in every position", function()
    for i = 2, 37 do
      local chars = (i == 10 or i == 15 or i == 20 or i == 25)
        and { "0", "+", "x" } or { "/", ":", "@", "G", "`", "g", "-" }
      for _, c in ipairs(chars) do
        assert.has_error(function() m:queryinterface(at(IMALLOC, i, c)) end,
          bad("queryinterface", 1, MALFORMED), at(IMALLOC, i, c))
      end
    end
    for _, s in ipairs { at(IMALLOC, 1, "("), at(IMALLOC, 38, ")"),
                         IMALLOC:sub(1, 37), IMALLOC .. "}" } do
      assert.has_error(function() m:queryinterface(s) end,
        bad("queryinterface", 1, MALFORMED), s)
    end
  end)

  it("reads every field: one digit changed anywhere is another IID", function()
    for i = 2, 37 do
      if not (i == 10 or i == 15 or i == 20 or i == 25) then
        local other = at(IMALLOC, i, IMALLOC:sub(i, i) == "1" and "2" or "1")
        assert.same({ nil, "E_NOINTERFACE: no such interface supported", 0x80004002 },
          { m:queryinterface(other) }, other)
      end
    end
  end)
end)

describe("imalloc.h, for other C modules", function()
  it("raises a type error for a value that is no handle", function()
    local peer = require "imalloc_peer"
    assert.has_error(function() peer.take("x", nil) end,
      "bad argument #1 to 'take' (IMalloc expected, got string)")
    assert.has_error(function() peer.take(io.stdout, nil) end,
      "bad argument #1 to 'take' (IMalloc expected, got " .. helpers.typename(io.stdout) .. ")")
    assert.has_error(function() peer.take(testkit.static_pointer(), nil) end,
      "bad argument #1 to 'take' (IMalloc expected, got light userdata)")
  end)
end)

describe("buffers when the allocator fails", function()
  it("resize(0) returns fail and keeps the buffer as it was; bufferof fails", function()
    -- a counting IMalloc holds at most 1024 blocks: fill it
    local m = imalloc.wrap(testkit.counting())
    local b = m:buffer(8)
    b:write("abcdefgh")
    local filler = {}
    for _ = 1, 2000 do
      local p = m:alloc(1)
      if not p then break end
      filler[#filler + 1] = p
    end
    assert.equal(1023, #filler)
    assert.same({ nil, "not enough memory", 0x8007000E }, { b:resize(0) })
    assert.same({ nil, "not enough memory", 0x8007000E }, { m:bufferof("xyz") })
    assert.equal(8, #b)
    assert.equal("abcdefgh", b:read())
    for _, p in ipairs(filler) do m:free(p) end
    assert.equal(b, b:resize(0))
    assert.equal(0, #b)
    b:free()
    m:release()
  end)
end)
