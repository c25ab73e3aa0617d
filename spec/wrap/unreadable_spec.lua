-- imalloc.wrap asks the system whether it may read a pointer's vtable
-- (VirtualQuery on Windows, process_vm_readv or a pipe on POSIX) rather
-- than reading it: memory no one may read is refused, never touched.
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit

local refused = "bad argument #1 to 'wrap' (pointer is not a COM interface (no vtable into loaded code))"

describe("imalloc.wrap of memory that cannot be read", function()
  it("refuses a pointer into a page with no access", function()
    assert.has_error(function() imalloc.wrap(testkit.unreadable_page()) end, refused)
  end)

  it("refuses a pointer into a guard page, which stays a guard page", function()
    -- On POSIX there are no guard pages: the argument is ignored there.
    local p = testkit.unreadable_page(true)
    assert.has_error(function() imalloc.wrap(p) end, refused)
    assert.has_error(function() imalloc.wrap(p) end, refused)
  end)
end)
