-- Passing a UTF-16 string to a COM-style API that takes ownership of it.
--
-- Many COM APIs take an LPOLESTR "[in]" that the callee frees with
-- CoTaskMemFree. wstrdup makes one in the task allocator; after the call it
-- belongs to the API, so the script must not free it (a buffer detached for
-- that hand-over says so in code).
--
-- imalloc_peer stands in for the native API: it is a small C module, built
-- with the tests, that frees what it is given with the task allocator.
--   LUA_PATH="lua/?.lua;;" LUA_CPATH="build/?.so;;" lua5.4 examples/wide_string.lua
local imalloc = require "imalloc"
-- imalloc_peer is a test module that `luarocks make` does not install.
local found, peer = pcall(require, "imalloc_peer")
if not found then
  error("this example needs imalloc_peer (a test module): build it with `cmake -S . -B build && cmake --build build`, then run LUA_CPATH='build/?.so;;' lua5.4 examples/wide_string.lua", 0)
end

local m = assert(imalloc.get())

-- 1. Straight hand-over: the API frees the string.
local name, units = m:wstrdup("Grüße, 世界")
print(("wstrdup: %d UTF-16 units, %d bytes with the NUL"):format(units, m:getsize(name)))
local n = peer.wtake(m, name)  -- the callee reads and frees it
print(("the API read %d units and freed the string: DidAlloc is now %d"):format(n, m:didalloc(name)))

-- 2. With a buffer: owned by Lua until the call, so an error on the way
-- frees it; detach() hands it over at the moment of the call.
local buf = m:adopt((m:wstrdup("second string")))
print(("buffer of %d bytes, owned by Lua"):format(#buf))
n = peer.wtake(m, buf:detach())
print(("handed over: the API read %d units; the buffer is %s"):format(n, imalloc.type(buf)))
