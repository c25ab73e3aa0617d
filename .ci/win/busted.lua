-- Windows stand-in for Debian's /usr/bin/busted, whose shebang line Windows cannot
-- run: .ci/win/busted.sh starts `lua.exe busted.lua ARGS...` under Wine.
-- stdout is unbuffered (msvcrt treats line buffering as full buffering), so the
-- output of the tests before a crash in a C module still reaches the log.
io.stdout:setvbuf("no")
require 'busted.runner'({ standalone = false })
