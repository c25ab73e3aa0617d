-- imalloc.wrap calls through the vtable of the pointer it is given. By
-- default it accepts only a vtable that lies in a loaded image (a shared
-- object, a DLL, the program) whose every slot points into the executable
-- code of a loaded image: memory a script can write (any heap block) holds
-- neither. imalloc.wrap(p, "ffi") lets in an object built at run time (a
-- vtable in heap memory, as LuaJIT's FFI makes one) as long as every slot
-- points into executable memory.
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit

local REFUSED = "bad argument #1 to 'wrap' (pointer is not a COM interface (no vtable into loaded code))"
local SLOTS = 9  -- IMalloc's: IUnknown's three and its own six

--- A block of `m` holding `bytes`.
local function block_of(m, bytes)
  local p = assert(m:alloc(#bytes))
  m:write(p, bytes)
  return p
end

--- `n` copies of the address `p`, as a script can write them into a block.
local function addresses(p, n)
  return testkit.pointer_bytes(p):rep(n)
end

describe("imalloc.wrap of memory a script wrote", function()
  local m
  before_each(function() m = imalloc.get() end)

  -- The object is a freed large block (with the built-in allocator its pages
  -- stay mapped, and keep what the script wrote, while the allocator caches
  -- them); its first word
  -- points to a live block that the script filled with the address of the
  -- IMalloc object, which lies in a loaded module but in its data.
  it("refuses a freed large block whose vtable is a live block of data addresses", function()
    local vtbl = block_of(m, addresses(m:pointer(), SLOTS))
    local object = block_of(m, testkit.pointer_bytes(vtbl) .. ("\0"):rep(100000))
    m:free(object)
    assert.has_error(function() imalloc.wrap(object) end, REFUSED)
    assert.has_error(function() imalloc.wrap(object, "ffi") end, REFUSED)
    m:free(vtbl)
  end)

  -- The same, with an object no allocator has freed: a C heap block.
  it("refuses a C heap block whose vtable is a live block of data addresses", function()
    local vtbl = block_of(m, addresses(m:pointer(), SLOTS))
    local object = testkit.crt_malloc(64)
    testkit.poke(object, testkit.pointer_bytes(vtbl))
    assert.has_error(function() imalloc.wrap(object) end, REFUSED)
    assert.has_error(function() imalloc.wrap(object, "ffi") end, REFUSED)
    testkit.crt_free(object)
    m:free(vtbl)
  end)

  -- A vtable inside a loaded image, but whose slots are not code: the
  -- IMalloc object itself taken for a vtable (its first slot is the
  -- address of the real vtable, which is data).
  it("refuses a vtable in a loaded image whose slots point to data", function()
    local object = testkit.crt_malloc(64)
    testkit.poke(object, testkit.pointer_bytes(m:pointer()))
    assert.has_error(function() imalloc.wrap(object) end, REFUSED)
    assert.has_error(function() imalloc.wrap(object, "ffi") end, REFUSED)
    testkit.crt_free(object)
  end)

  -- Real code addresses, copied by a script into a heap block: the slots
  -- pass, the vtable does not (by default).
  it("refuses a vtable in a heap block even when its slots are real code", function()
    local real = testkit.deref(m:pointer())  -- the allocator's vtable
    local vtbl = testkit.crt_malloc(SLOTS * testkit.pointer_size)
    testkit.poke(vtbl, testkit.peek(real, SLOTS * testkit.pointer_size))
    local object = testkit.crt_malloc(64)
    testkit.poke(object, testkit.pointer_bytes(vtbl))
    assert.has_error(function() imalloc.wrap(object) end, REFUSED)
    testkit.crt_free(object)
    testkit.crt_free(vtbl)
  end)
end)

describe("imalloc.wrap of an object whose vtable is outside every image", function()
  it("refuses it by default and takes it with \"ffi\"", function()
    local p = testkit.counting("heap")
    assert.has_error(function() imalloc.wrap(p) end, REFUSED)
    assert.equal(0, testkit.counts(p).addrefs)  -- never called through
    local h = imalloc.wrap(p, "ffi")
    assert.equal("IMalloc", imalloc.type(h))
    assert.equal(1, testkit.counts(p).addrefs)
    local b = h:alloc(10)
    assert.equal(10, h:getsize(b))
    h:free(b)
    assert.same({ 1, 1 }, { testkit.counts(p).allocs, testkit.counts(p).frees })
    h:release()
    assert.equal(1, testkit.counts(p).releases)
  end)

  it("takes with \"ffi\" what it takes by default", function()
    local m = imalloc.get()
    assert.is_true(imalloc.wrap(m:pointer(), "ffi") == m)
    local c = testkit.counting()
    local h = imalloc.wrap(c, "ffi")
    h:release()
    assert.same({ 1, 1 }, { testkit.counts(c).addrefs, testkit.counts(c).releases })
  end)

  it("still refuses with \"ffi\" blocks of the task allocator and memory it cannot read", function()
    local m = imalloc.get()
    local b = m:alloc(64)
    assert.has_error(function() imalloc.wrap(b, "ffi") end,
      "bad argument #1 to 'wrap' (pointer is a memory block, not an interface)")
    m:free(b)
    assert.has_error(function() imalloc.wrap(testkit.unreadable_page(), "ffi") end, REFUSED)
    assert.has_error(function() imalloc.wrap(testkit.null(), "ffi") end,
      "bad argument #1 to 'wrap' (NULL interface pointer)")
  end)

  it("raises for a mode other than \"ffi\"", function()
    local m = imalloc.get()
    assert.has_error(function() imalloc.wrap(m:pointer(), "FFI") end,
      "bad argument #2 to 'wrap' (invalid option 'FFI')")
    assert.has_error(function() imalloc.wrap(m:pointer(), "ffx") end,
      "bad argument #2 to 'wrap' (invalid option 'ffx')")
    assert.has_error(function() imalloc.wrap(m:pointer(), "ffi\0") end,
      "bad argument #2 to 'wrap' (invalid option 'ffi')")
    assert.has_error(function() imalloc.wrap(m:pointer(), 1) end,
      "bad argument #2 to 'wrap' (string expected, got number)")
    assert.has_error(function() imalloc.wrap(m:pointer(), {}) end,
      "bad argument #2 to 'wrap' (string expected, got table)")
    assert.is_true(imalloc.wrap(m:pointer(), nil) == m)
  end)
end)

-- An IMalloc built with LuaJIT's FFI, as a script without a C compiler
-- would: its vtable in memory from ffi.new, its slots FFI callbacks (code
-- that LuaJIT writes into executable pages of its own, in no image). The
-- object itself (one pointer) is a C heap block: wrap takes a light
-- userdata, which native code hands out, not the FFI.
if helpers.lua == "luajit" then
  describe("imalloc.wrap of an IMalloc built with LuaJIT's FFI", function()
    local ffi = require "ffi"
    -- COM methods are __stdcall on 32-bit x86 (the attribute means nothing
    -- elsewhere)
    local cc = (ffi.abi("win") and ffi.arch == "x86") and "__stdcall " or ""
    local methods = {
      { "QueryInterface", "int32_t", "void *, const void *, void **" },
      { "AddRef", "uint32_t", "void *" },
      { "Release", "uint32_t", "void *" },
      { "Alloc", "void *", "void *, size_t" },
      { "Realloc", "void *", "void *, void *, size_t" },
      { "Free", "void", "void *, void *" },
      { "GetSize", "size_t", "void *, void *" },
      { "DidAlloc", "int", "void *, void *" },
      { "HeapMinimize", "void", "void *" },
    }
    local function ctype(m, name)  -- "ret (cc *name)(args)"
      return ("%s (%s*%s)(%s)"):format(m[2], cc, name or "", m[3])
    end
    local fields = {}
    for i, m in ipairs(methods) do fields[i] = ctype(m, m[1]) .. ";" end
    -- unique names: another spec may define an IMalloc of its own
    ffi.cdef("typedef struct { " .. table.concat(fields, " ")
      .. " } wrapspec_vtbl; typedef struct { const wrapspec_vtbl *lpVtbl; } wrapspec_obj;")

    --- A new FFI IMalloc: the light userdata to wrap, what it counts, and
    -- what keeps its vtable and callbacks alive.
    local function ffi_imalloc()
      local counts = { addrefs = 0, releases = 0, allocs = 0, frees = 0 }
      local blocks = {}  -- address -> { cdata, size }
      local function key(p) return tonumber(ffi.cast("uintptr_t", p)) end
      local impl = {
        QueryInterface = function(_, _, out) out[0] = nil return -2147467262 end,  -- E_NOINTERFACE
        AddRef = function() counts.addrefs = counts.addrefs + 1 return 2 end,
        Release = function() counts.releases = counts.releases + 1 return 1 end,
        Alloc = function(_, cb)
          local n = tonumber(cb)
          local mem = ffi.new("uint8_t[?]", n > 0 and n or 1)
          blocks[key(mem)] = { mem, n }
          counts.allocs = counts.allocs + 1
          return mem
        end,
        Realloc = function() return nil end,
        Free = function(_, p)
          if p ~= nil and blocks[key(p)] then
            blocks[key(p)] = nil
            counts.frees = counts.frees + 1
          end
        end,
        GetSize = function(_, p)
          local b = p ~= nil and blocks[key(p)]
          return b and b[2] or ffi.cast("size_t", -1)
        end,
        DidAlloc = function(_, p)
          if p == nil then return -1 end
          return blocks[key(p)] and 1 or 0
        end,
        HeapMinimize = function() end,
      }
      local vtbl = ffi.new("wrapspec_vtbl")
      local callbacks = {}
      for i, m in ipairs(methods) do
        local f = impl[m[1]]
        jit.off(f)  -- called from C through the Lua/C API: interpreted
        callbacks[i] = ffi.cast(ctype(m), f)
        vtbl[m[1]] = callbacks[i]
      end
      local object = testkit.crt_malloc(testkit.pointer_size)
      ffi.cast("wrapspec_obj *", object).lpVtbl = vtbl
      local keep = { vtbl = vtbl, callbacks = callbacks }
      local function free()
        for _, cb in ipairs(callbacks) do cb:free() end
        testkit.crt_free(object)
      end
      return object, counts, keep, free
    end

    local function refused_then_taken()
      local object, counts, keep, free = ffi_imalloc()
      assert.has_error(function() imalloc.wrap(object) end, REFUSED)
      assert.equal(0, counts.addrefs)
      local h = imalloc.wrap(object, "ffi")
      assert.equal(1, counts.addrefs)
      local p = h:alloc(10)
      assert.equal(10, h:getsize(p))
      assert.equal(1, h:didalloc(p))
      h:write(p, "0123456789")
      assert.equal("0123456789", h:read(p, 10))
      h:free(p)
      assert.equal(0, h:didalloc(p))
      assert.same({ 1, 1 }, { counts.allocs, counts.frees })
      assert.same({ nil, "E_NOINTERFACE: no such interface supported", 0x80004002 },
        { h:queryinterface(imalloc.IID_IUnknown) })
      h:release()
      assert.equal(1, counts.releases)
      assert.is_table(keep)
      free()
    end
    jit.off(refused_then_taken)  -- its calls run the callbacks: interpreted
    it("is refused by default, taken with \"ffi\" and called through", refused_then_taken)
  end)
end
