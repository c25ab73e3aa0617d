-- Failing spec for .ci/win/selftest/run.sh: busted must exit non-zero under Wine.
describe("a failing spec", function()
  it("passes", function()
    assert.equal(5, require("winselftest").add(2, 3))
  end)

  it("fails", function()
    assert.equal(6, require("winselftest").add(2, 3))
  end)
end)
