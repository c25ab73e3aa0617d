-- The codes CoRegisterMallocSpy and CoRevokeMallocSpy answer, by value, as
-- winerror.h defines them (Windows SDK, mingw-w64, Wine; windows-sys has
-- CO_E_OBJNOTREG = -2147220997 = 0x800401FB):
--   CO_E_OBJNOTREG 0x800401FB  "object is not registered"
--   CO_E_OBJISREG  0x800401FC  "object is already registered"
-- src/com_abi.h (the POSIX side, so the built-in allocator answered with
-- them) and lua/imalloc.lua had the two swapped until d106ea7; these tests
-- keep them right. The other spy specs compare names and messages only.
local common = require "spy.common"
local imalloc, spy = common.imalloc, common.spy

common.isolate()

describe("CO_E_OBJISREG and CO_E_OBJNOTREG", function()
  it("have winerror.h's values as imalloc constants", function()
    assert.equal(0x800401FC, imalloc.CO_E_OBJISREG)
    assert.equal(0x800401FB, imalloc.CO_E_OBJNOTREG)
  end)

  it("are named by imalloc.hresult", function()
    assert.equal("CO_E_OBJISREG: object is already registered",
      imalloc.hresult(0x800401FC))
    assert.equal("CO_E_OBJNOTREG: object is not registered",
      imalloc.hresult(0x800401FB))
  end)

  it("are what a second start and a stop with no spy answer", function()
    assert.is_true(spy.start())
    assert.same({ nil, "CO_E_OBJISREG: object is already registered", 0x800401FC },
      { spy.start() })
    assert.is_true(spy.stop())
    assert.same({ nil, "CO_E_OBJNOTREG: object is not registered", 0x800401FB },
      { spy.stop() })
  end)
end)
