-- Crashing spec for .ci/win/selftest/run.sh: a crash in a C module must make
-- busted.sh exit non-zero under Wine.
describe("a crashing module", function()
  it("crashes", function()
    require("winselftest").crash()
  end)
end)
