-- Every function the module registers is documented in README.md under a
-- heading of its own (as luv's CI checks its docs.md).
local helpers = require "helpers"
local imalloc = helpers.imalloc

local function readme()
  local f = assert(io.open("README.md", "rb"))
  local text = f:read("a")
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

  it("documents every handle method", function()
    for name in pairs(getmetatable(imalloc.get()).__index) do
      assert.is_true(documented(text, "`m:" .. name .. "("), name)
    end
  end)

  it("documents every buffer method", function()
    local b = imalloc.get():buffer(1)
    for name in pairs(getmetatable(b).__index) do
      assert.is_true(documented(text, "b:" .. name .. "("), name)
    end
  end)

  it("starts with the demo and test commands", function()
    local first = text:match("```sh\n(.-)```")
    assert.matches("^bash %.ci/demo", first)
    assert.matches("\nbash %.ci/test", first)
  end)
end)
