# shellcheck shell=bash
# Sourced by the CLI shell tests (tests/test_cli_*.sh), whose $1 is the omnigen binary: strict
# mode, $omnigen, $root (the source tree, ctest's working directory), $tiny (the bundled model,
# skipped with 77 when missing), a scratch folder $tmp removed on exit, and the helpers below.
set -euo pipefail
omnigen=$1
root=$(pwd)
tiny=$root/models/zimage-tiny
[ -d "$tiny" ] || { echo "SKIPPED: models/zimage-tiny is missing"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# fail MESSAGE: exits 1, printing $tmp/log first when the test keeps a log there.
fail() { echo "FAIL: $*"; [ -f "$tmp/log" ] && cat "$tmp/log"; exit 1; }
png() { python3 "$root/tests/cli_png.py" "$@"; }
# has_text FILE KEY=VALUE: the PNG carries that text chunk.
has_text() { png info "$1" >"$tmp/info.txt" && grep -qxF "$2" "$tmp/info.txt"; }
# mpi NP COMMAND...: COMMAND under mpiexec -np NP (within 300 s). CI runs as root on two cores.
# OpenMPI's dlopen'ed components leak at exit where LeakSanitizer cannot name or suppress them
# (see tests/mpi/test_parallel_mpi.c), so an ASan build checks the MPI processes for every error
# but leaks; the serial runs keep the leak check.
mpi() {
  local np=$1
  shift
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    timeout 300 mpiexec --allow-run-as-root --oversubscribe -np "$np" "$@"
}
# same_as_serial MODEL NAME NP "common flags" "layout flags" RECORDED-LAYOUT: the NP-process run
# against the serial one (pixels within 1/255), the layout recorded in the PNG, rank 0 alone
# reporting (one "wrote" line).
same_as_serial() {
  local model=$1 name=$2 np=$3 common=$4 layout=$5
  # shellcheck disable=SC2086
  "$omnigen" --model "$model" $common -o "$tmp/$name-serial.png" 2>"$tmp/err" ||
    { cat "$tmp/err"; fail "$name: serial run failed"; }
  # shellcheck disable=SC2086
  mpi "$np" "$omnigen" --model "$model" $common $layout -o "$tmp/$name-mpi.png" >"$tmp/log" 2>&1 ||
    fail "$name: mpiexec -np $np $layout failed"
  local d
  d=$(png diff "$tmp/$name-serial.png" "$tmp/$name-mpi.png")
  [ "$d" -le 1 ] || fail "$name: -np $np $layout differs from the serial run by $d/255"
  has_text "$tmp/$name-mpi.png" "parallel=$6" || fail "$name: PNG does not record the layout"
  [ "$(grep -c '^omnigen: wrote' "$tmp/log")" -eq 1 ] || fail "$name: expected one 'wrote' line"
  echo "$name: mpiexec -np $np $layout: max pixel difference $d/255"
}
