-- where.lua TREE [no-compiler]: run by the Lua that LuaRocks installed into
-- TREE (a Windows path), after `luarocks make` or `luarocks install`, before
-- the demo and the specs: imalloc and imalloc.core must be found in TREE,
-- by the paths the caller set (not the checkout), and the module must
-- allocate. With "no-compiler", no directory on PATH may hold a C compiler
-- or linker (the binary rock's machine). Lua 5.1 has no package.searchpath:
-- the search is written out.
local tree, mode = ...
assert(tree, "usage: where.lua TREE [no-compiler]")
local function norm(p) return (p:gsub("/", "\\"):lower()) end

local function search(name, path)
  local file = name:gsub("%.", "\\")
  for template in path:gmatch("[^;]+") do
    local candidate = template:gsub("%?", file)
    local f = io.open(candidate)
    if f then f:close() return candidate end
  end
end

for _, m in ipairs { { "imalloc", package.path }, { "imalloc.core", package.cpath } } do
  local found = search(m[1], m[2])
  assert(found, m[1] .. " is not on the path")
  assert(norm(found):sub(1, #tree) == norm(tree), m[1] .. " comes from " .. found .. ", not " .. tree)
  print(("%s: %s"):format(m[1], found))
end

local imalloc = require "imalloc"
local m = assert(imalloc.get())
local p = assert(m:alloc(16))
assert(m:getsize(p) == 16 and m:didalloc(p) == 1)
m:free(p)
print(("%s: %s backend, alloc/getsize/didalloc/free from the installed module")
  :format(jit and jit.version or _VERSION, imalloc.backend))

if mode == "no-compiler" then
  local tools = { "cl.exe", "link.exe", "gcc.exe", "mingw32-gcc.exe", "cc.exe",
    "clang.exe", "clang-cl.exe", "x86_64-w64-mingw32-gcc.exe", "i686-w64-mingw32-gcc.exe" }
  local path = assert(os.getenv("PATH"))
  local dirs = 0
  for dir in path:gmatch("[^;]+") do
    dirs = dirs + 1
    for _, tool in ipairs(tools) do
      local f = io.open(dir .. "\\" .. tool)
      if f then f:close() error("a compiler on PATH: " .. dir .. "\\" .. tool) end
    end
  end
  print(("no compiler: none of %d tools in the %d directories on PATH"):format(#tools, dirs))
end
