--- imalloc.spy: an IMallocSpy that keeps the books of the task allocator,
-- for finding COM memory leaks and testing out-of-memory paths.
-- The C core (imalloc.core's spy table) does the work; this file adds a
-- printer for its report. See docs/spy.md.
local core = require "imalloc.core"

local spy = {}
for name, value in pairs(core.spy) do spy[name] = value end

local function plural(n, word)
  return ("%d %s%s"):format(n, word, n == 1 and "" or "s")
end

--- spy.format([report]): a report (spy.report() by default) as text: a
-- summary line, then one line per outstanding block, oldest first.
local fields = { "count", "bytes", "allocs", "reallocs", "frees", "failures",
                 "dropped", "blocks" }

function spy.format(report)
  if report == nil then
    report = spy.report()
  elseif type(report) ~= "table" then
    error(("bad argument #1 to 'format' (report table expected, got %s)")
      :format(type(report)), 2)
  end
  for _, k in ipairs(fields) do
    if report[k] == nil then
      error(("bad argument #1 to 'format' (not a report: no field '%s')")
        :format(k), 2)
    end
  end
  local state = report.active and "active"
    or report.pending and "stop pending"
    or "stopped"
  local lines = {
    ("spy (%s): %s, %s outstanding; %s, %s, %s; %s injected"):format(
      state, plural(report.count, "block"), plural(report.bytes, "byte"),
      plural(report.allocs, "alloc"), plural(report.reallocs, "realloc"),
      plural(report.frees, "free"), plural(report.failures, "failure")),
  }
  for _, b in ipairs(report.blocks) do
    lines[#lines + 1] = ("  #%d  %s at 0x%x  %s"):format(
      b.seq, plural(b.size, "byte"), core.address(b.address),
      b.where or "(not allocated from Lua)")
  end
  if report.dropped > 0 then
    lines[#lines + 1] = ("  and %s the spy could not record (out of memory)")
      :format(plural(report.dropped, "block"))
  end
  return table.concat(lines, "\n")
end

return spy
