-- One rule for every argument: integers are numbers (a numeric string is
-- refused everywhere, as for sizes), setchecks takes a boolean, and an
-- error names the function the same way in every run.
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
