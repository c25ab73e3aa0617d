-- What the spy specs share. The spy is one per process, and a stop can stay
-- pending until the last spied block is freed, so every test starts with no
-- spy registered and leaves none (common.isolate checks it): a test that
-- starts the spy stops it (or its describe's common.session does), so the
-- tests pass in any order busted shuffles them into, and in one process with
-- the other spec files. What only a fresh process shows runs in one
-- (helpers.run_fresh).
local helpers = require "helpers"
local assert = require "luassert"
local busted = require "busted"

local common = {
  helpers = helpers,
  imalloc = helpers.imalloc,
  spy = helpers.imalloc.spy,
  windows = helpers.windows,
}

--- Whether the spy is registered, active or with a stop pending.
local function registered()
  local r = common.spy.report()
  return r.active or r.pending
end

--- For every test of the file (call it at the file's top level): the test
-- must find no spy registered, and leave none. One left active is stopped,
-- so that the tests after it start clean, and the test fails.
function common.isolate()
  busted.before_each(function()
    assert.is_false(registered(), "a spy was registered before the test")
  end)
  busted.after_each(function()
    local r = common.spy.report()
    if r.active then common.spy.stop() end
    assert.is_false(r.active, "the test left the spy active")
    assert.is_false(r.pending, "the test left a stop of the spy pending")
  end)
end

--- For every test of the describe that calls it: a spy session of its own,
-- started (with `options`) before the test and stopped after it, which must
-- succeed (nothing spied is left live).
function common.session(options)
  busted.before_each(function() assert.is_true(common.spy.start(options)) end)
  busted.after_each(function() assert.is_true(common.spy.stop()) end)
end

--- "file:line" of the caller's caller's line: what the spy records for an
-- allocation made on the line that calls where().
function common.where()
  local info = debug.getinfo(2, "Sl")
  return info.short_src .. ":" .. info.currentline
end

--- Asserts that `...` is a failure tuple for the HRESULT named `name`:
-- nil, "NAME: text", code, where the code's message is that text. (The
-- codes of CO_E_OBJISREG and CO_E_OBJNOTREG are checked by value in
-- codes_spec.lua.)
function common.assert_hresult(name, ...)
  local n = select("#", ...)
  local ok, msg, code = ...
  assert.equal(3, n)
  assert.is_nil(ok)
  assert.equal(name, msg:match("^([%w_]+):"))
  assert.equal(msg, common.imalloc.hresult(code))
end

--- The report's blocks as {address, size, where} triples, for assert.same.
function common.blocks(report)
  local t = {}
  for i, b in ipairs((report or common.spy.report()).blocks) do
    t[i] = { b.address, b.size, b.where }
  end
  return t
end

--- Whether the report lists the block at `p`.
function common.lists(p, report)
  for _, b in ipairs((report or common.spy.report()).blocks) do
    if b.address == p then return true end
  end
  return false
end

return common
