#!/usr/bin/env bash
# Qwen-Image across processes: models/qwenimage-tiny under mpiexec -np 4 with Ulysses 2 x Ring 2,
# and -np 2 with the true-CFG branches on separate processes (--cfg-degree 2), against the
# single-process PNG of the same seed (pixels within 1/255), rank 0 alone writing. Skipped (77)
# without mpiexec or an MPI build.
# shellcheck source=tests/cli_common.sh
. "$(dirname "$0")/cli_common.sh"
qwen=$root/models/qwenimage-tiny
[ -d "$qwen" ] || { echo "SKIPPED: models/qwenimage-tiny is missing"; exit 77; }
command -v mpiexec >/dev/null || { echo "SKIPPED: no mpiexec"; exit 77; }
"$omnigen" --version | grep -q "mpi" || { echo "SKIPPED: omnigen was built without MPI"; exit 77; }
# OpenMPI's components leak at exit where LeakSanitizer cannot suppress them (tests/test_cli_mpi.sh).
mpi() {
  local np=$1
  shift
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    timeout 300 mpiexec --allow-run-as-root --oversubscribe -np "$np" "$@"
}
# same NAME NP "common flags" "layout flags" RECORDED-LAYOUT
same() {
  local name=$1 np=$2 common=$3 layout=$4
  # shellcheck disable=SC2086
  "$omnigen" --model "$qwen" $common -o "$tmp/$name-serial.png" 2>"$tmp/err" ||
    { cat "$tmp/err"; fail "$name: serial run failed"; }
  # shellcheck disable=SC2086
  mpi "$np" "$omnigen" --model "$qwen" $common $layout -o "$tmp/$name-mpi.png" >"$tmp/log" 2>&1 ||
    fail "$name: mpiexec -np $np $layout failed"
  local d
  d=$(png diff "$tmp/$name-serial.png" "$tmp/$name-mpi.png")
  [ "$d" -le 1 ] || fail "$name: -np $np $layout differs from the serial run by $d/255"
  has_text "$tmp/$name-mpi.png" "parallel=$5" || fail "$name: PNG does not record the layout"
  [ "$(grep -c '^omnigen: wrote' "$tmp/log")" -eq 1 ] || fail "$name: expected one 'wrote' line"
  echo "$name: mpiexec -np $np $layout: max pixel difference $d/255"
}
same usp 4 "--prompt a_lighthouse --width 48 --height 32 --steps 2 --seed 3" \
  "--ulysses-degree 2 --ring-degree 2" "ulysses 2 x ring 2 x cfg 1 (strict)"
same cfg 2 "--prompt a_storm --negative-prompt blurry --width 48 --height 32 --steps 2 --seed 11" \
  "--cfg-degree 2" "ulysses 1 x ring 1 x cfg 2 (strict)"
echo "test_cli_qwenimage_mpi: ok"
