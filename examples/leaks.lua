-- Finding a COM memory leak with the spy, fixing it, and testing the fix
-- when memory runs out.
--
-- olestrings(names) makes an LPOLESTR (UTF-16 in the task allocator) of
-- each name, for a COM API that takes an array of them. The first version
-- leaks on an error path: at an empty name it returns early and forgets the
-- strings it has made. The spy's report names the blocks and the line that
-- allocated them; the fixed version frees them on every way out, including
-- the one where a wstrdup fails, which fault injection provokes.
--   LUA_PATH="lua/?.lua;;" LUA_CPATH="build/?.so;;" lua5.4 examples/leaks.lua
local imalloc = require "imalloc"
local spy = imalloc.spy

local m = assert(imalloc.get())

local function olestrings_leaky(names)
  local strs = {}
  for i, name in ipairs(names) do
    if name == "" then return nil, ("name #%d is empty"):format(i) end
    strs[i] = assert(m:wstrdup(name))
  end
  return strs
end

local function free_all(strs)
  for _, p in ipairs(strs) do m:free(p) end
end

local function olestrings(names)
  local strs = {}
  for i, name in ipairs(names) do
    local p, err = nil, ("name #%d is empty"):format(i)
    if name ~= "" then p, err = m:wstrdup(name) end
    if not p then
      free_all(strs)
      return nil, err
    end
    strs[i] = p
  end
  return strs
end

local names = { "alpha", "beta", "", "delta" }

print("-- the leak")
assert(spy.start())
print(olestrings_leaky(names))
local report = spy.report()
print(spy.format(report))
-- While spied blocks live, stop() is refused and stays pending; the report
-- has their addresses, so they can still be freed.
print(spy.stop())
for _, block in ipairs(report.blocks) do m:free(block.address) end
print("after freeing them, still pending:", spy.report().pending)

print("-- the fix")
assert(spy.start())
print(olestrings(names))
print(spy.format())

print("-- the fix when the second wstrdup runs out of memory")
spy.fail { nth = 2 }
print(olestrings { "alpha", "beta", "gamma" })
print(spy.format())
print(spy.stop())
