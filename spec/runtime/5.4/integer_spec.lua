-- The integer subtype (Lua 5.3 and 5.4): what the module returns as an
-- integer is one, not a float with an integer value. The runtimes without
-- the subtype (5.1, 5.2, LuaJIT) have only floats, so this file runs on
-- Lua 5.4 only (spec/runtime/5.4/); spec/module/functions and
-- spec/arguments/errors check the values everywhere.
local helpers = require "helpers"
local imalloc = helpers.imalloc

describe("integers", function()
  local m
  before_each(function() m = imalloc.get() end)
  after_each(function() m:release() end)

  it("are returned as integers: addresses, sizes, counts and codes", function()
    local p = m:alloc(8)
    assert.equal("integer", math.type(imalloc.address(p)))
    assert.equal("integer", math.type(m:getsize(p)))
    assert.equal("integer", math.type(m:didalloc(p)))
    assert.equal("integer", math.type(m:addref()))
    assert.equal("integer", math.type(select(2, m:release())))
    m:free(p)
    assert.equal("integer", math.type(select(3, m:alloc(helpers.sizemax))))
  end)

  it("as sizes may be floats with an integer value, as 5.4's own API takes them", function()
    local p = m:alloc(8.0)
    assert.equal(8, m:getsize(p))
    assert.equal("integer", math.type(m:getsize(p)))
    m:free(p)
  end)

  if helpers.pointer_bits == 64 then
    it("beyond 2^53 keep every bit: an address is not rounded through a float", function()
      -- 2^53 + 1 has no float: a runtime without integers cannot even say it
      local odd = (1 << 53) + 1
      assert.equal(odd, imalloc.address(odd))
      assert.equal(0, m:didalloc(odd))
    end)
  else
    it("beyond a 32-bit pointer's range are refused, not truncated", function()
      assert.equal(0xFFFFFFFF, imalloc.address(0xFFFFFFFF))
      for _, a in ipairs { 1 << 32, (1 << 53) + 1, math.maxinteger } do
        assert.has_error(function() imalloc.address(a) end,
          "bad argument #1 to 'address' (address out of range)")
      end
    end)
  end
end)
