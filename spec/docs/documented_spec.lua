-- Every function the module registers is documented in README.md under a
-- heading of its own (as luv's CI checks its docs.md).
local helpers = require "helpers"
local imalloc = helpers.imalloc

local function readme()
  local f = assert(io.open("README.md", "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

local function documented(text, heading)
  -- a heading line: "#### `imalloc.get([context])`" documents imalloc.get
  for line in text:gmatch("[^\n]+") do
    if line:match("^#+ ") and line:find(heading, 1, true) then return true end
  end
  return false
end

describe("README.md", function()
  local text = readme()

  it("documents every module function", function()
    for name, value in pairs(require "imalloc.core") do
      if type(value) == "function" then
        assert.is_true(documented(text, "`imalloc." .. name .. "("), name)
      end
    end
  end)

  it("documents every function of imalloc.spy", function()
    for name, value in pairs(imalloc.spy) do
      if type(value) == "function" then
        assert.is_true(documented(text, "`imalloc.spy." .. name .. "("), name)
      end
    end
  end)

  it("documents every handle method", function()
    for name in pairs(debug.getmetatable(imalloc.get()).__index) do
      assert.is_true(documented(text, "`m:" .. name .. "("), name)
    end
  end)

  it("documents every buffer method", function()
    local b = imalloc.get():buffer(1)
    for name in pairs(debug.getmetatable(b).__index) do
      assert.is_true(documented(text, "b:" .. name .. "("), name)
    end
  end)

  it("starts with the demo and test commands", function()
    local first = text:match("```sh\n(.-)```")
    assert.matches("^bash %.ci/demo", first)
    assert.matches("\nbash %.ci/test", first)
  end)
end)

describe("rockspec/imalloc-scm-1.rockspec", function()
  -- CMake reads the module's sources from src/sources.cmake; LuaRocks cannot,
  -- so the rockspec names them again, and this keeps the two lists equal.
  local cmake_list
  function cmake_list(name)
    local f = assert(io.open("src/sources.cmake", "rb"))
    local text = f:read("*a")
    f:close()
    local items = assert(text:match("set%(" .. name .. " ([^)]*)%)"), name)
    local t = {}
    for item in items:gmatch("%S+") do
      local var = item:match("^%${([%w_]+)}$")  -- another list, expanded
      if var then
        for _, s in ipairs(cmake_list(var)) do t[#t + 1] = s end
      else
        t[#t + 1] = "src/" .. item
      end
    end
    return t
  end

  local function sorted(t)
    table.sort(t)
    return t
  end

  local spec = {}
  helpers.dofile("rockspec/imalloc-scm-1.rockspec", spec)

  it("builds the module from the sources CMake builds it from", function()
    local binding = cmake_list("IMALLOC_BINDING_SOURCES")
    local windows, unix = {}, {}
    for _, s in ipairs(binding) do windows[#windows + 1] = s; unix[#unix + 1] = s end
    for _, s in ipairs(cmake_list("IMALLOC_WIN32_SOURCES")) do windows[#windows + 1] = s end
    for _, s in ipairs(cmake_list("IMALLOC_POSIX_SOURCES")) do unix[#unix + 1] = s end
    local platforms = spec.build.platforms
    assert.same(sorted(windows), sorted(platforms.windows.modules["imalloc.core"].sources))
    assert.same(sorted(unix), sorted(platforms.unix.modules["imalloc.core"].sources))
  end)
end)
