-- User values (Lua 5.4): a handle, a buffer and the working copy of
-- m:wstring carry none; the record of the blocks buffers own (in the
-- registry) carries one, its table. Before 5.4 every
-- userdata has one slot and lua_newuserdatauv's count is not seen
-- (src/luacompat.h), so this file runs on Lua 5.4 only. debug.getuservalue
-- answers a slot's value and true, and only nil for a slot the userdata
-- lacks; a slot made and never used would cost every handle and buffer 16
-- bytes.
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit

local function slots(u, n)  -- 1 if u has no user value n, else 2
  return select("#", debug.getuservalue(u, n or 1))
end

describe("user values", function()
  it("a handle has none", function()
    local m = imalloc.get()
    assert.equal(1, slots(m))
    m:release()
  end)

  it("a handle that queryinterface made has none", function()
    local m = imalloc.get()
    local q = assert(m:queryinterface(imalloc.IID_IMalloc))
    assert.equal(1, slots(q))
    q:release()
    m:release()
  end)

  it("a buffer has none", function()

    local m = imalloc.get()
    local b = m:buffer(8)
    assert.equal(1, slots(b))
    b:free()
    m:release()
  end)

  it("the record of buffer-owned blocks has one, a table", function()
    imalloc.get():release()  -- the module is loaded, its record made
    local owned = debug.getregistry()["imalloc.owned"]
    assert.equal("userdata", type(owned))
    assert.equal(2, slots(owned, 1))
    assert.equal("table", type((debug.getuservalue(owned, 1))))
    assert.equal(1, slots(owned, 2))
  end)

  -- The bytes Lua allocates while f runs (collector stopped), after a first
  -- run of f made the stack and call frames it needs.
  local function cost(f)
    f()
    collectgarbage("collect")
    collectgarbage("stop")
    local before = collectgarbage("count")
    local keep = f()
    local after = collectgarbage("count")
    collectgarbage("restart")
    assert(keep ~= nil)
    return (after - before) * 1024
  end

  it("m:wstring's working copy has none: it costs a bare userdata", function()
    local m = imalloc.get()
    local p = m:wstrdup(("x"):rep(100))
    local room = cost(function() return testkit.userdata(100) end)
    local str = cost(function() return ("y"):rep(100) end)
    assert.is_true(room > 100 and str > 100)
    assert.equal(room + str, cost(function() return m:wstring(p) end))
    m:free(p)
    m:release()
  end)
end)
