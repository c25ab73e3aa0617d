# .ci/deb-src.sh: sourced (not run) by the scripts that fetch Debian source
# packages with `apt-get source` (.ci/win/build-deps.sh, .ci/hardgc/build-deps.sh,
# .ci/m32/build-deps.sh).
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

# deb_src_fetch PKG DIR LOG [REUSE]: sets DEB_SRC_TREE to an unpacked source
# tree of PKG, the first of:
#   REUSE/PKG/tree, when REUSE (the PREFIX/src of .ci/win/build-deps.sh) has
#     it: read only, objects go elsewhere;
#   the tree already unpacked in DIR/PKG (a run before this one);
#   `apt-get source PKG` in DIR/PKG: before the first one in this shell,
#     deb-src entries are added when apt has none (deb_src_add_entries) and
#     apt-get update runs when they were added or apt knows no source of
#     PKG; when apt-get left only the upstream tarball (Debian's files
#     missing), that tarball unpacked, with a note on stderr.
# apt's output goes to LOG. Returns 1, DEB_SRC_TREE empty, when there is no
# source. Adding entries and updating need root; without it, a warning.
DEB_SRC_UPDATED=
deb_src_fetch() {
  local pkg=$1 dir=$2/$1 log=$3 reuse=${4:-} t
  DEB_SRC_TREE=
  if [ -n "$reuse" ] && [ -d "$reuse/$pkg/tree" ]; then
    DEB_SRC_TREE=$(cd "$reuse/$pkg/tree" && pwd)
    return 0
  fi
  DEB_SRC_TREE=$(find "$dir" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -n1 || true)
  [ -z "$DEB_SRC_TREE" ] || return 0
  mkdir -p "$dir"
  if [ -z "$DEB_SRC_UPDATED" ]; then
    DEB_SRC_UPDATED=1
    deb_src_add_entries || echo "deb_src_fetch: cannot add deb-src entries (run as root)" >&2
    if [ -n "$DEB_SRC_ADDED" ] ||
       ! apt-cache showsrc --only-source "$pkg" 2>/dev/null | grep -q '^Package:'; then
      apt-get update -qq >>"$log" 2>&1 ||
        echo "deb_src_fetch: apt-get update reported errors (see $log)" >&2
    fi
  fi
  (cd "$dir" && apt-get source -qq -o APT::Sandbox::User=root "$pkg") >>"$log" 2>&1 || true
  DEB_SRC_TREE=$(find "$dir" -mindepth 1 -maxdepth 1 -type d | head -n1)
  [ -z "$DEB_SRC_TREE" ] || return 0
  for t in "$dir"/*.orig.tar.*; do
    [ -f "$t" ] || continue
    echo "$pkg: Debian's files are missing; building the upstream $(basename "$t")" >&2
    tar -xf "$t" -C "$dir" &&
      DEB_SRC_TREE=$(find "$dir" -mindepth 1 -maxdepth 1 -type d | head -n1)
    [ -z "$DEB_SRC_TREE" ] || return 0
  done
  return 1
}
