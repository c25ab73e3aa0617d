-- The first Wine test of a build (ctest fixture): the Wine prefix is made and
-- the Windows Lua starts in it, so that a broken prefix is reported once, here,
-- and the specs that need it do not run.
print(((jit and jit.version) or _VERSION) .. " runs under Wine")
