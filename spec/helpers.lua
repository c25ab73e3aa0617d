-- What the specs share: the module, the native test kit, the platform, and
-- what lets one spec run on Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT alike.
--
-- The specs in spec/ are written in the syntax all of them read: no
-- `<close>`, no `//`, no bitwise operators, no `goto`, no integer literal
-- beyond 2^53. What only Lua 5.4 has (to-be-closed variables, the integer
-- subtype) is specified in spec/runtime/5.4/, which runs there only.
local helpers = {}

helpers.imalloc = require "imalloc"
helpers.testkit = require "imalloc_testkit"

--- True under Windows (Wine's or Microsoft's ole32), false on the built-in
-- POSIX allocator. Specs that differ say why where they branch on it.
helpers.windows = helpers.testkit.platform == "windows"

--- The runtime: "5.1", "5.2", "5.3", "5.4" or "luajit".
helpers.lua = jit and "luajit" or _VERSION:match("%d+%.%d+")

--- Whether numbers have an integer subtype (5.3, 5.4). Without it, an
-- integer is a float with an integer value, exact up to 2^53.
helpers.integers = math.type ~= nil

--- The widths of lua_Integer, SIZE_T and a pointer in bits, as the module
-- was compiled: 64, or 32 for SIZE_T and pointers on 32-bit x86 (and for
-- lua_Integer too on 5.1, 5.2 and LuaJIT, where it is ptrdiff_t). A size
-- above SIZE_T's maximum raises "size too large" instead of returning
-- fail; an address above a pointer's raises "address out of range".
helpers.integer_bits = 8 * helpers.testkit.integer_size
helpers.size_bits = 8 * helpers.testkit.size_t_size
helpers.pointer_bits = 8 * helpers.testkit.pointer_size

--- The largest and smallest integers a size or an address can be: on the
-- runtimes without integers, the floats nearest 2^63 within lua_Integer.
helpers.maxinteger = math.maxinteger
  or (helpers.integer_bits == 64 and 2 ^ 63 - 1024 or 2 ^ 31 - 1)
helpers.mininteger = math.mininteger or -2 ^ (helpers.integer_bits - 1)

--- 2^k (k < 63), an integer where the runtime has integers, so that the
-- specs pass 5.4 the integer a script would write as `1 << k`.
function helpers.pow2(k)
  local x = 2 ^ k
  return math.tointeger and math.tointeger(x) or x
end

--- a // b for non-negative operands.
function helpers.idiv(a, b)
  return math.floor(a / b)
end

--- The largest size an argument can give: SIZE_T's maximum (2^32 - 1) on
-- 32-bit x86 under a 64-bit lua_Integer, else lua_Integer's maximum.
helpers.sizemax = helpers.size_bits < helpers.integer_bits
  and helpers.pow2(helpers.size_bits) - 1 or helpers.maxinteger

--- Whether `n` (an integer within lua_Integer) is above SIZE_T's maximum:
-- the binding then raises "size too large" rather than asking the heap.
function helpers.too_large(n)
  return n > helpers.sizemax
end

--- A size that no heap here can give, so that asking for it returns fail:
-- 2^62 on 64-bit, SIZE_T's maximum on 32-bit (more would raise instead).
helpers.hugesize = helpers.size_bits == 64 and helpers.pow2(62) or helpers.sizemax

--- The alignment of every block the allocators here return: 16 bytes on
-- 64-bit (x86-64 heaps, glibc, the built-in allocator), 8 on 32-bit x86
-- Windows, whose heap aligns for any type of that ABI and no more.
helpers.block_alignment = helpers.pointer_bits < 64 and 8 or 16

helpers.unpack = table.unpack or unpack

function helpers.pack(...)
  return { n = select("#", ...), ... }
end

--- load of a string, which Lua 5.1's load does not take.
function helpers.load(chunk)
  return (loadstring or load)(chunk)
end

--- How an argument error names a value's type: a handle or buffer by its
-- kind, anything else by its metatable's __name (Lua 5.3 gives io files
-- one, "FILE*"; 5.1 and 5.2 do not).
function helpers.typename(v)
  local kind = helpers.imalloc.type(v)
  if kind == "IMalloc" or kind == "released IMalloc" then return "IMalloc" end
  if kind == "buffer" or kind == "released buffer" then return "IMalloc buffer" end
  local mt = debug.getmetatable(v)
  return type(mt) == "table" and type(mt.__name) == "string" and mt.__name or type(v)
end
-- Kept out of LuaJIT's compiler: Debian 12's LuaJIT 2.1 crashes recording
-- `getmetatable(io.stdout).__name` in a trace once a userdata with __eq has
-- been compared with io.stdout (docs/luajit-recorder-crash.lua: no imalloc in
-- it), which the specs do before the catalogue asks for this name in a loop.
if jit then jit.off(helpers.typename) end

--- UTF-8 of code points, as utf8.char (which 5.1 and 5.2 lack).
function helpers.utf8char(...)
  local out = {}
  for i = 1, select("#", ...) do
    local c = select(i, ...)
    if c < 0x80 then
      out[i] = string.char(c)
    elseif c < 0x800 then
      out[i] = string.char(0xC0 + math.floor(c / 0x40), 0x80 + c % 0x40)
    elseif c < 0x10000 then
      out[i] = string.char(0xE0 + math.floor(c / 0x1000),
                           0x80 + math.floor(c / 0x40) % 0x40, 0x80 + c % 0x40)
    else
      out[i] = string.char(0xF0 + math.floor(c / 0x40000),
                           0x80 + math.floor(c / 0x1000) % 0x40,
                           0x80 + math.floor(c / 0x40) % 0x40, 0x80 + c % 0x40)
    end
  end
  return table.concat(out)
end

--- The code points of a valid UTF-8 string, in order.
function helpers.utf8codes(s)
  local cps, i = {}, 1
  while i <= #s do
    local b = s:byte(i)
    local n = b < 0x80 and 1 or b < 0xE0 and 2 or b < 0xF0 and 3 or 4
    local c = n == 1 and b or b % (2 ^ (7 - n))
    for j = i + 1, i + n - 1 do c = c * 0x40 + s:byte(j) % 0x40 end
    cps[#cps + 1] = c
    i = i + n
  end
  return cps
end

--- One UTF-16 unit, little-endian: string.pack("<I2", u).
function helpers.u16le(u)
  return string.char(u % 256, math.floor(u / 256))
end

--- A counting IMalloc and a function that checks its balance: `refs`
-- references held besides the spec's own, `blocks` blocks not yet freed.
function helpers.counted()
  local assert = require "luassert"
  local p = helpers.testkit.counting()
  local function expect(refs, blocks, what)
    local c = helpers.testkit.counts(p)
    assert.same({ refs = 1 + refs, blocks = blocks },
      { refs = c.refs, blocks = c.allocs - c.frees }, what)
    assert.equal(c.addrefs - refs, c.releases, what)
  end
  return p, expect
end

--- Runs full collection cycles until memory stops shrinking. Two at a
-- time: the memory of an object whose finalizer one cycle ran is freed by
-- the next, and one cycle that ran finalizers (which may allocate) and freed
-- nothing else does not mean that nothing is left to free.
function helpers.collect()
  local before
  repeat
    before = collectgarbage("count")
    collectgarbage("collect")
    collectgarbage("collect")
  until collectgarbage("count") >= before
end

--- Runs the Lua text file at `path` with globals `env`.
function helpers.dofile(path, env)
  local chunk = assert(loadfile(path, "t", env))
  if setfenv then setfenv(chunk, env) end  -- 5.1's loadfile takes no env
  return chunk()
end

--- Runs an example script with print captured; returns the printed lines
-- (a print of several lines gives several entries).
function helpers.run_example(path)
  local lines = {}
  local env = setmetatable({
    print = function(...)
      local t = helpers.pack(...)
      for i = 1, t.n do t[i] = tostring(t[i]) end
      for line in table.concat(t, "\t"):gmatch("[^\n]+") do
        lines[#lines + 1] = line
      end
    end,
  }, { __index = _G })
  helpers.dofile(path, env)
  return lines
end

--- Runs the Lua text `code` in a new process of this interpreter, with this
-- package.path and package.cpath (so with the same module); returns what it
-- printed, stdout and stderr. For what only a fresh process shows, such as
-- the spy before any start, whatever the tests before did.
function helpers.run_fresh(code)
  local lowest = 0
  while arg and arg[lowest - 1] do lowest = lowest - 1 end
  local dir = os.getenv("TEMP") or os.getenv("TMPDIR") or "/tmp"
  -- a name no other run uses at once (the same spec may run under other
  -- runtimes and variants in parallel, with the same math.random seed)
  local script = ("%s%simalloc-fresh-%s-%s-%d.lua"):format(dir, package.config:sub(1, 1),
    helpers.lua, tostring({}):match("(%x+)$"), os.time())
  local f = assert(io.open(script, "w"))
  f:write(("package.path = %q package.cpath = %q "):format(package.path, package.cpath), code)
  f:close()
  local command = ('"%s" "%s" 2>&1'):format(arg[lowest], script)
  if helpers.windows then command = '"' .. command .. '"' end
  local pipe = assert(io.popen(command))
  local out = pipe:read("*a")
  pipe:close()
  os.remove(script)
  return (out:gsub("\r", ""))
end

--- Its arguments: called on a call's results, so that the call is not a
-- tail call, which LuaJIT reports as made by the caller's caller.
function helpers.pass(...)
  return ...
end

--- A function that calls `m:name(...)` with method syntax, so argument
-- errors read as a script sees them ("bad argument #1 to 'name'"). A method
-- reached through a computed key would be reported as '?', self counted.
function helpers.method(name)
  return assert(helpers.load(("local pass = ... return function(m, ...) return pass(m:%s(...)) end")
    :format(name)))(helpers.pass)
end

--- The same with field syntax, `m.name(...)`, where self is argument #1.
function helpers.field(name)
  return assert(helpers.load(("local pass = ... return function(m, ...) return pass(m.%s(...)) end")
    :format(name)))(helpers.pass)
end

return helpers
