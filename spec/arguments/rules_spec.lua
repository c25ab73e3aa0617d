-- One rule for every argument: integers are numbers (a numeric string is
-- refused everywhere, as for sizes), setchecks takes a boolean, data is a
-- string and never a number, addresses are never negative. (How an error
-- names the function: names_spec.lua.)
local helpers = require "helpers"
local imalloc = helpers.imalloc

local function bad(fname, n, msg)
  return ("bad argument #%d to '%s' (%s)"):format(n, fname, msg)
end

describe("an integer argument", function()
  it("is refused as a numeric string by imalloc.get", function()
    assert.has_error(function() imalloc.get("1") end,
      bad("get", 1, "number expected, got string"))
  end)

  it("is refused as a numeric string by imalloc.hresult", function()
    assert.has_error(function() imalloc.hresult("0x80004001") end,
      bad("hresult", 1, "number expected, got string"))
    assert.has_error(function() imalloc.hresult("0") end,
      bad("hresult", 1, "number expected, got string"))
  end)

  it("is refused as a numeric string in a spy rule", function()
    for _, rule in ipairs {
      { { nth = "2" }, "nth must be an integer of at least 1" },
      { { above = "8" }, "above must be a non-negative integer" },
      { { fraction = "0.5" }, "fraction must be a number from 0 to 1" },
      { { fraction = 0.5, seed = "5" }, "seed must be an integer" },
    } do
      local ok, err = pcall(imalloc.spy.start, { fail = rule[1] })
      if ok then imalloc.spy.stop() end
      assert.is_false(ok, rule[2])
      assert.matches(rule[2], err, 1, true)
    end
  end)
end)

describe("handle:setchecks", function()
  it("takes a boolean only", function()
    local m = assert(imalloc.get())
    for _, v in ipairs { 0, 1, "false", {} } do
      assert.has_error(function() m:setchecks(v) end,
        bad("setchecks", 1, "boolean expected, got " .. type(v)))
    end
    assert.has_error(function() m:setchecks(nil) end,
      bad("setchecks", 1, "boolean expected, got nil"))
    assert.has_error(function() m:setchecks() end,
      bad("setchecks", 1, "boolean expected, got no value"))
    assert.equal(m, m:setchecks(false))
    assert.equal(m, m:setchecks(true))
  end)
end)

describe("data given as a number", function()
  local m = assert(imalloc.get())

  it("is refused by write, strdup, wstrdup, bufferof and queryinterface", function()
    local p = assert(m:alloc(8))
    local b = m:buffer(8)
    assert.has_error(function() m:write(p, 12) end,
      "bad argument #2 to 'write' (string expected, got number)")
    assert.has_error(function() b:write(12) end,
      "bad argument #1 to 'write' (string expected, got number)")
    assert.has_error(function() m:strdup(12) end,
      "bad argument #1 to 'strdup' (string expected, got number)")
    assert.has_error(function() m:wstrdup(12) end,
      "bad argument #1 to 'wstrdup' (string expected, got number)")
    assert.has_error(function() m:bufferof(12) end,
      "bad argument #1 to 'bufferof' (string expected, got number)")
    assert.has_error(function() m:queryinterface(2) end,
      "bad argument #1 to 'queryinterface' (string expected, got number)")
    b:free()
    m:free(p)
  end)
end)

describe("a negative address", function()
  local m = assert(imalloc.get())

  it("is out of range on every Lua", function()
    for _, a in ipairs { -1, -16, helpers.mininteger } do
      assert.has_error(function() imalloc.address(a) end,
        "bad argument #1 to 'address' (address out of range)")
      assert.has_error(function() m:didalloc(a) end,
        "bad argument #1 to 'didalloc' (address out of range)")
      assert.has_error(function() m:free(a) end,
        "bad argument #1 to 'free' (address out of range)")
    end
  end)
end)
