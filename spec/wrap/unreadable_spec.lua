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

-- The ranges imalloc.wrap asks about end where they end: the object's
-- pointer and the vtable's slots may fill a readable page to its last byte
-- when the next page cannot be read, and one byte into that page is
-- refused, never read.
describe("imalloc.wrap at the end of readable memory", function()
  local P = testkit.pointer_size
  local SLOTS = 9  -- IMalloc's: IUnknown's three and its own six

  it("takes an object in the last bytes of a readable page", function()
    local m = imalloc.get()
    local object = testkit.offset(testkit.page_end(), -P)
    testkit.poke(object, testkit.pointer_bytes(testkit.deref(m:pointer())))
    local h = imalloc.wrap(object)
    assert.equal("IMalloc", imalloc.type(h))
    h:release()
  end)

  it("refuses an object whose last byte lies in the next, unreadable page", function()
    local m = imalloc.get()
    local object = testkit.offset(testkit.page_end(), -(P - 1))
    testkit.poke(object, testkit.pointer_bytes(testkit.deref(m:pointer())):sub(1, P - 1))
    assert.has_error(function() imalloc.wrap(object) end, refused)
  end)

  it("takes with \"ffi\" a vtable that fills a readable page to its end, and checks its first slot", function()
    local m = imalloc.get()
    local vtbl = testkit.offset(testkit.page_end(), -SLOTS * P)
    testkit.poke(vtbl, testkit.peek(testkit.deref(m:pointer()), SLOTS * P))
    local object = testkit.crt_malloc(64)
    testkit.poke(object, testkit.pointer_bytes(vtbl))
    local h = imalloc.wrap(object, "ffi")
    assert.equal("IMalloc", imalloc.type(h))
    h:release()
    -- the first slot (QueryInterface) now the address of data
    testkit.poke(vtbl, testkit.pointer_bytes(m:pointer()))
    assert.has_error(function() imalloc.wrap(object, "ffi") end, refused)
    testkit.crt_free(object)
  end)

  it("refuses a pointer whose bytes wrap around the top of the address space", function()
    assert.has_error(function() imalloc.wrap(testkit.pointer_at(-4)) end, refused)
    assert.has_error(function() imalloc.wrap(testkit.pointer_at(-4), "ffi") end, refused)
  end)
end)
