-- Every argument error, with its message. Errors raised from C carry no
-- position, so the messages are compared whole.
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit

local function bad(fname, n, msg)
  return ("bad argument #%d to '%s' (%s)"):format(n, fname, msg)
end

describe("argument checking", function()
  local m
  before_each(function() m = imalloc.get() end)

  describe("of sizes", function()
    local cases = {
      { "x", "number expected, got string" },
      { "10", "number expected, got string" },
      { {}, "number expected, got table" },
      { true, "number expected, got boolean" },
      { -1, "size must not be negative" },
      { helpers.mininteger, "size must not be negative" },
      { 1.5, "number has no integer representation" },
      { 0 / 0, "number has no integer representation" },
      { math.huge, "number has no integer representation" },
      { 2.0 ^ 64, "number has no integer representation" },
    }

    it("raises for alloc", function()
      for _, c in ipairs(cases) do
        assert.has_error(function() m:alloc(c[1]) end, bad("alloc", 1, c[2]))
      end
      assert.has_error(function() m:alloc() end,
        bad("alloc", 1, "number expected, got no value"))
    end)

    it("raises for realloc", function()
      for _, c in ipairs(cases) do
        assert.has_error(function() m:realloc(nil, c[1]) end, bad("realloc", 2, c[2]))
      end
    end)

    it("accepts a float with an integer value", function()
      local p = m:alloc(8.0)
      assert.equal(8, m:getsize(p))
      m:free(p)
    end)
  end)

  describe("of pointers", function()
    local cases = {
      { "x", "pointer expected, got string" },
      { {}, "pointer expected, got table" },
      { false, "pointer expected, got boolean" },
      { print, "pointer expected, got function" },
      { 1.5, "address must be an integer" },
      { io.stdout, "pointer expected, got " .. helpers.typename(io.stdout) },
    }

    for _, fname in ipairs { "free", "getsize", "didalloc", "realloc" } do
      it("raises for " .. fname, function()
        local call = helpers.method(fname)
        for _, c in ipairs(cases) do
          assert.has_error(function() call(m, c[1], 1) end, bad(fname, 1, c[2]))
        end
        assert.has_error(function() call(m) end,
          bad(fname, 1, "pointer expected, got no value"))
      end)
    end
  end)

  describe("of self", function()
    for _, fname in ipairs { "alloc", "realloc", "free", "getsize", "didalloc",
                             "heapminimize", "queryinterface", "addref",
                             "release", "pointer", "setchecks" } do
      it("raises for " .. fname .. " on something that is not a handle", function()
        local call = helpers.field(fname)
        assert.has_error(function() call(m, {}, 1) end,
          bad(fname, 1, "IMalloc expected, got table"))
        assert.has_error(function() call(m, io.stdout, 1) end,
          bad(fname, 1, "IMalloc expected, got " .. helpers.typename(io.stdout)))
        assert.has_error(function() call(m, nil, 1) end,
          bad(fname, 1, "IMalloc expected, got nil"))
      end)
    end
  end)

  describe("of IIDs", function()
    local msg = 'IID expected as "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}"'
    it("raises for a malformed IID", function()
      for _, iid in ipairs {
        "", "IMalloc", "00000002-0000-0000-C000-000000000046",
        "{00000002-0000-0000-C000-000000000046",
        "{00000002-0000-0000-C000-00000000004G}",
        "{00000002+0000-0000-C000-000000000046}",
        "{00000002-0000-0000-C0000-00000000046}",
        "{00000002-0000-0000-C000-000000000046}x",
      } do
        assert.has_error(function() m:queryinterface(iid) end,
          bad("queryinterface", 1, msg), iid)
      end
    end)

    it("raises for a value that is not a string", function()
      assert.has_error(function() m:queryinterface({}) end,
        bad("queryinterface", 1, "string expected, got table"))
      assert.has_error(function() m:queryinterface() end,
        bad("queryinterface", 1, "string expected, got no value"))
    end)
  end)

  describe("of setchecks", function()
    it("raises without a flag", function()
      assert.has_error(function() m:setchecks() end,
        bad("setchecks", 1, "boolean expected, got no value"))
    end)
  end)
end)
