-- An argument error names the function the same way however it is called:
-- through pcall or a variable (where Lua has no name for the call), on every
-- Lua, whatever order package.loaded keeps.
local helpers = require "helpers"
local imalloc = helpers.imalloc

local m = assert(imalloc.get())

local function bad(fname, n, msg)
  return ("bad argument #%d to '%s' (%s)"):format(n, fname, msg)
end

describe("an argument error of a method called with no name Lua can see", function()
  it("names the method, counting arguments as the caller passed them", function()
    local p = assert(m:alloc(8))
    local ok, err = pcall(m.read, m, "x")
    assert.is_false(ok)
    assert.equal("bad argument #2 to 'read' (pointer expected, got string)", err)
    ok, err = pcall(m.free, m, {})
    assert.equal("bad argument #2 to 'free' (pointer expected, got table)", err)
    local b = m:buffer(4)
    ok, err = pcall(b.read, b, -1)
    assert.equal("bad argument #2 to 'read' (length must not be negative)", err)
    ok, err = pcall(b.write, {}, "x")
    assert.equal("bad argument #1 to 'write' (IMalloc buffer expected, got table)", err)
    b:free()
    m:free(p)
  end)

  it("names module and spy functions after their module on every Lua", function()
    local ok, err = pcall(imalloc.wrap, 1)
    assert.is_false(ok)
    assert.equal("bad argument #1 to 'imalloc.wrap' (light userdata expected, got number)", err)
    ok, err = pcall(imalloc.spy.fail, {nth = 0})
    assert.equal("bad argument #1 to 'imalloc.spy.fail' (nth must be an integer of at least 1)", err)
  end)

  it("is Lua's own message where Lua knows the name", function()
    assert.has_error(function() m:read("x") end,
      "bad argument #1 to 'read' (pointer expected, got string)")
    local read = m.read
    assert.has_error(function() read(m, "x") end,
      "bad argument #2 to 'read' (pointer expected, got string)")
  end)
end)

describe("an error raised where Lua does not know the call's name", function()
  -- pcall(f, ...) gives Lua no name for f: it looks f up among the loaded
  -- modules. Several interpreters, since each orders package.loaded by its
  -- own hash seed.
  local function run_each(code, n)
    local lowest = 0
    while arg and arg[lowest - 1] do lowest = lowest - 1 end
    local dir = os.getenv("TEMP") or os.getenv("TMPDIR") or "/tmp"
    -- the runtime in the name: the same spec may run under another at once,
    -- with the same seed for math.random
    local script = ("%s%simalloc-17-%s-%d.lua"):format(dir, package.config:sub(1, 1), helpers.lua,
      math.random(helpers.pow2(30)))
    local f = assert(io.open(script, "w"))
    f:write(("package.path = %q\npackage.cpath = %q\n"):format(package.path, package.cpath), code)
    f:close()
    local command = ('"%s" "%s" 2>&1'):format(arg[lowest], script)
    if helpers.windows then command = '"' .. command .. '"' end
    local outs = {}
    for i = 1, n do
      local pipe = assert(io.popen(command))
      outs[i] = pipe:read("*a")
      pipe:close()
    end
    os.remove(script)
    return outs
  end

  it("names a module function imalloc.NAME in every run", function()
    local code = "local i = require 'imalloc' "
      .. "print(select(2, pcall(i.wrap, 1))) print(select(2, pcall(i.hresult, {})))"
    -- the binding names it where Lua cannot (5.1, 5.2 and LuaJIT do not
    -- look the function up), the same on every runtime
    local wrap, hresult = "imalloc.wrap", "imalloc.hresult"
    for _, out in ipairs(run_each(code, helpers.windows and 3 or 8)) do
      assert.equal(bad(wrap, 1, "light userdata expected, got number") .. "\n"
        .. bad(hresult, 1, "number expected, got table") .. "\n", out)
    end
  end)
end)
