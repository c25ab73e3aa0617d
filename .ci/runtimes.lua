-- runtimes.lua LASTTEST_LOG README [--check]: the README's table of the
-- runtimes by platform, from the results of a full ctest run (see
-- .ci/runtimes). A cell is "pass" when every spec file of that runtime on
-- that platform passed ("pass (N pending)" when busted marked tests
-- pending there: they did not run), "FAIL" with the count otherwise, "not
-- built" when the run had no specs for it. The figures (files, tests, pending) are
-- printed for the log.
local log_file, readme_file, check = ...

-- The tests of each cell: spec files (not the all-in-one and wrapper runs).
local function cell_of(name)
  local platform, rest = "linux", name:match("^spec%-(.*)$")
  if not rest then platform, rest = "wine", name:match("^wine%-spec%-(.*)$") end
  if not rest then return nil end
  local lua, file = rest:match("^(5%.[123])%-(.+)$")
  if not lua then lua, file = rest:match("^(luajit)%-(.+)$") end
  if not lua then lua, file = "5.4", rest end
  if file:match("^all%-insulated$") or file:match("^wrap%-without%-")
     or file:match("fresh%-seed$") then
    return nil
  end
  return platform .. " " .. lua
end

local cells = {}
local current
for line in io.lines(log_file) do
  line = line:gsub("\r", "")
  local name = line:match("^%d+/%d+ Test: (%S+)$")
  if name then
    local key = cell_of(name)
    current = key and { key = key } or nil
  elseif current then
    local s, f, e, p = line:match("^(%d+) success%a* / (%d+) failures? / (%d+) errors? / (%d+) pending")
    if s then
      current.tests, current.pending = tonumber(s), tonumber(p)
      current.bad = tonumber(f) + tonumber(e)
    elseif line == "Test Passed." or line:match("^Test Failed") or line:match("^Test Timeout")
        or line:match("^Test not run") then
      local c = cells[current.key] or { files = 0, passed = 0, tests = 0, pending = 0 }
      cells[current.key] = c
      c.files = c.files + 1
      if line == "Test Passed." then c.passed = c.passed + 1 end
      c.tests = c.tests + (current.tests or 0)
      c.pending = c.pending + (current.pending or 0)
      current = nil
    end
  end
end

local runtimes = { { "5.1", "Lua 5.1" }, { "5.2", "Lua 5.2" }, { "5.3", "Lua 5.3" },
                   { "5.4", "Lua 5.4" }, { "luajit", "LuaJIT 2.1" } }
local platforms = { { "linux", "Linux x86-64 (native)" }, { "wine", "Windows x86-64 (Wine)" } }

local function text(c)
  if not c then return "not built" end
  if c.passed == c.files and c.pending > 0 then
    return ("pass (%d pending)"):format(c.pending)
  end
  if c.passed == c.files then return "pass" end
  return ("FAIL (%d of %d spec files)"):format(c.files - c.passed, c.files)
end

local header = { "| Runtime |" }
local rule = { "|---|" }
for _, p in ipairs(platforms) do
  header[#header + 1] = " " .. p[2] .. " |"
  rule[#rule + 1] = "---|"
end
local lines = { table.concat(header), table.concat(rule) }
for _, r in ipairs(runtimes) do
  local row = { "| " .. r[2] .. " |" }
  for _, p in ipairs(platforms) do
    local c = cells[p[1] .. " " .. r[1]]
    row[#row + 1] = " " .. text(c) .. " |"
    if c then
      print(("runtimes: %-10s %-22s %d/%d spec files passed, %d tests, %d pending")
        :format(r[2], p[2], c.passed, c.files, c.tests, c.pending))
    end
  end
  lines[#lines + 1] = table.concat(row)
end
local table_text = table.concat(lines, "\n")

local update = dofile(".ci/readme_table.lua")
update(readme_file, "runtimes", table_text, check, "bash .ci/runtimes build (after a full ctest run)")
if check == "--check" then
  print("runtimes: README's table up to date")
else
  print("runtimes: table written to " .. readme_file)
end
