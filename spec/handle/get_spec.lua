local helpers = require "helpers"
local imalloc = helpers.imalloc

describe("imalloc.get", function()
  it("returns an IMalloc handle", function()
    local m = imalloc.get()
    assert.equal("IMalloc", imalloc.type(m))
  end)

  it("returns the process-wide singleton, the same pointer every call", function()
    local a, b = imalloc.get(), imalloc.get(1)
    assert.equal(a:pointer(), b:pointer())
    assert.is_true(a == b)
    assert.is_false(rawequal(a, b))  -- two handles, one interface
  end)

  it("returns nil, message, E_INVALIDARG for a context other than 1", function()
    for _, context in ipairs { 0, 2, 0xFFFFFFFF } do
      assert.same({ nil, "E_INVALIDARG: one or more arguments are invalid", 0x80070057 },
        { imalloc.get(context) })
    end
  end)

  it("raises for a context that is not a DWORD", function()
    assert.has_error(function() imalloc.get(-1) end,
      "bad argument #1 to 'get' (context out of range (0 to 0xFFFFFFFF))")
    assert.has_error(function() imalloc.get(0x100000000) end,
      "bad argument #1 to 'get' (context out of range (0 to 0xFFFFFFFF))")
    assert.has_error(function() imalloc.get(1.5) end,
      "bad argument #1 to 'get' (number has no integer representation)")
    assert.has_error(function() imalloc.get({}) end,
      "bad argument #1 to 'get' (number expected, got table)")
  end)
end)

describe("handle:__tostring", function()
  it("returns 'IMalloc (0x...)' for a live handle", function()
    local m = imalloc.get()
    assert.equal(("IMalloc (0x%x)"):format(imalloc.address(m:pointer())), tostring(m))
  end)

  it("returns 'IMalloc (released)' for a released handle", function()
    local m = imalloc.get()
    m:release()
    assert.equal("IMalloc (released)", tostring(m))
  end)
end)

describe("handle:__eq", function()
  it("returns false once one side is released", function()
    local a, b = imalloc.get(), imalloc.get()
    a:release()
    assert.is_false(a == b)
  end)

  it("returns false against anything that is not a handle", function()
    local m = imalloc.get()
    assert.is_false(m == io.stdout)
    assert.is_false(m == m:pointer())
  end)
end)

describe("==", function()
  it("is false, without raising, between a handle and anything else", function()
    local m = imalloc.get()
    local b = assert(m:buffer(4))
    -- Lua calls the right operand's __eq when the left one has none
    assert.is_false(b == m)
    assert.is_false(m == b)
    assert.is_false(io.stdout == m)
    assert.is_false(m == io.stdout)
    assert.is_false(b == io.stdout)
    assert.is_false(io.stdout == b)
    b:free()
  end)

  it("is false between a live handle and a released one on the same pointer", function()
    local m, w = imalloc.get(), imalloc.get()
    assert.is_true(m == w)
    w:release()
    assert.is_false(m == w)
    assert.is_false(w == m)
  end)
end)
