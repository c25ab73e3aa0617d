--- imalloc: the COM task allocator (IMalloc) for Lua 5.1 to 5.4 and LuaJIT.
-- The C core (imalloc.core) holds the handle and its methods; this file adds
-- the constants a script needs to talk COM. See docs/api.md for the API.
local core = require "imalloc.core"

-- The module functions from core.api, closures of their own, so that an
-- error is named after this module alone ('imalloc.wrap').
local imalloc = {}
for name, value in pairs(core.api) do imalloc[name] = value end
imalloc.backend = core.backend

imalloc._VERSION = "imalloc 0.1.0"

--- The IMallocSpy: start, stop, report, fail, format (lua/imalloc/spy.lua).
imalloc.spy = require "imalloc.spy"

--- Interface identifiers, in the form queryinterface takes.
imalloc.IID_IUnknown = "{00000000-0000-0000-C000-000000000046}"
imalloc.IID_IMalloc = "{00000002-0000-0000-C000-000000000046}"
imalloc.IID_IMallocSpy = "{0000001D-0000-0000-C000-000000000046}"

--- The context imalloc.get takes (the only one COM has).
imalloc.MEMCTX_TASK = 1

--- HRESULT codes as the third value of a failure returns them.
imalloc.S_OK = 0
imalloc.S_FALSE = 1
imalloc.E_NOTIMPL = 0x80004001
imalloc.E_NOINTERFACE = 0x80004002
imalloc.E_POINTER = 0x80004003
imalloc.E_FAIL = 0x80004005
imalloc.E_ACCESSDENIED = 0x80070005
imalloc.E_OUTOFMEMORY = 0x8007000E
imalloc.E_INVALIDARG = 0x80070057
imalloc.CO_E_OBJISREG = 0x800401FC
imalloc.CO_E_OBJNOTREG = 0x800401FB

return imalloc
