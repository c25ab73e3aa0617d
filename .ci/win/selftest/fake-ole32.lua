-- Run by selftest/fake-ole32.sh with a fake ole32.dll (fake-ole32.c), or
-- none, beside lua.exe. Never a crash. Variants (arg[1]):
-- "noprocs", an ole32 without CoGetMalloc or the spy's functions: every
--   call that needs one answers nil, message, ERROR_PROC_NOT_FOUND as an
--   HRESULT;
-- "nullmalloc", whose CoGetMalloc succeeds with no object: get and
--   spy.start (which needs the task allocator first) answer E_POINTER;
-- "spyfails", a working IMalloc whose CoRegisterMallocSpy fails with
--   E_OUTOFMEMORY: spy.start answers it; the allocator works, was probed
--   once (one Alloc) and every reference taken is given back (the counts
--   file, arg[2]);
-- "nospy", the same IMalloc and no spy functions: spy.start answers
--   E_NOTIMPL;
-- "lateload", no ole32.dll at first: get answers ERROR_MOD_NOT_FOUND; the
--   load is tried once per process, so after the script copies a working
--   fake (arg[2]) beside lua.exe (arg[3]), get still answers it and the
--   fake is never loaded (it writes no counts file, arg[4]).
local imalloc = require "imalloc"
local variant = assert(arg[1], "usage: fake-ole32.lua VARIANT [args]")
local codes = {
  noprocs = { get = 0x8007007F, spy = 0x8007007F },
  nullmalloc = { get = 0x80004003, spy = 0x80004003 },
  lateload = { get = 0x8007007E, spy = 0x8007007E },
  spyfails = { spy = 0x8007000E },
  nospy = { spy = 0x80004001 },
}
local want = assert(codes[variant], "unknown variant " .. variant)

local function refused(call)
  local m, msg, code = imalloc.get()
  assert(m == nil, call .. ": returned a handle")
  assert(type(msg) == "string" and msg ~= "", call .. ": no message")
  assert(code == want.get, call .. ": code " .. tostring(code))
end

--- The fake's counts: { refs =, allocs =, getmallocs = }.
local function counts()
  local f = assert(io.open(assert(arg[2], "no counts file"), "rb"))
  local text = f:read("a")
  f:close()
  local c = {}
  for k, v in text:gmatch("(%a+) (%-?%d+)") do c[k] = tonumber(v) end
  return c
end

if want.get then
  refused("get")
  refused("get again")
  if variant == "lateload" then
    local src = assert(io.open(arg[2], "rb"))
    local bytes = src:read("a")
    src:close()
    local dst = assert(io.open(arg[3] .. "\\ole32.dll", "wb"))
    dst:write(bytes)
    dst:close()
    refused("get after ole32.dll appeared")
    -- nor was it loaded behind that answer: its CoGetMalloc, which the
    -- load calls at once (freed.c's probe), would have written its counts
    assert(io.open(arg[4], "rb") == nil, "ole32.dll loaded after a failed load")
  end
else
  local m = assert(imalloc.get())
  local c = counts()
  -- the probe of freed.c: one Alloc, once per process
  assert(c.allocs == 1, "allocs after get: " .. c.allocs)
  assert(c.refs >= 1, "refs held by a live handle: " .. c.refs)
  local b = assert(m:alloc(100))
  assert(m:getsize(b) == 100)
  m:free(b)
  assert(counts().allocs == 2, "allocs after alloc: " .. counts().allocs)
  m:release()
  m = nil
  collectgarbage()
  collectgarbage()
  c = counts()
  assert(c.refs == 0, "references not given back: " .. c.refs)
  assert(imalloc.get():release())
  assert(counts().allocs == 2, "probed again: allocs " .. counts().allocs)
end
local ok, msg, code = imalloc.spy.start()
assert(ok == nil and code == want.spy,
       "spy.start: " .. tostring(msg) .. " " .. tostring(code))
if not want.get then
  assert(counts().refs == 0, "references not given back after spy.start: "
         .. counts().refs)
end
print(("fake ole32 (%s): get answers %s, spy.start 0x%08X")
      :format(variant, want.get and ("0x%08X"):format(want.get) or "a handle",
              want.spy))
