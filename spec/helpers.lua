-- What the specs share: the module, the native test kit, and the platform.
local helpers = {}

helpers.imalloc = require "imalloc"
helpers.testkit = require "imalloc_testkit"

--- True under Windows (Wine's or Microsoft's ole32), false on the built-in
-- POSIX allocator. Specs that differ say why where they branch on it.
helpers.windows = helpers.testkit.platform == "windows"

--- Runs full collection cycles until memory stops shrinking.
function helpers.collect()
  local before
  repeat
    before = collectgarbage("count")
    collectgarbage("collect")
  until collectgarbage("count") >= before
end

--- Runs an example script with print captured; returns the printed lines
-- (a print of several lines gives several entries).
function helpers.run_example(path)
  local lines = {}
  local env = setmetatable({
    print = function(...)
      local t = table.pack(...)
      for i = 1, t.n do t[i] = tostring(t[i]) end
      for line in table.concat(t, "\t"):gmatch("[^\n]+") do
        lines[#lines + 1] = line
      end
    end,
  }, { __index = _G })
  assert(loadfile(path, "t", env))()
  return lines
end

--- A function that calls `m:name(...)` with method syntax, so argument
-- errors read as a script sees them ("bad argument #1 to 'name'"). A method
-- reached through a computed key would be reported as '?', self counted.
function helpers.method(name)
  return assert(load(("return function(m, ...) return m:%s(...) end"):format(name)))()
end

--- The same with field syntax, `m.name(...)`, where self is argument #1.
function helpers.field(name)
  return assert(load(("return function(m, ...) return m.%s(...) end"):format(name)))()
end

return helpers
