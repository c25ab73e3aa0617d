-- readme_table.lua: a generated table in a Markdown file (README.md's
-- runtimes, docs/reference.md's conformance), between the markers
-- <!-- NAME:begin --> and <!-- NAME:end -->. Used by .ci/conformance.lua
-- and .ci/runtimes.lua:
--   local update = dofile(".ci/readme_table.lua")
--   update(readme_file, "NAME", table_text, check, how_to_regenerate)
-- With check == "--check", changes nothing and exits 1 when the file's
-- table differs; otherwise writes it. Returns true when the file is (now)
-- up to date.
return function(readme_file, name, table_text, check, regenerate)
  local f = assert(io.open(readme_file, "rb"))
  local readme = f:read("a")
  f:close()
  local begin_mark, end_mark = "<!-- " .. name .. ":begin -->", "<!-- " .. name .. ":end -->"
  local b = assert(readme:find(begin_mark, 1, true), readme_file .. " has no " .. begin_mark)
  local e = assert(readme:find(end_mark, 1, true), readme_file .. " has no " .. end_mark)
  local new = readme:sub(1, b + #begin_mark - 1) .. "\n" .. table_text .. "\n" .. readme:sub(e)
  if check == "--check" then
    if new ~= readme then
      io.stderr:write(readme_file, "'s ", name, " table is out of date; measured now:\n",
        table_text, "\nrun: ", regenerate, "\n")
      os.exit(1)
    end
  else
    f = assert(io.open(readme_file, "wb"))
    f:write(new)
    f:close()
  end
  return true
end
