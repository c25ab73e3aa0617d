-- A crash of Debian 12's LuaJIT (2.1.0~beta3+git20220320) in its trace
-- recorder, with no imalloc in the process:
--
--   luajit docs/luajit-recorder-crash.lua    -> Segmentation fault
--   luajit -joff docs/luajit-recorder-crash.lua    -> prints "no crash"
--
-- Once a userdata with an __eq metamethod has been compared with io.stdout
-- in a compiled loop, recording `getmetatable(io.stdout).__name` reads the
-- metatable of a table as if it were a userdata's (lj_record_mm_lookup,
-- with a NULL metatable). The specs compare handles with io.stdout and
-- then ask for its type's name in loops, so spec/helpers.lua keeps that one
-- function out of the compiler (jit.off); see docs/api.md, "Lua 5.1, 5.2, 5.3,
-- 5.4 and LuaJIT 2.1".
local u = newproxy(true)
getmetatable(u).__eq = function() return false end
for _ = 1, 100 do local _ = (u == io.stdout) end
for _ = 1, 100 do local _ = getmetatable(io.stdout).__name end
print("no crash")
