-- run.lua BATCH: runs a batch file of .ci/win/rocks.sh with cmd.exe, from the
-- Lua that .ci/win/lua.sh started (one Wine session for all its commands),
-- and exits 0 only if the batch file did. Lua 5.4 answers os.execute with
-- true or nil; Lua 5.1 and LuaJIT with the status.
local batch = assert(arg[1], "usage: run.lua BATCH")
local ok = os.execute(batch)
if ok == true or ok == 0 then os.exit(0) end
io.stderr:write(("run.lua: %s failed\n"):format(batch))
os.exit(1)
