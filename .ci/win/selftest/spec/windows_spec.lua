-- Passing specs for .ci/win/selftest/run.sh: run by Windows Lua under Wine.
describe("the Windows Lua", function()
  it("is Windows Lua 5.4", function()
    assert.equal("Lua 5.4", _VERSION)
    assert.equal("\\", package.config:sub(1, 1))
  end)
end)

describe("the cross-built busted dependencies", function()
  it("load lfs", function()
    local lfs = require "lfs"
    assert.equal("directory", lfs.attributes(".", "mode"))
    assert.is_string(lfs.currentdir())
  end)

  it("load system.core", function()
    local system = require "system.core"
    local t0 = system.monotime()
    system.sleep(0.01)
    assert.is_true(system.monotime() > t0)
    assert.is_true(system.gettime() > 1.6e9)
  end)

  it("load term.core", function()
    local term = require "term.core"
    assert.is_boolean(term.isatty(io.stdout))
  end)
end)

describe("a cross-built module", function()
  local st = require "winselftest"

  it("returns a sum", function()
    assert.equal(5, st.add(2, 3))
  end)

  it("raises for a bad argument", function()
    assert.has_error(function() st.add("x", 1) end,
      "bad argument #1 to 'add' (number expected, got string)")
  end)

  it("reaches ole32's task allocator", function()
    local r = assert(st.cogetmalloc(100))
    assert.equal(0, r.hr)              -- S_OK
    assert.is_true(r.allocated)
    assert.equal(100, r.size)          -- GetSize
    assert.equal(1, r.didalloc)        -- DidAlloc: 1 for its own block
    assert.equal(0, r.didalloc_other)  -- 0 for a stack address
  end)
end)
