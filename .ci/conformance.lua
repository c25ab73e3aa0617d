-- conformance.lua POSIX WINE README [--check]: merges the two answers of
-- spec/conformance.lua into the README's table (see .ci/conformance).
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

local f = assert(io.open(readme_file, "rb"))
local readme = f:read("a")
f:close()
local begin_mark, end_mark = "<!-- conformance:begin -->", "<!-- conformance:end -->"
local b = assert(readme:find(begin_mark, 1, true), "README has no " .. begin_mark)
local e = assert(readme:find(end_mark, 1, true), "README has no " .. end_mark)
local new = readme:sub(1, b + #begin_mark - 1) .. "\n" .. table_text .. "\n" .. readme:sub(e)

if check == "--check" then
  if new ~= readme then
    io.stderr:write("README.md's conformance table is out of date; measured now:\n",
      table_text, "\nrun: bash .ci/conformance BUILD\n")
    os.exit(1)
  end
  print(("conformance: %d rows, README up to date"):format(#posix))
else
  f = assert(io.open(readme_file, "wb"))
  f:write(new)
  f:close()
  print(("conformance: %d rows written to %s"):format(#posix, readme_file))
end
