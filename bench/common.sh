# bench/common.sh: what bench/run and bench/alloc-run share; sourced, from
# the top of a checkout.

# Installs, quietly with apt-get, the packages named that are missing.
bench_install() {
  [ -f .ci/setup ] && bash .ci/setup
  local missing=() p sudo=
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "bench: installing ${missing[*]}" >&2
  $sudo apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" \
    >/dev/null || echo "bench: could not install all of ${missing[*]}" >&2
}

# Configures $BUILD when it has no build yet, or when it was configured
# before valgrind's headers were there (the instruction columns need them).
bench_configure() {
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S . -B "$BUILD" >/dev/null
  elif ! grep -q '^IMALLOC_HAVE_CALLGRIND_H:INTERNAL=1' "$BUILD/CMakeCache.txt"; then
    cmake -S . -B "$BUILD" -UIMALLOC_HAVE_CALLGRIND_H >/dev/null
  fi
}

# bench_cg NAME [ENV...] -- COMMAND...: runs COMMAND under callgrind and
# writes $OUT/NAME.ir, "key instructions-per-iteration" lines. The driver
# dumps callgrind's counts once per loop, labelled key/iterations (bench.h);
# a dump's "summary:" is its instruction count.
bench_cg() {
  local name=$1
  shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" valgrind --tool=callgrind --dump-instr=no \
    --callgrind-out-file="$OUT/cg-$name.%p" "$@" > /dev/null 2> "$OUT/cg-$name.log"
  awk '/^desc: Trigger: Client Request:/ { label = $5 }
       /^summary:/ && label != "" {
         split(label, a, "/"); printf "%s %.1f\n", a[1], $2 / a[2]; label = "" }' \
    "$OUT"/cg-"$name".* > "$OUT/$name.ir"
}

# The directory of the system's shared libraries (where the compiler's
# libc.so.6 is: ldconfig also lists the x32 and 32-bit ones of multilib).
bench_libdir() {
  realpath "$(dirname "$(gcc -print-file-name=libc.so.6)")"
}
