-- examples/flow.lua, the original article's program, runs and prints each
-- step with the values the reference table calls for.
local helpers = require "helpers"

describe("examples/flow.lua", function()
  it("prints the alloc/getsize/free/didalloc/release flow", function()
    local lines = helpers.run_example("examples/flow.lua")
    assert.equal(7, #lines)
    assert.matches("^CoGetMalloc:  IMalloc at 0x%x+ %(" .. helpers.imalloc.backend .. " backend%)$", lines[1])
    assert.matches("^Alloc%(100%):   block at 0x%x+$", lines[2])
    assert.equal("GetSize:      100 bytes", lines[3])
    assert.equal("DidAlloc:     1 (1: the block is the allocator's)", lines[4])
    assert.equal("Free:         done", lines[5])
    assert.equal("DidAlloc:     0 (0: freed, no longer the allocator's)", lines[6])
    assert.equal("Release:      1 (IMalloc (released))", lines[7])
  end)
end)
