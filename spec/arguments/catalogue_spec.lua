-- A catalogue of bad inputs: every public function of the module, every
-- method and metamethod of handles and buffers, called with every kind of
-- wrong argument in every position (wrong types, no value, negative,
-- fractional, huge, NaN and infinite numbers, released handles and
-- buffers, NULL, freed, interior, foreign and buffer-owned pointers), each
-- checked for its exact error message, or for the failure it must return.
-- When every test has run, whatever their order (busted --shuffle), the
-- file prints how many cases were tried and fails if too few were; a test
-- fails when a public function has no entry here.
local helpers = require "helpers"
local imalloc, testkit = helpers.imalloc, helpers.testkit

local NONE = setmetatable({}, { __tostring = function() return "no value" end })
local NOMEM = { nil, "not enough memory", 0x8007000E }
local NOT_LIVE = "pointer is not a live block of this IMalloc"
local OWNED = "pointer is owned by a buffer (free or detach the buffer)"
local NOINT = "number has no integer representation"
local IID_MSG = 'IID expected as "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}"'
local BLOCK = 16  -- the size of the block and the buffer that valid arguments name

local tried, failures_checked = 0, 0

local counting = testkit.counting()  -- one for the whole file (a pool of 64)

--- The objects one case needs, made fresh and freed after it.
local function fixture()
  local fx = {}
  fx.m = assert(imalloc.get())
  fx.released = assert(imalloc.get())
  fx.released:release()
  fx.block = assert(fx.m:alloc(BLOCK))
  fx.buffer = assert(fx.m:buffer(BLOCK))
  fx.released_buffer = assert(fx.m:buffer(4))
  fx.released_buffer:free()
  fx.freed = assert(fx.m:alloc(BLOCK))
  fx.m:free(fx.freed)
  fx.interior = testkit.offset(fx.block, 8)
  fx.crt = testkit.crt_malloc(32)
  fx.other = imalloc.wrap(counting)
  return fx
end

local function cleanup(fx)
  local m = fx.m
  if m:didalloc(fx.block) == 1 then m:free(fx.block) end
  if imalloc.type(fx.buffer) == "buffer" then fx.buffer:free() end
  testkit.crt_free(fx.crt)
  for _, p in ipairs(fx.other_blocks or {}) do fx.other:free(p) end
end

-- Wrong values by what they are. Each is a function of the fixture, so that
-- pointers and objects are the case's own.
local V = {
  ["nil"] = function() return nil end,
  ["no value"] = function() return NONE end,
  boolean = function() return true end,
  ["false"] = function() return false end,
  string = function() return "x" end,
  ["numeric string"] = function() return "10" end,
  table = function() return {} end,
  ["function"] = function() return print end,
  thread = function() return coroutine.create(function() end) end,
  ["FILE*"] = function() return io.stdout end,
  ["light userdata"] = function() return testkit.static_pointer() end,
  handle = function(fx) return fx.m end,
  ["released handle"] = function(fx) return fx.released end,
  buffer = function(fx) return fx.buffer end,
  ["released buffer"] = function(fx) return fx.released_buffer end,
  integer = function() return 1 end,
  ["-1"] = function() return -1 end,
  mininteger = function() return helpers.mininteger end,
  maxinteger = function() return helpers.maxinteger end,
  ["1.5"] = function() return 1.5 end,
  ["-0.5"] = function() return -0.5 end,
  NaN = function() return 0 / 0 end,
  inf = function() return math.huge end,
  ["-inf"] = function() return -math.huge end,
  ["2^63"] = function() return 2.0 ^ 63 end,
  ["2^64"] = function() return 2.0 ^ 64 end,
  ["2^32"] = function() return helpers.pow2(32) end,
  ["2^62"] = function() return helpers.pow2(62) end,
  NULL = function() return testkit.null() end,
  ["freed block"] = function(fx) return fx.freed end,
  ["freed block's address"] = function(fx) return imalloc.address(fx.freed) end,
  ["interior pointer"] = function(fx) return fx.interior end,
  ["stack pointer"] = function() return testkit.stack_pointer() end,
  ["static pointer"] = function() return testkit.static_pointer() end,
  ["CRT malloc block"] = function(fx) return fx.crt end,
  ["small integer address"] = function() return 16 end,
  ["another allocator's block"] = function(fx)
    local p = assert(fx.other:alloc(8))
    fx.other_blocks = { p }
    return p
  end,
  ["buffer's block"] = function(fx) return fx.buffer:ptr() end,
  ["live block"] = function(fx) return fx.block end,
}

local function typename(kind)
  local names = {
    ["nil"] = "nil", ["no value"] = "no value", boolean = "boolean", ["false"] = "boolean",
    string = "string", ["numeric string"] = "string", table = "table",
    ["function"] = "function", thread = "thread", ["FILE*"] = helpers.typename(io.stdout),
    ["light userdata"] = "light userdata", handle = "IMalloc",
    ["released handle"] = "IMalloc", buffer = "IMalloc buffer",
    ["released buffer"] = "IMalloc buffer", integer = "number",
  }
  return assert(names[kind], kind)
end

-- Parameter classes: for each, the wrong values and what each must give:
-- an error message (the part in parentheses of "bad argument #n to 'f'
-- (...)", or a whole message prefixed with "="), or {returns = {...}}.
local function typed(expected, kinds, out)
  out = out or {}
  for _, k in ipairs(kinds) do
    out[#out + 1] = { k, ("%s expected, got %s"):format(expected, typename(k)) }
  end
  return out
end

local NOT_A_NUMBER = { "string", "table", "boolean", "function", "FILE*",
                       "light userdata", "handle", "buffer" }
local NOT_A_POINTER = { "string", "table", "boolean", "false", "function", "thread",
                        "FILE*", "handle", "buffer", "released handle", "no value" }
-- A number is not a string here: turning it into one would allocate
-- between a method's checks and its use (src/binding.h).
local NOT_A_STRING = { "nil", "no value", "integer", "table", "boolean", "function",
                       "light userdata", "handle", "buffer" }
local FRACTIONAL = { "1.5", "-0.5", "NaN", "inf", "-inf", "2^63", "2^64" }
local NOT_OURS = { "freed block", "freed block's address", "interior pointer",
                   "stack pointer", "static pointer", "CRT malloc block",
                   "small integer address", "another allocator's block" }

local function with(list, msg, out)
  for _, k in ipairs(list) do out[#out + 1] = { k, msg } end
  return out
end

local class = {}

class.size = with({ "-1", "mininteger" }, "size must not be negative",
  with(FRACTIONAL, NOINT,
  typed("number", { "nil", "no value", "numeric string", "thread", "released buffer",
                    helpers.unpack(NOT_A_NUMBER) })))
-- Sizes no heap can give return fail; on 32-bit x86 they are above
-- SIZE_T's maximum, which the binding refuses before the heap sees them.
for _, k in ipairs { "2^62", "maxinteger" } do
  class.size[#class.size + 1] = { k, helpers.too_large(V[k]()) and "size too large"
                                     or { returns = NOMEM } }
end

local function pointer_class()
  return with({ "-1", "mininteger" }, "address out of range",
    with({ "1.5", "NaN", "inf", "2^63" }, "address must be an integer",
    typed("pointer", NOT_A_POINTER)))
end
class.pointer = pointer_class()
class.block = with(NOT_OURS, NOT_LIVE, pointer_class())           -- getsize
class.freeable = with({ "buffer's block" }, OWNED, with(NOT_OURS, NOT_LIVE, pointer_class()))
class.readable = with({ "NULL", "nil" }, "NULL pointer", with(NOT_OURS, NOT_LIVE, pointer_class()))
class.adoptable = with({ "buffer's block" }, OWNED, with({ "NULL", "nil" }, "NULL pointer",
  with(NOT_OURS, NOT_LIVE, pointer_class())))

local function count_class(what, too_big)
  local c = with({ "-1", "mininteger" }, what .. " must not be negative",
    with(FRACTIONAL, NOINT, typed("number", NOT_A_NUMBER)))
  for _, k in ipairs { "maxinteger", "2^62" } do
    c[#c + 1] = { k, helpers.too_large(V[k]()) and "size too large" or too_big(k) }
  end
  return c
end
-- read(p, n, off) of a 16-byte block: off defaults to 0
class.length = count_class("length", function(k)
  return ("out of bounds: %d bytes at offset 0 of a %d-byte block"):format(V[k](), BLOCK)
end)
class.offset = count_class("offset", function(k)
  return ("out of bounds: 0 bytes at offset %d of a %d-byte block"):format(V[k](), BLOCK)
end)
class.nchars = count_class("length", function(k)
  return ("out of bounds: %d characters in a %d-byte block"):format(V[k](), BLOCK)
end)

class.string = typed("string", NOT_A_STRING)
class.utf8 = typed("string", NOT_A_STRING)
for _, c in ipairs {
  { "\255", 1 }, { "a\192\128", 2 }, { "ab\237\160\128", 3 }, { "\244\144\128\128", 1 },
  { "abc\226\130", 4 }, { "\128", 1 }, { "x\248\136\128\128\128", 2 },
} do
  local kind = ("invalid UTF-8 %q"):format(c[1])
  V[kind] = function() return c[1] end
  class.utf8[#class.utf8 + 1] = { kind, ("invalid UTF-8 at byte %d"):format(c[2]) }
end
class.iid = typed("string", NOT_A_STRING)
for _, s in ipairs {
  "", "IMalloc", "00000002-0000-0000-C000-000000000046",
  "{00000002-0000-0000-C000-000000000046", "{00000002-0000-0000-C000-00000000004G}",
  "{00000002+0000-0000-C000-000000000046}", "{00000002-0000-0000-C0000-00000000046}",
  "{00000002-0000-0000-C000-000000000046}x", "{00000002-0000-0000-C000-000000000046\0}",
} do
  local kind = ("IID %q"):format(s)
  V[kind] = function() return s end
  class.iid[#class.iid + 1] = { kind, IID_MSG }
end

class.context = with({ "-1", "mininteger", "maxinteger", "2^32" },
  "context out of range (0 to 0xFFFFFFFF)",
  with(FRACTIONAL, NOINT, typed("number", { "numeric string", helpers.unpack(NOT_A_NUMBER) })))
class.hresult = with({ "-1", "mininteger", "maxinteger", "2^32" },
  "HRESULT out of range (0 to 0xFFFFFFFF)",
  with(FRACTIONAL, NOINT, typed("number", { "nil", "no value", "numeric string",
                                        helpers.unpack(NOT_A_NUMBER) })))
class.interface = with({ "NULL" }, "NULL interface pointer",
  with({ "live block", "buffer's block" }, "pointer is a memory block, not an interface",
  typed("light userdata", { "nil", "no value", "integer", "string", "table", "FILE*",
                            "handle", "buffer" })))
-- wrap's mode: nil or "ffi"; a number is not taken for its text
class.wrapmode = with({ "string" }, "invalid option 'x'",
  with({ "numeric string" }, "invalid option '10'",
  typed("string", { "integer", "table", "boolean", "false", "function", "thread",
                    "FILE*", "light userdata", "handle", "buffer" })))
class.any = { { "no value", "value expected" } }
class.boolean = typed("boolean", { "nil", "no value", "integer", "string", "table",
                                   "FILE*", "light userdata", "handle" })

-- What `self` may not be, for a handle and for a buffer.
local NOT_SELF = { "nil", "no value", "integer", "string", "table", "FILE*", "light userdata" }
local self_class = {
  handle = with({ "released handle" }, "=attempt to use a released IMalloc",
    typed("IMalloc", { "buffer", helpers.unpack(NOT_SELF) })),
  buffer = with({ "released buffer" }, "=attempt to use a released buffer",
    typed("IMalloc buffer", { "handle", helpers.unpack(NOT_SELF) })),
}
-- Metamethods that take a released object as it is.
local self_released_ok = {
  handle = typed("IMalloc", { "buffer", helpers.unpack(NOT_SELF) }),
  buffer = typed("IMalloc buffer", { "handle", helpers.unpack(NOT_SELF) }),
}

-- Every public function: its owner, its name, valid arguments (functions
-- of the fixture) and the class of each parameter.
local function live(fx) return fx.block end
local function n(k) return function() return k end end
local functions = {
  { "module", "get", { n(1) }, { "context" } },
  { "module", "wrap", { function(fx) return fx.m:pointer() end, n(nil) },
    { "interface", "wrapmode" } },
  { "module", "type", { n(1) }, { "any" } },
  { "module", "address", { n(nil) }, { "pointer" } },
  { "module", "hresult", { n(0) }, { "hresult" } },
  { "handle", "alloc", { n(8) }, { "size" } },
  { "handle", "realloc", { live, n(8) }, { "freeable", "size" } },
  { "handle", "free", { live }, { "freeable" } },
  { "handle", "getsize", { live }, { "block" } },
  { "handle", "didalloc", { live }, { "pointer" } },
  { "handle", "heapminimize", {}, {} },
  { "handle", "queryinterface", { n(imalloc.IID_IMalloc) }, { "iid" } },
  { "handle", "addref", {}, {} },
  { "handle", "release", {}, {} },
  { "handle", "pointer", {}, {} },
  { "handle", "setchecks", { n(true) }, { "boolean" } },
  { "handle", "read", { live, n(4), n(0) }, { "readable", "length", "offset" } },
  { "handle", "write", { live, n("ab"), n(0) }, { "readable", "string", "offset" } },
  { "handle", "string", { live }, { "readable" } },
  { "handle", "strdup", { n("s") }, { "string" } },
  { "handle", "wstrdup", { n("s") }, { "utf8" } },
  { "handle", "wstring", { live, n(nil) }, { "readable", "nchars" } },
  { "handle", "buffer", { n(8) }, { "size" } },
  { "handle", "bufferof", { n("bytes") }, { "string" } },
  { "handle", "adopt", { live }, { "adoptable" } },
  { "buffer", "read", { n(4), n(0) }, { "length", "offset" } },
  { "buffer", "write", { n("ab"), n(0) }, { "string", "offset" } },
  { "buffer", "resize", { n(8) }, { "size" } },
  { "buffer", "string", {}, {} },
  { "buffer", "wstring", { n(nil) }, { "nchars" } },
  { "buffer", "ptr", {}, {} },
  { "buffer", "detach", {}, {} },
  { "buffer", "free", {}, {} },
  { "handle-meta", "__tostring", {}, {} },
  { "handle-meta", "__eq", { function(fx) return fx.m end }, {} },
  { "handle-meta", "__gc", {}, {} },
  { "buffer-meta", "__len", {}, {} },
  { "buffer-meta", "__tostring", {}, {} },
  { "buffer-meta", "__gc", {}, {} },
}
if helpers.lua == "5.4" then  -- __close exists where to-be-closed variables do
  table.insert(functions, { "handle-meta", "__close", {}, {} })
  table.insert(functions, { "buffer-meta", "__close", {}, {} })
end

-- Exceptions to the classes, where a function reports a wrong argument
-- elsewhere than at the argument itself.
local quirks = {}
-- write checks its range on the string it writes: an offset past the end
-- names the string argument (unless the offset is above SIZE_T's maximum,
-- refused at the offset itself)
for _, k in ipairs { "maxinteger", "2^62" } do
  if not helpers.too_large(V[k]()) then
    local msg = ("out of bounds: 2 bytes at offset %d of a %d-byte block"):format(V[k](), BLOCK)
    quirks["handle write 3 " .. k] = { 2, msg }
    quirks["buffer write 2 " .. k] = { 1, msg }
  end
end

--- Calls `owner name` the way a script does: module functions by field,
-- methods with method syntax (arguments counted without self), or with
-- field syntax when self is the wrong argument, metamethods from the
-- metatable. The first parameter is the table or object it goes through.
local callers = {}
local function caller(owner, name, as_field)
  local key = owner .. " " .. name .. " " .. tostring(as_field)
  if not callers[key] then
    if owner == "module" then
      callers[key] = assert(helpers.load(("local imalloc, pass = ... return function(_, ...) return pass(imalloc.%s(...)) end")
        :format(name)))(imalloc, helpers.pass)
    elseif owner:match("meta$") then
      callers[key] = assert(helpers.load(("local pass = ... return function(mt, ...) return pass(mt.%s(...)) end")
        :format(name)))(helpers.pass)
    elseif as_field then
      callers[key] = helpers.field(name)
    else
      callers[key] = helpers.method(name)
    end
  end
  return callers[key]
end

--- One case: `self` (nil: a valid one) and `values` (functions of the
-- fixture) as arguments; `expected` a whole message or {returns = {...}}.
local function run_case(owner, name, self, values, expected, what)
  local fx = fixture()
  local kind = owner:match("^(%a+)")
  local object = kind == "buffer" and fx.buffer or fx.m
  local args, total = {}, 0
  local f, target
  if owner == "module" then
    f = caller(owner, name)
  elseif owner:match("meta$") then
    f, target = caller(owner, name), debug.getmetatable(object)
    total = 1
    if self then args[1] = self(fx) else args[1] = object end
  elseif self then
    f, target = caller(owner, name, true), object
    total = 1
    args[1] = self(fx)
  else
    f, target = caller(owner, name, false), object
  end
  for i = 1, #values do args[total + i] = values[i](fx) end
  total = total + #values
  local count = total  -- arguments up to the first NONE
  for i = 1, total do
    if args[i] == NONE then count = i - 1 break end
  end
  local results = helpers.pack(pcall(f, target, helpers.unpack(args, 1, count)))
  cleanup(fx)
  tried = tried + 1
  if type(expected) == "table" then
    assert.is_true(results[1], what .. ": " .. tostring(results[2]))
    assert.same(expected.returns, { helpers.unpack(results, 2, results.n) }, what)
    failures_checked = failures_checked + 1
  else
    assert.is_false(results[1], what .. ": no error")
    local msg = tostring(results[2]):gsub("^.-:%d+: ", "", 1)
    assert.equal(expected, msg, what)
  end
end

local function bad(i, fname, msg)
  if msg:sub(1, 1) == "=" then return msg:sub(2) end
  return ("bad argument #%d to '%s' (%s)"):format(i, fname, msg)
end

for _, entry in ipairs(functions) do
  local owner, name, valid, params = helpers.unpack(entry)
  local title = (owner == "module" and "imalloc." or owner:match("^(%a+)") .. ":") .. name
  describe(title, function()
    it("raises for every wrong argument, with its message", function()
      -- self
      if owner ~= "module" then
        local kind = owner:match("^(%a+)")
        local wrong = self_class[kind]
        if owner:match("meta$") and name ~= "__len" then wrong = self_released_ok[kind] end
        for _, c in ipairs(wrong) do
          local values = {}
          for i, v in ipairs(valid) do values[i] = v end
          local expected = bad(1, name, c[2])
          -- == is false, never an error, whatever the other operand is
          if name == "__eq" then expected = { returns = { false } } end
          -- a finalizer leaves alone what is not its kind: an error in it
          -- would surface in whatever code the collector interrupted
          if name == "__gc" or name == "__close" then expected = { returns = {} } end
          run_case(owner, name, V[c[1]], values, expected,
            ("%s with self %s"):format(title, c[1]))
        end
      end
      -- each parameter in turn
      for i, pclass in ipairs(params) do
        for _, c in ipairs(assert(class[pclass], pclass)) do
          local values = {}
          for j, v in ipairs(valid) do values[j] = v end
          values[i] = V[c[1]]
          local expected = c[2]
          local q = quirks[("%s %s %d %s"):format(owner, name, i, c[1])]
          local argn = i
          if q then argn, expected = q[1], q[2] end
          if type(expected) == "string" then expected = bad(argn, name, expected) end
          run_case(owner, name, nil, values, expected,
            ("%s argument #%d %s"):format(title, i, c[1]))
        end
      end
    end)
  end)
end

-- A freed block is the pointer a script most easily still holds: wrap must
-- refuse it as it refuses a live one, before calling through it. Run in a
-- child interpreter, since the call may crash the process.
describe("imalloc.wrap of a freed block", function()
  it("raises instead of calling through it", function()
    local lowest = 0
    while arg and arg[lowest - 1] do lowest = lowest - 1 end
    local dir = os.getenv("TEMP") or os.getenv("TMPDIR") or "/tmp"
    -- the runtime in the name: the same spec may run under another at once,
    -- with the same seed for math.random
    local script = ("%s%simalloc-10-%s-%d.lua"):format(dir, package.config:sub(1, 1), helpers.lua,
      math.random(helpers.pow2(30)))
    local f = assert(io.open(script, "w"))
    f:write(("package.path = %q\npackage.cpath = %q\n"):format(package.path, package.cpath), [[
      local imalloc = require "imalloc"
      local m = imalloc.get()
      for _, n in ipairs { 8, 64, 1000, 100000 } do
        local p = m:alloc(n)
        m:free(p)
        local ok, err = pcall(function() local h = imalloc.wrap(p) return h end)
        print(n, ok, (tostring(err):gsub("^.-:%d+: ", "")))
      end
    ]])
    f:close()
    local command = ('"%s" "%s" 2>&1'):format(arg[lowest], script)
    if helpers.windows then command = '"' .. command .. '"' end
    local pipe = assert(io.popen(command))
    local out = pipe:read("*a")
    pipe:close()
    os.remove(script)
    local msg = "bad argument #1 to 'wrap' (pointer is not a COM interface (no vtable into loaded code))"
    local want = {}
    for _, n in ipairs { 8, 64, 1000, 100000 } do want[#want + 1] = ("%d\tfalse\t%s\n"):format(n, msg) end
    assert.equal(table.concat(want), out)
  end)
end)

describe("the catalogue", function()
  it("has an entry for every public function", function()
    local listed = {}
    for _, e in ipairs(functions) do listed[e[1] .. " " .. e[2]] = true end
    local m = imalloc.get()
    local b = m:buffer(1)
    local missing = {}
    local function check(owner, t)
      for k, v in pairs(t) do
        if type(v) == "function" and not listed[owner .. " " .. k] then
          missing[#missing + 1] = owner .. " " .. k
        end
      end
    end
    check("module", require "imalloc.core")
    check("handle", debug.getmetatable(m).__index)
    check("handle-meta", debug.getmetatable(m))
    check("buffer", debug.getmetatable(b).__index)
    check("buffer-meta", debug.getmetatable(b))
    table.sort(missing)
    assert.same({}, missing)
  end)

end)

-- After every describe of the file, in any order.
teardown(function()
  print(("\ncatalogue: %d cases tried (%d errors compared whole, %d failures returned), 0 unexpected")
    :format(tried, tried - failures_checked, failures_checked))
  assert.is_true(tried >= 700, "cases: " .. tried)
end)
