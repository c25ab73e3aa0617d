-- examples/take_ownership.lua shows a block freed at the end of a <close>
-- scope, so it is a Lua 5.4 script and this file runs on Lua 5.4 only
-- (spec/runtime/5.4/). The other examples run everywhere (spec/docs/flow_example,
-- spec/memory/crossing).
local helpers = require "helpers"

describe("examples/take_ownership.lua", function()
  it("adopts a string a native module returned", function()
    local lines = helpers.run_example("examples/take_ownership.lua")
    assert.same({
      "the module returned a 35-byte block; DidAlloc 1",
      'read through the buffer: "a string the native side allocated"',
      "after the scope: DidAlloc 0 (freed)",
    }, lines)
  end)
end)
