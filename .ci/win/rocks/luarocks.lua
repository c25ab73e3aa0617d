-- luarocks.lua LUAROCKS [args...]: runs the LuaRocks command-line script
-- LUAROCKS (Debian's /usr/bin/luarocks: LuaRocks 3.8 in Lua) with a Windows
-- lua.exe under Wine, as LuaRocks for Windows runs, with one change.
--
-- LuaRocks for Windows tells a directory from a file by what fopen answers:
-- opening "DIR\" fails with ENOENT (2) on Windows, and with EACCES (13)
-- under Wine's msvcrt, so every directory looks like neither, and LuaRocks
-- refuses any tree ("your user does not have write permissions"). Here
-- luarocks.fs.win32's is_dir and is_file ask LuaFileSystem instead (which
-- LuaRocks uses for everything else: fs_use_modules), so that LuaRocks runs;
-- and a command that fails is run once more (below). Nothing else of
-- LuaRocks is changed.
local script = assert(arg[1], "usage: luarocks.lua LUAROCKS [args...]")
local lfs = require "lfs"

-- LuaRocks unloads and reloads its fs modules when it initialises them
-- (fs.init): the change is made each time the module is loaded.
local name = "luarocks.fs.win32"
local file = assert(package.searchpath(name, package.path))
package.preload[name] = function()
  local win32 = assert(loadfile(file))(name, file)
  local dir = require "luarocks.dir"
  local function mode(f) return lfs.attributes(dir.normalize(f), "mode") end
  function win32.is_dir(f) return mode(f) == "directory" end
  function win32.is_file(f) return mode(f) == "file" end
  return win32
end

-- Under a loaded machine Wine once failed a command that succeeds every
-- other time (icacls, which under Wine changes nothing and exits 0: "Failed
-- setting permission exec for all"). A failed command is run once more,
-- saying so on stderr: one that really fails, fails twice.
local execute = os.execute
function os.execute(command, ...)
  if command == nil then return execute() end
  local ok, how, code = execute(command, ...)
  if ok == true or ok == 0 then return ok, how, code end
  io.stderr:write("luarocks.lua: failed under Wine, once more: ", command, "\n")
  return execute(command, ...)
end

-- The script sees its own arguments; arg[-1] and below (the interpreter,
-- from which LuaRocks finds LUA_BINDIR) stay as they are.
local unpack = table.unpack or unpack
local n = #arg
for i = 0, n - 1 do arg[i] = arg[i + 1] end
arg[n] = nil
local main = assert(loadfile(script))
return main(unpack(arg, 1, n - 1))
