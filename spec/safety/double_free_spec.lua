-- A block this module handed out and has freed is refused by a second free
-- and by every other use, whatever the heap answers for it: also where the
-- heap delays frees and DidAlloc still answers 1 for a freed block (Wine
-- with WINEDEBUG=warn+heap keeps the last 1024 freed blocks aside: the
-- test wine-heapcheck runs this file and the rest of the Wine suite so).
-- There the module's record of the blocks it freed (src/freed.c) refuses
-- the address, and Wine's GetSize tells a block freed by native code;
-- elsewhere DidAlloc does.
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit

local NOTLIVE = "pointer is not a live block of this IMalloc"

-- f raises the refusal of a pointer that is not a live block, the same
-- whatever the heap.
local function refused(f)
  local ok, err = pcall(f)
  assert.is_false(ok, "not refused")
  err = tostring(err)
  assert.is_truthy(err:find(NOTLIVE, 1, true), err)
end

-- Sizes of small blocks, of the heap's largest small ones and of blocks
-- mapped on their own (which no heap delays).
local SIZES = { 1, 16, 100, 4096, 200000, 2 ^ 20 + 16 }
local BIG = 4 * 2 ^ 20

describe("a block this module freed", function()
  local m
  before_each(function()
    m = assert(imalloc.get())
  end)

  it("is refused by a second free, whatever its size", function()
    for _, n in ipairs(SIZES) do
      local p = assert(m:alloc(n))
      m:free(p)
      refused(function() m:free(p) end)
      refused(function() m:free(p) end)  -- and a third
    end
  end)

  it("has didalloc 0 right after the free", function()
    for _, n in ipairs(SIZES) do
      local p = assert(m:alloc(n))
      assert.equal(1, m:didalloc(p))
      m:free(p)
      assert.equal(0, m:didalloc(p))
    end
  end)

  it("is refused by every method that takes a block", function()
    local p = assert(m:alloc(32))
    m:free(p)
    for _, use in ipairs {
      function() return m:realloc(p, 64) end,
      function() return m:realloc(p, 0) end,
      function() return m:getsize(p) end,
      function() return m:read(p) end,
      function() return m:write(p, "x") end,
      function() return m:string(p) end,
      function() return m:wstring(p) end,
      function() return m:adopt(p) end,
    } do
      refused(use)
    end
    refused(function() m:free(p) end)
  end)

  it("is refused after realloc(p, 0) freed it", function()
    local p = assert(m:alloc(32))
    assert.is_nil(m:realloc(p, 0))
    assert.equal(0, m:didalloc(p))
    refused(function() m:free(p) end)
  end)

  it("is refused at its old address after realloc moved it", function()
    local p = assert(m:alloc(16))
    local q = assert(m:realloc(p, BIG))  -- a small block cannot grow in place to 4 MiB
    assert.are_not.equal(p, q)
    assert.equal(0, m:didalloc(p))
    refused(function() m:free(p) end)
    m:free(q)
    refused(function() m:free(q) end)
  end)

  it("is refused after a buffer freed it, by free or resize", function()
    local b = assert(m:buffer(16))
    local p = b:ptr()
    b:free()
    refused(function() m:free(p) end)
    b = assert(m:bufferof("moved"))
    p = b:ptr()
    b:resize(BIG)
    assert.are_not.equal(p, b:ptr())
    refused(function() m:free(p) end)
    p = b:ptr()
    b:resize(0)  -- a new empty block; the old one is freed
    refused(function() m:free(p) end)
    b:free()
    b = assert(m:buffer(16))  -- a small block, which a heap may delay
    p = b:ptr()
    b:resize(0)
    refused(function() m:free(p) end)
    b:free()
  end)

  it("is refused by a checking handle after one that does not check freed it", function()
    local u = assert(imalloc.get()):setchecks(false)
    local p = assert(m:alloc(24))
    u:free(p)
    refused(function() m:free(p) end)
    assert.equal(0, m:didalloc(p))
  end)

  it("is a buffer's no more: the buffer raises instead of freeing it twice", function()
    local u = assert(imalloc.get()):setchecks(false)
    local b = assert(m:buffer(16))
    u:free(b:ptr())
    assert.has_error(function() b:free() end,
      "buffer's block was freed or resized behind its back")
  end)

  it("is a live block again once this module hands its address out again", function()
    -- The allocator gives a freed address out again once it has let the
    -- block go: at once on the built-in allocator, on a heap that delays
    -- frees once 1024 other frees have pushed it out. Live blocks on both
    -- sides keep it from merging with a neighbour; frees of another size
    -- push it out; then blocks of its size are taken until one is it.
    -- The loop allocates no Lua memory (Lua shares the heap through the C
    -- runtime's malloc), and it runs in a process of its own: a fresh
    -- heap, whose free blocks are where it put them, whatever tests the
    -- shuffled order ran before this one.
    local out = helpers.run_fresh([[
      local imalloc = require "imalloc"
      local m = assert(imalloc.get())
      local SIZE, TRIES = 48, 20000
      local taken, n = {}, 0
      for i = 1, TRIES do taken[i] = false end
      local before, p, after = assert(m:alloc(SIZE)), assert(m:alloc(SIZE)), assert(m:alloc(SIZE))
      m:free(p)
      for _ = 1, 2000 do m:free(assert(m:alloc(200))) end
      local q
      repeat
        q = assert(m:alloc(SIZE))
        n = n + 1
        taken[n] = q
      until q == p or n == TRIES
      for i = 1, n - 1 do m:free(taken[i]) end
      m:free(before)
      m:free(after)
      local live = m:didalloc(q)
      m:write(q, "again")
      local back = m:read(q, 5)
      m:free(q)
      local ok, err = pcall(m.free, m, q)
      print(("same %s live %d back %s second free %s"):format(tostring(q == p), live, back,
        ok and "taken" or tostring(err):find("]] .. NOTLIVE .. [[", 1, true) and "refused" or err))
    ]])
    assert.equal("same true live 1 back again second free refused\n", out)
  end)
end)

describe("a block this module did not free", function()
  -- stays live, also where the record of freed blocks is on: a realloc or
  -- resize that keeps it in place or fails frees nothing
  local m
  before_each(function()
    m = assert(imalloc.get())
  end)

  it("is live after realloc keeps it in place or fails", function()
    local p = assert(m:alloc(100))
    local q = assert(m:realloc(p, 90))  -- in place on every heap tested
    assert.equal(p, q)
    assert.same({ nil, "not enough memory", 0x8007000E }, { m:realloc(q, helpers.hugesize) })
    assert.equal(1, m:didalloc(q))
    assert.has_no.errors(function() m:free(q) end)
  end)

  it("is a buffer's still after resize keeps it in place or fails", function()
    local b = assert(m:buffer(100))
    local p = b:ptr()
    assert.equal(b, b:resize(90))
    assert.equal(p, b:ptr())
    assert.same({ nil, "not enough memory", 0x8007000E }, { b:resize(helpers.hugesize) })
    assert.equal(1, m:didalloc(p))
    assert.has_no.errors(function() b:free() end)
  end)
end)

describe("an address this module freed and native code's frees let go", function()
  -- The heap lets the block go after others' frees (native code's here,
  -- which the module's record of freed blocks does not see: with the
  -- record alone, the address is still in it), and hands it out again.
  -- Whichever way the module takes it, it is a live block of its own:
  -- every way forgets it. In a process of its own, as the test above.
  -- (found here: Lua 5.1 has no package.searchpath of its own)
  local core = package.searchpath("imalloc.core", package.cpath)
  local function again(take, use)
    return helpers.run_fresh([[
      local imalloc = require "imalloc"
      local testkit = require "imalloc_testkit"
      testkit.cotaskmem_open(]] .. ("%q"):format(core) .. [[)
      local m = assert(imalloc.get())
      local SIZE, TRIES = 48, 20000
      local taken, n = {}, 0
      for i = 1, TRIES do taken[i] = false end
      local function take() ]] .. take .. [[ end
      local function use(q) ]] .. use .. [[ end
      local before, p, after = assert(m:alloc(SIZE)), assert(m:alloc(SIZE)), assert(m:alloc(SIZE))
      m:free(p)
      for _ = 1, 2000 do testkit.cotaskmem_free(assert(testkit.cotaskmem_alloc(200))) end
      local q, it
      repeat
        q, it = take()
        n = n + 1
        taken[n] = it
      until q == p or n == TRIES
      local live = m:didalloc(q)
      local back = use(taken[n])
      for i = 1, n - 1 do
        if type(taken[i]) == "userdata" and getmetatable(taken[i]) then taken[i]:free()
        else m:free(taken[i]) end
      end
      m:free(before)
      m:free(after)
      local ok, err = pcall(m.free, m, q)
      print(("same %s live %d back %s second free %s"):format(tostring(q == p), live, back,
        ok and "taken" or tostring(err):find("]] .. NOTLIVE .. [[", 1, true) and "refused" or err))
    ]])
  end
  local WANT = "same true live 1 back again second free refused\n"

  it("is a live block again when realloc(nil, n) hands it out", function()
    assert.equal(WANT, again("local q = assert(m:realloc(nil, SIZE)) return q, q",
      "m:write(q, 'again') local s = m:read(q, 5) m:free(q) return s"))
  end)

  it("is a live block again when a buffer's resize moves to it", function()
    assert.equal(WANT, again(
      "local b = assert(m:buffer(8)) assert(b:resize(SIZE)) return b:ptr(), b",
      "q:write('again') local s = q:read(5) q:free() return s"))
  end)

  it("is a live block again when alloc hands it out", function()
    assert.equal(WANT, again("local q = assert(m:alloc(SIZE)) return q, q",
      "m:write(q, 'again') local s = m:read(q, 5) m:free(q) return s"))
  end)
end)

describe("wrap of a block this module freed", function()
  it("refuses it as no interface, as for any freed block", function()
    local m = assert(imalloc.get())
    local p = assert(m:alloc(64))
    m:free(p)
    assert.has_error(function() imalloc.wrap(p) end,
      "bad argument #1 to 'wrap' (pointer is not a COM interface (no vtable into loaded code))")
  end)
end)

describe("a block freed by native code", function()
  -- Where the heap tells a delayed block from a live one (Wine: GetSize
  -- fails on it), the check refuses it like any freed block. With the
  -- record alone (IMALLOC_FREED_RECORD=1: the test wine-heapcheck-double_free-record)
  -- only the blocks this module freed are known: this one is not, and its
  -- second free reaches the heap, which Wine's refuses in turn.
  local recordonly = os.getenv("IMALLOC_FREED_RECORD") == "1"

  it("is refused by a second free through the module" ..
     (recordonly and " (not with the record alone)" or ""), function()
    local m = assert(imalloc.get())
    testkit.cotaskmem_open(package.searchpath("imalloc.core", package.cpath))
    local p = assert(m:alloc(40))
    testkit.cotaskmem_free(p)
    if recordonly then
      assert.has_no.errors(function() m:free(p) end)
    else
      refused(function() m:free(p) end)
      assert.equal(0, m:didalloc(p))
    end
  end)
end)

describe("the heap of this run", function()
  -- The runs on a heap that delays frees say so (IMALLOC_HEAP_DELAYS=1:
  -- wine-heapcheck-* under Wine's heap checking, delayfree-heapcheck-* on
  -- the test build whose allocator delays frees, tests/delayfree/delay.c);
  -- elsewhere the heap frees at once. The module's probe must have found
  -- the same: its record or the heap's GetSize then answer for the heap.
  local delays = os.getenv("IMALLOC_HEAP_DELAYS") == "1"
  local recordonly = delays and os.getenv("IMALLOC_FREED_RECORD") == "1"
  local m
  before_each(function()
    m = assert(imalloc.get())
    testkit.cotaskmem_open(package.searchpath("imalloc.core", package.cpath))
  end)

  it(delays and "keeps a freed block aside: DidAlloc 1, GetSize -1"
     or "frees a block at once", function()
    local p = assert(m:alloc(16))
    assert.equal(1, testkit.cotaskmem_didalloc(p))
    m:free(p)
    assert.equal(delays and 1 or 0, testkit.cotaskmem_didalloc(p))
    assert.equal(-1, testkit.cotaskmem_getsize(p))
    assert.equal(0, m:didalloc(p))
  end)

  it("is asked by the module as its probe found it" ..
     (recordonly and " (the record alone: a block native code freed is not known)" or ""),
     function()
    -- The record reads a live block at an address it still holds as freed
    -- (the heap's delay ran out, counting frees the module did not see,
    -- and native code was given the address again: freed.c): it holds
    -- what earlier cases freed. Take a block it does not hold, keeping the
    -- others until the end so that they are not handed out again.
    local held, q = {}, nil
    for _ = 1, 4097 do
      q = assert(testkit.cotaskmem_alloc(40))
      if m:didalloc(q) == 1 then break end
      assert.is_true(recordonly)  -- only the record reads a live block so
      held[#held + 1], q = q, nil
    end
    assert.is_not_nil(q)
    testkit.cotaskmem_free(q)
    local answer = m:didalloc(q)
    for _, h in ipairs(held) do testkit.cotaskmem_free(h) end
    assert.equal(recordonly and 1 or 0, answer)
  end)

  it("keeps a block this module freed refused while the heap keeps it aside", function()
    -- the heap lets it go at the 1024th free after it (Wine, delay.c);
    -- the record holds as many
    local p = assert(m:alloc(16))
    m:free(p)
    for _ = 1, 1023 do m:free(assert(m:alloc(16))) end
    m:free(nil)  -- frees nothing: takes no place in the record
    assert.equal(0, m:didalloc(p))
    refused(function() m:free(p) end)
  end)
end)
