-- Windows stand-in for Debian's /usr/bin/busted, whose shebang line Windows cannot
-- run: .ci/win/busted.sh starts `lua.exe busted.lua ARGS...` under Wine.
require 'busted.runner'({ standalone = false })
