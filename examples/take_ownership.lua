-- Taking ownership of a string that a native module returns.
--
-- A COM-style function returns "[out] LPSTR*" memory from the task
-- allocator, and the caller must free it. Adopting the block into a buffer
-- makes the collector (or a <close> scope) free it, even if the script
-- raises an error before it is done.
--
-- imalloc_peer stands in for the native module (built with the tests).
--   LUA_PATH="lua/?.lua;;" LUA_CPATH="build/?.so;;" lua5.4 examples/take_ownership.lua
local imalloc = require "imalloc"
-- imalloc_peer is a test module that `luarocks make` does not install.
local found, peer = pcall(require, "imalloc_peer")
if not found then
  error("this example needs imalloc_peer (a test module): build it with `cmake -S . -B build && cmake --build build`, then run LUA_CPATH='build/?.so;;' lua5.4 examples/take_ownership.lua", 0)
end

local m <close> = assert(imalloc.get())

local p = peer.give(m, "a string the native side allocated")
print(("the module returned a %d-byte block; DidAlloc %d"):format(m:getsize(p), m:didalloc(p)))

do
  local owned <close> = m:adopt(p)  -- from here on, Lua frees it
  print(("read through the buffer: %q"):format(m:string(owned:ptr())))
end  -- freed here, at the end of the scope

print(("after the scope: DidAlloc %d (freed)"):format(m:didalloc(p)))
