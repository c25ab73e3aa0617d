-- src/luacompat.h gives Lua 5.1, 5.2, 5.3 and LuaJIT the calls of 5.4's C
-- API that the binding uses; on 5.4 the same specs check 5.4's own calls,
-- so that the shims are held to the contract they stand in for.
local helpers = require "helpers"
local testkit = helpers.testkit
local peer = require "imalloc_peer"

-- lua_type's answers
local NONE, NIL, NUMBER, STRING = -1, 0, 3, 4

-- 5.1 and LuaJIT keep the values in the userdata's environment, which is a
-- table even for a userdata made with none (src/luacompat.h says so).
local fenv = _VERSION == "Lua 5.1"

describe("lua_newuserdatauv, lua_getiuservalue, lua_setiuservalue", function()
  -- {type answered, values left on the stack, the value}
  local function get(u, n) return { testkit.uv_get(u, n) } end
  -- {answer, values taken from the stack}
  local function set(u, n, v) return { testkit.uv_set(u, n, v) } end

  it("give a userdata made with n values n slots of its own, nil until set", function()
    local a, b = testkit.uv_new(2), testkit.uv_new(2)
    assert.same({ NIL, 1 }, get(a, 1))
    assert.same({ NIL, 1 }, get(a, 2))
    assert.same({ 1, 1 }, set(a, 1, "x"))
    assert.same({ 1, 1 }, set(a, 2, 42))
    assert.same({ STRING, 1, "x" }, get(a, 1))
    assert.same({ NUMBER, 1, 42 }, get(a, 2))
    assert.same({ NIL, 1 }, get(b, 1))  -- b's are not a's
    assert.same({ 1, 1 }, set(b, 1, "y"))
    assert.same({ STRING, 1, "x" }, get(a, 1))
    assert.same({ STRING, 1, "y" }, get(b, 1))
    assert.same({ 1, 1 }, set(a, 1, nil))
    assert.same({ NIL, 1 }, get(a, 1))
  end)

  it("answer for a userdata made with none that it has no such value", function()
    local u = testkit.uv_new(0)
    if fenv then
      assert.equal("table", type(debug.getfenv(u)))
    else
      assert.same({ NONE, 1 }, get(u, 1))
      assert.same({ 0, 1 }, set(u, 1, "z"))  -- the value is popped all the same
      assert.same({ NONE, 1 }, get(u, 1))
    end
  end)
end)

describe("luaL_typeerror, as another module reaches it through imalloc.h", function()
  local function message(...)
    local ok, err = pcall(peer.take, ...)
    assert.is_false(ok)
    return err:match("%((.*)%)$")
  end

  it("names the value by its metatable's __name when that is a string", function()
    assert.equal("IMalloc expected, got thing",
      message(setmetatable({}, { __name = "thing" })))
    assert.equal("IMalloc expected, got table",
      message(setmetatable({}, { __name = 42 })))
  end)

  it("else by its type, a light userdata by that name", function()
    assert.equal("IMalloc expected, got string", message("abc"))
    assert.equal("IMalloc expected, got light userdata", message(testkit.null()))
    assert.equal("IMalloc expected, got nil", message(nil))
    assert.equal("IMalloc expected, got no value", message())
  end)
end)

describe("lua_tointegerx", function()
  local function answer(v) return { testkit.tointegerx(v) } end

  it("takes a number with an integer value, or a string of one, as 5.4 does", function()
    assert.same({ 42, true }, answer(42))
    assert.same({ -7, true }, answer(-7.0))
    assert.same({ 10, true }, answer("10"))
    assert.same({ 0, true }, answer(0))
  end)

  it("answers 0 and false for anything else", function()
    assert.same({ 0, false }, answer(1.5))
    assert.same({ 0, false }, answer("abc"))
    assert.same({ 0, false }, answer({}))
    assert.same({ 0, false }, answer(true))
    assert.same({ 0, false }, answer(2 ^ 64))
    assert.same({ 0, false }, answer(-(2 ^ 64)))
  end)
end)
