rockspec_format = "3.0"
package = "imalloc"
version = "scm-1"
source = {
  url = "git+file:///dev/null",  -- development rockspec: `luarocks make` from a checkout
}
description = {
  summary = "The COM task allocator (IMalloc) for Lua 5.1 to 5.4 and LuaJIT",
  detailed = [[
    imalloc.get() returns the process-wide COM task allocator as a Lua
    handle whose methods call through the IMalloc vtable. On Windows it is
    ole32.dll's, loaded at run time; on POSIX a built-in allocator with the
    same ABI and semantics. Pointers are checked with DidAlloc before they
    reach the heap.
  ]],
  license = "MIT",
  labels = { "com", "memory", "windows", "ffi" },
}
dependencies = {
  "lua >= 5.1, < 5.5",
}
build = {
  type = "builtin",
  -- The C headers a module needs to share the allocator (docs/c-interface.md:
  -- "For C modules"), in the rock's directory: $(luarocks show --rock-dir imalloc)/conf/include.
  install = {
    conf = {
      ["include/imalloc.h"] = "src/imalloc.h",
      ["include/com_abi.h"] = "src/com_abi.h",
    },
  },
  modules = {
    imalloc = "lua/imalloc.lua",
    ["imalloc.spy"] = "lua/imalloc/spy.lua",
  },
  platforms = {
    -- ole32.dll is loaded at run time: nothing to link but Lua itself.
    -- The sources are C99 with Interlocked atomics on Windows (src/platform.h),
    -- so MSVC's default C mode needs no flags.
    windows = {
      modules = {
        ["imalloc.core"] = {
          sources = { "src/module.c", "src/binding.c", "src/handle.c", "src/bytes.c", "src/buffer.c", "src/freed.c", "src/spy.c", "src/spy_books.c", "src/backend_win32.c" },
          incdirs = { "src" },
        },
      },
    },
    unix = {
      modules = {
        ["imalloc.core"] = {
          sources = { "src/module.c", "src/binding.c", "src/handle.c", "src/bytes.c", "src/buffer.c", "src/freed.c", "src/spy.c", "src/spy_books.c", "src/backend_posix.c",
            "src/taskalloc/os.c", "src/taskalloc/radix.c", "src/taskalloc/chunk.c",
            "src/taskalloc/tcache.c", "src/taskalloc/large.c",
            "src/taskalloc/alloc.c", "src/taskalloc/cospy.c",
            "src/taskalloc/init.c" },
          incdirs = { "src" },
          libraries = { "pthread", "dl" },
        },
      },
    },
  },
}
