-- handle:queryinterface: an answer with another object or with NULL, and
-- the IID string read digit by digit, each case on a boundary that an
-- off-by-one in the C code would move.
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit

local function bad(fname, n, msg)
  return ("bad argument #%d to '%s' (%s)"):format(n, fname, msg)
end

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

describe("handle:queryinterface failing", function()
  it("returns the object's own HRESULT, not E_NOINTERFACE", function()
    local a = testkit.counting()
    local m = imalloc.wrap(a)
    local addrefs = testkit.counts(a).addrefs  -- wrap's own
    testkit.fail_qi_with(a, 0x80004005)
    assert.same({ nil, "E_FAIL: unspecified failure", 0x80004005 },
      { m:queryinterface(imalloc.IID_IMalloc) })
    assert.equal(addrefs, testkit.counts(a).addrefs)  -- none handed out
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
