-- conformance.lua POSIX WINE DOC [--check]: merges the two answers of
-- spec/conformance.lua into DOC's conformance table (docs/reference.md;
-- see .ci/conformance).
local posix_file, wine_file, readme_file, check = ...

local function rows(path)
  local t = {}
  for line in io.lines(path) do
    local call, expected, result = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)$")
    assert(call, path .. ": not a row: " .. line)
    t[#t + 1] = { call = call, expected = expected, result = result }
  end
  return t
end

local posix, wine = rows(posix_file), rows(wine_file)
assert(#posix == #wine and #posix > 0, "the two runs answered different rows")

local function cell(s) return (s:gsub("|", "\\|")) end
local lines = {
  "| Call | Expected | built-in (Linux) | Wine 8 ole32 |",
  "|---|---|---|---|",
}
for i, p in ipairs(posix) do
  assert(p.call == wine[i].call, "row " .. i .. " differs: " .. p.call)
  lines[#lines + 1] = ("| `%s` | %s | %s | %s |"):format(p.call, cell(p.expected),
    cell(p.result), cell(wine[i].result))
end
local table_text = table.concat(lines, "\n")

local update = dofile(".ci/readme_table.lua")
update(readme_file, "conformance", table_text, check, "bash .ci/conformance BUILD")
if check == "--check" then
  print(("conformance: %d rows, %s up to date"):format(#posix, readme_file))
else
  print(("conformance: %d rows written to %s"):format(#posix, readme_file))
end
