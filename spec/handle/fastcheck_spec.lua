-- The handle check's fast path (binding.h): the last live handle that
-- passed the full check is remembered, and forgotten before it is
-- released or collected, so that nothing else ever passes as it.
local helpers = require "helpers"
local imalloc = helpers.imalloc

describe("the remembered handle", function()
  it("is forgotten when released: a released handle still raises", function()
    local m = assert(imalloc.get())
    m:free(assert(m:alloc(8)))  -- remembered
    m:release()
    assert.has_error(function() m:alloc(8) end, "attempt to use a released IMalloc")
    assert.has_error(function() m:heapminimize() end, "attempt to use a released IMalloc")
  end)

  it("does not let a light userdata of the same address pass", function()
    local m = assert(imalloc.get())
    m:heapminimize()
    local alloc = m.alloc
    local fake = helpers.testkit.address_of(m)
    assert.has_error(function() alloc(fake, 8) end,
      "bad argument #1 to 'alloc' (IMalloc expected, got light userdata)")
  end)

  it("is forgotten when collected: another userdata at its address raises", function()
    local alloc = imalloc.get().alloc
    local size = helpers.testkit.handle_size
    local reused = 0
    for _ = 1, 100 do
      local h = assert(imalloc.get())
      h:heapminimize()  -- remembered
      local address = helpers.testkit.address_of(h)  -- %p is 5.4's only
      h = nil  -- luacheck: ignore
      collectgarbage()
      collectgarbage()  -- __gc ran in the first cycle, the memory goes now
      -- userdata of the handle's size, until one takes its memory
      local others = {}
      for k = 1, 64 do
        others[k] = helpers.testkit.userdata(size)
        if helpers.testkit.address_of(others[k]) == address then
          reused = reused + 1
          assert.has_error(function() alloc(others[k], 8) end,
            "bad argument #1 to 'alloc' (IMalloc expected, got userdata)")
          break
        end
      end
    end
    -- How often a collected handle's memory went to another userdata: 0
    -- under ASan and valgrind, whose allocators hold freed memory back.
    print(("\nfast check: another userdata took a collected handle's address in %d of 100 rounds"):format(reused))
  end)
end)
