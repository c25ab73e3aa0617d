-- Collector order: handles and buffers finalized in every order, <close>
-- scopes that end in an error, and lua_close with live objects. Handles and
-- buffers here hold a counting IMalloc of the test kit, which records every
-- AddRef, Release, Alloc and Free: a double Release shows as a count of
-- references below 1, a missing one above, a double Free as more frees
-- than allocations.
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit

--- Every permutation of 1..n, as arrays (Heap's algorithm).
local function permutations(n)
  local a, out = {}, {}
  for i = 1, n do a[i] = i end
  local function gen(k)
    if k == 1 then
      out[#out + 1] = table.move(a, 1, n, 1, {})
      return
    end
    for i = 1, k do
      gen(k - 1)
      local j = (k % 2 == 0) and i or 1
      a[j], a[k] = a[k], a[j]
    end
  end
  gen(n)
  return out
end

--- A counting IMalloc and a function that checks its balance: `refs`
-- references held besides the spec's own, `blocks` blocks not yet freed.
local function counted()
  local p = testkit.counting()
  local function expect(refs, blocks, what)
    local c = testkit.counts(p)
    assert.same({ refs = 1 + refs, blocks = blocks },
      { refs = c.refs, blocks = c.allocs - c.frees }, what)
    assert.equal(c.addrefs - refs, c.releases, what)
  end
  return p, expect
end

-- The kinds of object, each made on handle `h` of counting IMalloc `p`;
-- `owns` is what it holds: references on p and blocks of p.
local kinds = {
  { name = "handle with two addrefs", owns = { 3, 0 },
    make = function(p) local h = imalloc.wrap(p); h:addref(); h:addref(); return h end },
  { name = "queryinterface handle", owns = { 1, 0 },
    make = function(_, h) return assert(h:queryinterface(imalloc.IID_IMalloc)) end },
  { name = "buffer", owns = { 1, 1 },
    make = function(_, h) return assert(h:buffer(24)) end },
  { name = "adopted block", owns = { 1, 1 },
    make = function(_, h) return h:adopt(assert(h:alloc(8))) end },
}

describe("collection order", function()
  it("gives back every reference and block once, whatever the order objects die in", function()
    local p, expect = counted()
    local orders = permutations(#kinds)
    assert.equal(24, #orders)
    for _, order in ipairs(orders) do
      local h = imalloc.wrap(p)  -- makes the others, then dies first
      local objects, refs, blocks = {}, 0, 0
      for i, kind in ipairs(kinds) do
        objects[i] = kind.make(p, h)
        refs, blocks = refs + kind.owns[1], blocks + kind.owns[2]
      end
      h = nil  -- luacheck: ignore
      helpers.collect()
      expect(refs, blocks, "after the creating handle")
      for _, i in ipairs(order) do
        objects[i] = nil
        helpers.collect()
        refs, blocks = refs - kinds[i].owns[1], blocks - kinds[i].owns[2]
        expect(refs, blocks, kinds[i].name .. " in order " .. table.concat(order, ","))
      end
    end
    expect(0, 0)
  end)

  it("gives back everything once when objects made in any order die in one cycle", function()
    local p, expect = counted()
    for _, order in ipairs(permutations(#kinds)) do
      local h = imalloc.wrap(p)
      local objects = {}
      -- Finalizers run in the reverse order of creation: every order.
      for _, i in ipairs(order) do objects[#objects + 1] = kinds[i].make(p, h) end
      h, objects = nil, nil  -- luacheck: ignore
      helpers.collect()
      expect(0, 0, table.concat(order, ","))
    end
  end)

  it("frees a buffer's block through its own reference after the handle is released", function()
    local p, expect = counted()
    local h = imalloc.wrap(p)
    local b = h:buffer(16)
    h:release()
    expect(1, 1)
    assert.equal(16, #b)
    b:write("still writable")
    b = nil  -- luacheck: ignore
    helpers.collect()
    expect(0, 0)
  end)

  it("runs the finalizers of handles and buffers again without effect", function()
    local p, expect = counted()
    local h = imalloc.wrap(p)
    local b = h:buffer(8)
    local hmt, bmt = getmetatable(h), getmetatable(b)
    bmt.__gc(b)
    bmt.__close(b)
    hmt.__gc(h)
    hmt.__close(h)
    expect(0, 0)
    assert.equal("released buffer", imalloc.type(b))
    assert.equal("released IMalloc", imalloc.type(h))
    h, b = nil, nil  -- luacheck: ignore
    helpers.collect()
    expect(0, 0)
  end)

  it("gives back 10,000 handles and buffers collected with memory churn in between", function()
    local p, expect = counted()
    local h = imalloc.wrap(p)
    local live = {}
    for i = 1, 10000 do
      local k = i % 4
      if k == 0 then live[i % 97] = h:buffer(i % 64)
      elseif k == 1 then live[i % 97] = imalloc.wrap(p)
      elseif k == 2 then live[i % 97] = h:adopt(h:alloc(i % 32))
      else local t = {} for j = 1, 50 do t[j] = { j } end end
      if i % 1000 == 0 then collectgarbage("step") end
    end
    h, live = nil, nil  -- luacheck: ignore
    helpers.collect()
    expect(0, 0)
  end)
end)

describe("a <close> scope", function()
  it("gives back its handles and buffers when an error is thrown in the middle", function()
    local p, expect = counted()
    local ok, err = pcall(function()
      local h <close> = imalloc.wrap(p)
      local b <close> = h:buffer(32)
      local a <close> = h:adopt(h:alloc(4))
      b:write("x")
      error("thrown in the middle", 0)
    end)
    assert.same({ false, "thrown in the middle" }, { ok, err })
    expect(0, 0)
    helpers.collect()
    expect(0, 0)
  end)

  it("closes every variable when another variable's __close raises", function()
    local p, expect = counted()
    local ok, err = pcall(function()
      local h <close> = imalloc.wrap(p)
      local bad <close> = setmetatable({}, { __close = function() error("close failed", 0) end })
      local b <close> = h:buffer(8)
    end)
    assert.same({ false, "close failed" }, { ok, err })
    expect(0, 0)
  end)

  it("closes every variable when the body and a __close both raise", function()
    local p, expect = counted()
    local ok, err = pcall(function()
      local h <close> = imalloc.wrap(p)
      local b <close> = h:buffer(8)
      local bad <close> = setmetatable({}, { __close = function(_, e) error("close saw: " .. e, 0) end })
      error("body", 0)
    end)
    assert.same({ false, "close saw: body" }, { ok, err })
    expect(0, 0)
  end)

  it("gives back nothing more for a handle released and a buffer freed inside it", function()
    local p, expect = counted()
    do
      local h <close> = imalloc.wrap(p)
      h:addref()
      local b <close> = h:buffer(8)
      b:free()
      h:release()
      h:release()
      expect(0, 0)
    end
    expect(0, 0)
    helpers.collect()
    expect(0, 0)
  end)

  it("leaves the block of a buffer detached inside it to its new owner", function()
    local p, expect = counted()
    local h = imalloc.wrap(p)
    local ptr
    do
      local b <close> = h:buffer(8)
      ptr = b:detach()
    end
    expect(1, 1)
    assert.equal(1, h:didalloc(ptr))
    h:free(ptr)
    h:release()
    expect(0, 0)
  end)

  it("closes on break and goto out of the scope", function()
    local p, expect = counted()
    for _ = 1, 3 do
      local h <close> = imalloc.wrap(p)
      local b <close> = h:buffer(4)
      break
    end
    expect(0, 0)
    do
      local h <close> = imalloc.wrap(p)
      goto out
    end
    ::out::
    expect(0, 0)
  end)

  it("is closed by coroutine.close in a coroutine suspended inside it", function()
    local p, expect = counted()
    local co = coroutine.create(function()
      local h <close> = imalloc.wrap(p)
      local b <close> = h:buffer(4)
      coroutine.yield()
    end)
    assert.is_true(coroutine.resume(co))
    expect(2, 1)
    assert.same({ true }, { coroutine.close(co) })
    expect(0, 0)
    co = nil  -- luacheck: ignore
    helpers.collect()
    expect(0, 0)
  end)

  it("is closed by coroutine.close after an error inside it, or else by the collector", function()
    local p, expect = counted()
    local body = function()
      local h <close> = imalloc.wrap(p)
      local b <close> = h:buffer(4)
      error("in the coroutine", 0)
    end
    local co = coroutine.create(body)
    assert.same({ false, "in the coroutine" }, { coroutine.resume(co) })
    assert.same({ false, "in the coroutine" }, { coroutine.close(co) })
    expect(0, 0)
    -- never closed: the handle and buffer are left to their __gc
    co = coroutine.create(body)
    coroutine.resume(co)
    co = nil  -- luacheck: ignore
    helpers.collect()
    expect(0, 0)
  end)
end)

--- Runs `code` in a new interpreter (this one, with this package.path and
-- package.cpath); returns what it printed and how it ended.
local function run_lua(code)
  local lowest = 0
  while arg and arg[lowest - 1] do lowest = lowest - 1 end
  local interpreter = assert(arg and arg[lowest], "no interpreter in arg")
  local dir = os.getenv("TEMP") or os.getenv("TMPDIR") or "/tmp"
  local sep = package.config:sub(1, 1)
  local script = ("%s%simalloc-08-%d-%d.lua"):format(dir, sep, os.time(), math.random(1 << 30))
  local f = assert(io.open(script, "w"))
  f:write(("package.path = %q\npackage.cpath = %q\n"):format(package.path, package.cpath), code)
  f:close()
  local command = ('"%s" "%s" 2>&1'):format(interpreter, script)
  if helpers.windows then command = '"' .. command .. '"' end  -- cmd /c's quotes
  local pipe = assert(io.popen(command))
  local out = pipe:read("a")
  local ok, how, status = pipe:close()
  os.remove(script)
  return out, ok, how, status
end

-- The script for lua_close: objects made in every order of the kinds, each
-- order on a counting IMalloc of its own, all left live. A sentinel made
-- before them is finalized after them (finalizers run in the reverse order
-- of creation) and prints the counts, just before lua_close unloads the
-- modules.
local close_script = [[
local imalloc = require "imalloc"
local testkit = require "imalloc_testkit"
local orders, counters = {}, {}
local kinds = {
  function(p) local h = imalloc.wrap(p); h:addref(); h:addref(); return h end,
  function(_, h) return assert(h:queryinterface(imalloc.IID_IMalloc)) end,
  function(_, h) return assert(h:buffer(24)) end,
  function(_, h) return h:adopt(assert(h:alloc(8))) end,
}
SENTINEL = setmetatable({}, { __gc = function()
  local bad = 0
  for i, p in ipairs(counters) do
    local c = testkit.counts(p)
    if c.refs ~= 1 or c.releases ~= c.addrefs or c.allocs ~= c.frees then
      bad = bad + 1
      print(("order %s: refs %d, AddRef %d, Release %d, Alloc %d, Free %d")
        :format(orders[i], c.refs, c.addrefs, c.releases, c.allocs, c.frees))
    end
  end
  print(("closed: %d orders, %d wrong"):format(#counters, bad))
end })
KEEP = {}
local function permute(a, k)
  if k == 0 then
    local p = testkit.counting()
    local h = imalloc.wrap(p)
    counters[#counters + 1], orders[#orders + 1] = p, table.concat(a, ",")
    for _, i in ipairs(a) do KEEP[#KEEP + 1] = kinds[i](p, h) end
    -- and a handle released by hand, a buffer outliving its handle's release,
    -- a coroutine suspended in a <close> scope
    KEEP[#KEEP + 1] = h
    local r = imalloc.wrap(p)
    KEEP[#KEEP + 1] = r:buffer(4)
    r:release()
    KEEP[#KEEP + 1] = r
    local co = coroutine.wrap(function()
      local x <close> = imalloc.wrap(p)
      local y <close> = x:buffer(2)
      coroutine.yield()
    end)
    co()
    KEEP[#KEEP + 1] = co
    return
  end
  for i = 1, k do
    permute(a, k - 1)
    local j = (k % 2 == 0) and i or 1
    a[j], a[k] = a[k], a[j]
  end
end
permute({ 1, 2, 3, 4 }, 4)
-- the task allocator too
local m = imalloc.get()
KEEP[#KEEP + 1] = m:buffer(64)
KEEP[#KEEP + 1] = m
print("live: " .. #KEEP .. " objects")
]]

describe("lua_close", function()
  it("gives back every reference and block of live objects exactly once, in every order", function()
    local out, ok, how, status = run_lua(close_script .. "os.exit(0, true)\n")
    assert.equal("live: 194 objects\nclosed: 24 orders, 0 wrong\n", out)
    assert.same({ true, "exit", 0 }, { ok, how, status })
  end)

  it("does the same when the script ends without os.exit", function()
    local out, ok = run_lua(close_script)
    assert.equal("live: 194 objects\nclosed: 24 orders, 0 wrong\n", out)
    assert.is_true(ok)
  end)
end)
