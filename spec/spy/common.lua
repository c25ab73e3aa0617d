-- What the spy specs share. Each spec/spy/*_spec.lua runs in a process of
-- its own (spec/CMakeLists.txt): the spy is one per process, and a stop can
-- stay pending until the last spied block is freed.
local helpers = require "helpers"
local assert = require "luassert"

local common = {
  helpers = helpers,
  imalloc = helpers.imalloc,
  spy = helpers.imalloc.spy,
  windows = helpers.windows,
}

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
