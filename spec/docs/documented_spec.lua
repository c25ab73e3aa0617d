-- What the documentation promises, checked against the module and the tree:
-- every function the module registers is documented under a heading of its
-- own (as luv's CI checks its docs.md): in docs/api.md, the spy's in
-- docs/spy.md; the README starts with the demo and test commands; and every
-- relative link of the documents, and every file of the tree they name
-- (src/..., spec/..., tests/..., bench/..., .ci/...), exists.
local helpers = require "helpers"
local imalloc = helpers.imalloc

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

local function documented(text, heading)
  -- a heading line: "### `imalloc.get([context])`" documents imalloc.get
  for line in text:gmatch("[^\n]+") do
    if line:match("^#+ ") and line:find(heading, 1, true) then return true end
  end
  return false
end

describe("docs/api.md", function()
  local text = slurp("docs/api.md")

  it("documents every module function", function()
    for name, value in pairs(require "imalloc.core") do
      if type(value) == "function" then
        assert.is_true(documented(text, "`imalloc." .. name .. "("),
          "docs/api.md has no heading with `imalloc." .. name .. "(")
      end
    end
  end)

  it("documents every handle method", function()
    for name in pairs(debug.getmetatable(imalloc.get()).__index) do
      assert.is_true(documented(text, "`m:" .. name .. "("),
        "docs/api.md has no heading with `m:" .. name .. "(")
    end
  end)

  it("documents every buffer method", function()
    local b = imalloc.get():buffer(1)
    for name in pairs(debug.getmetatable(b).__index) do
      assert.is_true(documented(text, "b:" .. name .. "("),
        "docs/api.md has no heading with b:" .. name .. "(")
    end
  end)
end)

describe("docs/spy.md", function()
  it("documents every function of imalloc.spy", function()
    local text = slurp("docs/spy.md")
    for name, value in pairs(imalloc.spy) do
      if type(value) == "function" then
        assert.is_true(documented(text, "`imalloc.spy." .. name .. "("),
          "docs/spy.md has no heading with `imalloc.spy." .. name .. "(")
      end
    end
  end)
end)

describe("README.md", function()
  it("starts with the demo and test commands", function()
    local first = slurp("README.md"):match("```sh\n(.-)```")
    assert.matches("^bash %.ci/demo", first)
    assert.matches("\nbash %.ci/test", first)
  end)
end)

--- Links and named files. The documents checked: these, and every Markdown
-- file they link to, transitively (CHANGELOG.md is history: it names files
-- as they were, and is not followed).
local ROOTS = { "README.md", "CONTRIBUTING.md" }

-- Whether a path of the tree exists, file or directory. Windows' C runtime
-- cannot open a directory: it answers EACCES (13) for one that exists.
local function exists(path)
  local f, _, code = io.open((path:gsub("/$", "")), "rb")
  if f then f:close() return true end
  return code == 13
end

-- "docs/../README.md" -> "README.md"
local function normalize(path)
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." and #parts > 0 and parts[#parts] ~= ".." then
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  return table.concat(parts, "/") .. (path:match("/$") and "/" or "")
end

-- The anchors of a Markdown file's headings, as GitHub makes them:
-- lower case, punctuation dropped, spaces to hyphens, a repeat numbered.
local function anchors(text)
  local set, seen, fenced = {}, {}, false
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if line:match("^```") then
      fenced = not fenced
    elseif not fenced and line:match("^#+ ") then
      local slug = line:gsub("^#+ ", ""):lower():gsub("[^%w_ %-\128-\255]", ""):gsub(" ", "-")
      local n = seen[slug]
      set[n and (slug .. "-" .. n) or slug] = true
      seen[slug] = (n or 0) + 1
    end
  end
  return set
end

local anchor_cache = {}
local function anchors_of(file)
  anchor_cache[file] = anchor_cache[file] or anchors(slurp(file))
  return anchor_cache[file]
end

-- Every problem of one document: broken links, missing anchors, named
-- files that do not exist. Markdown files it links to are queued.
local function check(doc, queue, problems)
  local text = slurp(doc)
  local dir = doc:match("^(.*/)") or ""
  for target in text:gmatch("%]%(([^)%s]+)%)") do
    if not target:match("^%a[%w+.-]*:") then  -- not http:, mailto: ...
      local path, anchor = target:match("^([^#]*)#?(.*)$")
      local file = path == "" and doc or normalize(dir .. path)
      if not exists(file) then
        problems[#problems + 1] = doc .. ": link to a missing file: " .. target
      elseif file:match("%.md$") then
        queue[#queue + 1] = file
        if anchor ~= "" and not anchors_of(file)[anchor] then
          problems[#problems + 1] = doc .. ": link to a missing heading: " .. target
        end
      end
    end
  end
  -- src/binding.h, `tests/c/`, .ci/win/build-deps.sh, src/taskalloc/*.c,
  -- build/lua-<lua> (not a tree path: after "/"), tests/fuzz/corpus/<target>
  for before, path in text:gmatch("(.?)(%f[%w.](%.?[%a]+/[%w_.%-/*<>]*))") do
    local top = path:match("^([^/]+)/")
    local tree = ({ src = 1, tests = 1, bench = 1, [".ci"] = 1, cmake = 1,
                    lua = 1, examples = 1, spec = 1, rockspec = 1 })[top]
    if tree and not before:match("[%w_/.%-]") then
      path = path:gsub("[.]+$", "")        -- the end of a sentence
      path = path:match("^([^*<]*)")       -- up to a wildcard or a placeholder
      path = path:match("^(.*/)") and path:match("[*<]") and path:match("^(.*/)") or path
      if not exists(path) then
        problems[#problems + 1] = doc .. ": names a missing file: " .. path
      end
    end
  end
end

-- The documents reached from ROOTS, and the problems found on the way.
local function crawl()
  local queue, done, problems = {}, {}, {}
  for _, root in ipairs(ROOTS) do queue[#queue + 1] = root end
  while #queue > 0 do
    local doc = table.remove(queue, 1)
    if not done[doc] and doc ~= "CHANGELOG.md" then
      done[doc] = true
      check(doc, queue, problems)
    end
  end
  return done, problems
end

describe("the documents' links and named files", function()
  it("all exist", function()
    local done, problems = crawl()
    assert.same({}, problems)
    assert.is_true(done["docs/api.md"] and done["docs/testing.md"], "the crawl reached docs/")
  end)

  it("reach every document in docs/", function()
    local done = crawl()
    local pipe = assert(io.popen(helpers.windows and "dir /b docs" or "ls docs"))
    local listing = pipe:read("*a")
    pipe:close()
    local unreached = {}
    for name in listing:gmatch("[^\r\n]+") do
      if name:match("%.md$") and not done["docs/" .. name] then
        unreached[#unreached + 1] = "docs/" .. name
      end
    end
    assert.is_truthy(listing:find("api.md", 1, true), "docs/ listed: " .. listing)
    assert.same({}, unreached)
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
