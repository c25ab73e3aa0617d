-- examples/leaks.lua, run with print captured (helpers.run_example): it
-- starts and stops the spy. Addresses, which differ
-- from run to run, are compared as 0x?.
local common = require "spy.common"

--- The example's printed lines, addresses as 0x?.
local function run_example(path)
  local lines = common.helpers.run_example(path)
  for i, line in ipairs(lines) do lines[i] = line:gsub("0x%x+", "0x?") end
  return lines
end

common.isolate()

describe("examples/leaks.lua", function()
  it("finds the leak, frees it, and shows the fix clean, also out of memory", function()
    assert.same({
      "-- the leak",
      "nil\tname #3 is empty",
      "spy (active): 2 blocks, 22 bytes outstanding; 2 allocs, 0 reallocs, 0 frees; 0 failures injected",
      "  #1  12 bytes at 0x?  examples/leaks.lua:20",
      "  #2  10 bytes at 0x?  examples/leaks.lua:20",
      "nil\tE_ACCESSDENIED: access is denied\t2147942405",
      "after freeing them, still pending:\tfalse",
      "-- the fix",
      "nil\tname #3 is empty",
      "spy (active): 0 blocks, 0 bytes outstanding; 2 allocs, 0 reallocs, 2 frees; 0 failures injected",
      "-- the fix when the second wstrdup runs out of memory",
      "nil\tnot enough memory",
      "spy (active): 0 blocks, 0 bytes outstanding; 3 allocs, 0 reallocs, 3 frees; 1 failure injected",
      "true",
    }, run_example("examples/leaks.lua"))
    assert.is_false(common.spy.report().active)
  end)
end)
