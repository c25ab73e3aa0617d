-- Run by the test wine-without-ole32, with Wine told not to load ole32.dll
-- (WINEDLLOVERRIDES=ole32=d): the module still loads (it links no ole32),
-- and every call that needs ole32 answers nil, message, code with the
-- loader's error, ERROR_MOD_NOT_FOUND as an HRESULT, never a crash.
local imalloc = require "imalloc"
local want = 0x8007007E  -- HRESULT_FROM_WIN32(ERROR_MOD_NOT_FOUND)
for _, call in ipairs { "get", "get again" } do
  local m, msg, code = imalloc.get()
  assert(m == nil, call .. ": returned a handle without ole32")
  assert(type(msg) == "string" and msg:find("8007007E", 1, true),
         call .. ": message " .. tostring(msg))
  assert(code == want, call .. ": code " .. tostring(code))
end
local ok, msg, code = imalloc.spy.start()
assert(ok == nil and code == want, "spy.start: " .. tostring(msg))
print("without ole32: get and spy.start answer 0x8007007E")
