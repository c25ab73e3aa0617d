-- conformance.lua: answers each row of the reference behaviour
-- (docs/reference.md) through the binding, on whatever backend
-- runs it, and prints one line per row: call, expected, measured (tab-separated).
-- .ci/conformance runs it on Linux and under Wine and writes the README's table.
local imalloc = require "imalloc"
local testkit = require "imalloc_testkit"

local m = assert(imalloc.get())
local windows = testkit.platform == "windows"
local rows = {}

local function row(call, expected, measure)
  local ok, result = pcall(measure)
  rows[#rows + 1] = { call, expected, ok and result or ("error: " .. tostring(result)) }
end

-- SIZE_T's maximum: 32-bit x86 has a 32-bit SIZE_T under Lua 5.4's 64-bit
-- integers, and the binding raises for a size above it.
local size64 = testkit.size_t_size == 8
local SIZE_MAX = size64 and math.maxinteger or (1 << (8 * testkit.size_t_size)) - 1

local function hr(code) return ("0x%08X"):format(code) end
local function yesno(b, yes, no) if b then return yes else return no end end

row("CoGetMalloc(1, &p)", "S_OK, the same pointer every call", function()
  local a, b = imalloc.get(), imalloc.get()
  return yesno(a and b and a:pointer() == b:pointer(), "S_OK, same pointer", "different pointers")
end)

row("CoGetMalloc(ctx != 1, &p)", "E_INVALIDARG", function()
  local out = {}
  for _, ctx in ipairs { 0, 2 } do
    local h, _, code = imalloc.get(ctx)
    out[#out + 1] = h and "S_OK" or hr(code)
  end
  return table.concat(out, " / ") .. " for 0 / 2"
end)

row("CoGetMalloc(1, NULL)", "undefined: never passed", function()
  return "never passed by the binding"
end)

row("AddRef / Release", "undocumented (Wine: 2 and 1)", function()
  local a1, a2 = m:addref(), m:addref()
  local r1 = m:release()
  local r2 = m:release()
  return ("%d, %d, then %d, %d"):format(a1, a2, r1, r2)
end)

row("QueryInterface(IUnknown, IMalloc)", "S_OK, same pointer", function()
  local out = {}
  for _, iid in ipairs { imalloc.IID_IUnknown, imalloc.IID_IMalloc } do
    local q, _, code = m:queryinterface(iid)
    out[#out + 1] = q and yesno(q:pointer() == m:pointer(), "S_OK same pointer", "S_OK other pointer") or hr(code)
    if q then q:release() end
  end
  return table.concat(out, ", ")
end)

row("QueryInterface(other IID)", "E_NOINTERFACE", function()
  local q, _, code = m:queryinterface(imalloc.IID_IMallocSpy)
  return q and "S_OK" or hr(code)
end)

row("Alloc(0)", "a valid, unique pointer", function()
  local a, b = m:alloc(0), m:alloc(0)
  local r = ("%s, unique %s, GetSize %d, DidAlloc %d"):format(a and "non-NULL" or "NULL",
    tostring(a ~= b), m:getsize(a), m:didalloc(a))
  m:free(a); m:free(b)
  return r
end)

row("Alloc(n) too large", "NULL", function()
  local out = {}
  local sizes = size64 and { { 1 << 46, "2^46" }, { math.maxinteger, "2^63-1" } }
    or { { SIZE_MAX - 4095, "2^32-4096" }, { SIZE_MAX, "2^32-1" } }
  for _, n in ipairs(sizes) do
    local p = m:alloc(n[1])
    out[#out + 1] = (p and "non-NULL" or "NULL") .. " for " .. n[2]
    if p then m:free(p) end
  end
  return table.concat(out, ", ")
end)

row("alignment", "16 bytes on x86-64", function()
  local worst, blocks = 16, {}
  for n = 0, 2000, 3 do
    local p = m:alloc(n)
    blocks[#blocks + 1] = p
    local a = imalloc.address(p)
    while a % worst ~= 0 do worst = worst // 2 end
  end
  for _, p in ipairs(blocks) do m:free(p) end
  return ("%d-aligned (%d blocks of 0..2000 bytes)"):format(worst, #blocks)
end)

row("Realloc(NULL, n)", "as Alloc(n)", function()
  local p = m:realloc(nil, 40)
  local r = ("%s, GetSize %d"):format(p and "non-NULL" or "NULL", m:getsize(p))
  m:free(p)
  return r
end)

row("Realloc(p, 0)", "frees p, returns NULL", function()
  local p = m:alloc(40)
  local q = m:realloc(p, 0)
  return ("%s, DidAlloc(p) then %d"):format(q and "non-NULL" or "NULL", m:didalloc(p))
end)

row("Realloc(p, n) fails", "NULL, p kept with its bytes", function()
  local p = m:alloc(100)
  m:write(p, "kept")
  local q = m:realloc(p, size64 and 1 << 62 or SIZE_MAX)
  local r = ("%s, DidAlloc(p) %d, bytes %s"):format(q and "non-NULL" or "NULL",
    m:didalloc(p), m:read(p, 4) == "kept" and "kept" or "lost")
  m:free(q or p)
  return r
end)

row("Realloc(p, smaller)", "may return p; GetSize the new size", function()
  local p = m:alloc(100)
  local q = m:realloc(p, 50)
  local r = ("%s, GetSize %d after 100"):format(q == p and "same pointer" or "moved", m:getsize(q))
  m:free(q)
  return r
end)

row("Free(NULL)", "nothing", function()
  m:free(nil)
  return "no-op"
end)

row("GetSize(NULL)", "(SIZE_T)-1", function() return tostring(m:getsize(nil)) end)

row("GetSize(p)", "the size requested", function()
  local sizes = { 1, 13, 100, 4097, 70000 }
  for _, n in ipairs(sizes) do
    local p = m:alloc(n)
    local got = m:getsize(p)
    m:free(p)
    if got ~= n then return ("%d for %d"):format(got, n) end
  end
  return "requested size (1, 13, 100, 4097, 70000)"
end)

row("DidAlloc(NULL)", "-1", function() return tostring(m:didalloc(nil)) end)

row("DidAlloc(own live block)", "1", function()
  local p = m:alloc(8)
  local r = m:didalloc(p)
  m:free(p)
  return tostring(r)
end)

row("DidAlloc(freed block)", "0", function()
  local p = m:alloc(8)
  m:free(p)
  return tostring(m:didalloc(p))
end)

row("DidAlloc(p + 8)", "0", function()
  local p = m:alloc(64)
  local r = m:didalloc(testkit.offset(p, 8))
  m:free(p)
  return tostring(r)
end)

row("DidAlloc(stack, static, CRT malloc)", "0", function()
  local c = testkit.crt_malloc(32)
  local r = ("%d, %d, %d"):format(m:didalloc(testkit.stack_pointer()),
    m:didalloc(testkit.static_pointer()), m:didalloc(c))
  testkit.crt_free(c)
  return r
end)

row("DidAlloc(HeapAlloc, process heap)", "1 on Windows", function()
  if not windows then return "n/a: no process heap" end
  local h = testkit.heap_alloc(32)
  local r = m:didalloc(h)
  testkit.heap_free(h)
  return tostring(r)
end)

row("HeapMinimize()", "may do nothing", function()
  local p = m:alloc(16)
  m:write(p, "intact")
  m:heapminimize()
  local r = m:read(p, 6) == "intact" and "returns; live blocks intact" or "live block changed"
  m:free(p)
  return r
end)

row("CoTaskMemAlloc/Realloc/Free", "the same allocator", function()
  testkit.cotaskmem_open(package.searchpath("imalloc.core", package.cpath))
  local p = testkit.cotaskmem_alloc(24)
  local r = ("DidAlloc %d, GetSize %d"):format(m:didalloc(p), m:getsize(p))
  p = testkit.cotaskmem_realloc(p, 48)
  r = r .. (", after Realloc %d"):format(m:getsize(p))
  m:free(p)  -- freed through IMalloc: blocks mix freely
  local q = m:alloc(8)
  testkit.cotaskmem_free(q)
  return r .. (", mixed frees ok (DidAlloc %d)"):format(m:didalloc(q))
end)

row("threads", "thread-safe, no CoInitialize", function()
  local threads, rounds = 4, 20000
  local errors = testkit.threads(m:pointer(), threads, rounds)
  return ("%d threads x %d calls, none initialising COM: %d errors"):format(threads, rounds, errors)
end)

for _, r in ipairs(rows) do print(table.concat(r, "\t")) end
