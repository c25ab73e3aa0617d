# .ci/deb-src.sh: sourced (not run) by the scripts that fetch Debian source
# packages with `apt-get source` (.ci/win/build-deps.sh, .ci/hardgc/build-deps.sh).
#
# deb_src_add_entries: when apt has no source index configured at all, adds
# /etc/apt/sources.list.d/imalloc-deb-src.{sources,list}: a deb-src copy of
# each enabled bookworm* entry (deb822 stanzas and one-line entries). The
# system's own files are left as they are. Sets DEB_SRC_ADDED=1 when it
# wrote entries (apt-get update must then run before `apt-get source`);
# returns 1, with a message on stderr, when there is no bookworm entry to
# copy. Needs root when it writes.
deb_src_add_entries() {
  DEB_SRC_ADDED=
  # shellcheck disable=SC2016 # apt's own \$(...) format, not the shell's
  if apt-get indextargets --format '$(CREATED_BY)' | grep -qx Sources; then
    return 0
  fi
  local out=/etc/apt/sources.list.d/imalloc-deb-src f
  local deb822=() oneline=()
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && [ "$f" != "$out.sources" ] && deb822+=("$f")
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && [ "$f" != "$out.list" ] && oneline+=("$f")
  done
  rm -f "$out.sources" "$out.list"
  if [ ${#deb822[@]} -gt 0 ]; then
    perl -00 -ne '
      next if /^Enabled:\s*no\s*$/mi;
      next unless /^Suites:(.*)$/mi && grep { /^bookworm(-[a-z]+)?$/ } split " ", $1;
      next unless /^Types:(.*)$/mi;
      my @t = split " ", $1;
      next unless grep { $_ eq "deb" } @t;
      s/^Types:.*$/Types: deb-src/mi;
      s/\s*\z/\n\n/;
      print;' "${deb822[@]}" >"$out.sources"
    [ -s "$out.sources" ] || rm -f "$out.sources"
  fi
  if [ ${#oneline[@]} -gt 0 ]; then
    perl -ne '
      next unless /^\s*deb\s+(\[[^\]]*\]\s+)?\S+\s+(\S+)/;
      next unless $2 =~ /^bookworm(-[a-z]+)?$/;
      s/^\s*deb(\s)/deb-src$1/;
      print;' "${oneline[@]}" >"$out.list"
    [ -s "$out.list" ] || rm -f "$out.list"
  fi
  if [ ! -e "$out.sources" ] && [ ! -e "$out.list" ]; then
    echo "no enabled 'bookworm' entry in /etc/apt/sources.list{,.d/} to add deb-src for" >&2
    return 1
  fi
  DEB_SRC_ADDED=1
}
