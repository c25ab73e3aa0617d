-- The original article's program, in Lua: get the COM task allocator,
-- allocate 100 bytes, ask their size, free them, ask whether the allocator
-- still owns them, and release the allocator, printing each step.
--
--   lua5.4 examples/flow.lua        (after `bash .ci/demo` has built it)
local imalloc = require "imalloc"

local function hex(p) return ("0x%x"):format(imalloc.address(p)) end

local m = assert(imalloc.get())
print(("CoGetMalloc:  IMalloc at %s (%s backend)"):format(hex(m:pointer()), imalloc.backend))

local p = assert(m:alloc(100))
print(("Alloc(100):   block at %s"):format(hex(p)))

print(("GetSize:      %d bytes"):format(m:getsize(p)))
print(("DidAlloc:     %d (1: the block is the allocator's)"):format(m:didalloc(p)))

m:free(p)
print("Free:         done")

print(("DidAlloc:     %d (0: freed, no longer the allocator's)"):format(m:didalloc(p)))

local count = m:release()
print(("Release:      %d (%s)"):format(count, tostring(m)))
