-- Run by selftest/fake-ole32.sh with a fake ole32.dll (fake-ole32.c):
-- "noprocs", an ole32 without CoGetMalloc or the spy's functions: every
-- call that needs one answers nil, message, ERROR_PROC_NOT_FOUND as an
-- HRESULT; "nullmalloc", whose CoGetMalloc succeeds with no object:
-- get and spy.start (which needs the task allocator first) answer
-- E_POINTER. Never a crash.
local imalloc = require "imalloc"
local variant = assert(arg[1], "usage: fake-ole32.lua noprocs|nullmalloc")
local codes = {
  noprocs = { get = 0x8007007F, spy = 0x8007007F },
  nullmalloc = { get = 0x80004003, spy = 0x80004003 },
}
local want = assert(codes[variant], "unknown variant " .. variant)
for _, call in ipairs { "get", "get again" } do
  local m, msg, code = imalloc.get()
  assert(m == nil, call .. ": returned a handle")
  assert(type(msg) == "string" and msg ~= "", call .. ": no message")
  assert(code == want.get, call .. ": code " .. tostring(code))
end
local ok, msg, code = imalloc.spy.start()
assert(ok == nil and code == want.spy, "spy.start: " .. tostring(msg))
print(("fake ole32 (%s): get answers 0x%08X, spy.start 0x%08X")
      :format(variant, want.get, want.spy))
