#!/usr/bin/env bash
# Multi-process runs equal the serial run, end to end: the bundled model under mpiexec -np 4 with
# Ulysses 2 x Ring 2, and -np 2 with the guidance branches on separate processes, against the
# single-rank PNG of the same seed (pixels within 1/255), and a batch file with a bad line against
# the serial batch. Then the failures that must end every
# process with a non-zero status and no hang (each under `timeout`): a layout that needs 4 ranks
# started on 3 processes, a model folder missing on one rank, an unwritable output; and the
# threads each process takes. Skipped (77) without mpiexec or an MPI build.
# shellcheck source=tests/cli_common.sh
. "$(dirname "$0")/cli_common.sh"
command -v mpiexec >/dev/null || { echo "SKIPPED: no mpiexec"; exit 77; }
"$omnigen" --version | grep -q "mpi" || { echo "SKIPPED: omnigen was built without MPI"; exit 77; }
same_as_serial "$tiny" usp 4 "--prompt a_lighthouse --width 64 --height 64 --steps 2 --seed 3" \
  "--ulysses-degree 2 --ring-degree 2" "ulysses 2 x ring 2 x cfg 1 (strict)"
same_as_serial "$tiny" cfg 2 "--prompt a_storm --negative-prompt blurry --guidance-scale 4 --width 64 --height 64 --steps 2 --seed 11" \
  "--cfg-degree 2" "ulysses 1 x ring 1 x cfg 2 (strict)"

# A batch file: the same images as a serial batch, and a bad line fails on every process (exit 1)
# while the other lines are still written.
printf 'a cat\n{"prompt": "a dog", "width": 40}\n{"prompt": "a fox", "seed": 9}\n' >"$tmp/batch.txt"
"$omnigen" --model "$tiny" --prompt-file "$tmp/batch.txt" --width 32 --height 32 --steps 2 \
  -o "$tmp/bs.png" 2>"$tmp/err" && fail "serial batch with a bad line exited 0"
mpi 2 "$omnigen" --model "$tiny" --prompt-file "$tmp/batch.txt" --width 32 --height 32 \
  --steps 2 --ring-degree 2 -o "$tmp/bm.png" >"$tmp/log" 2>&1 && fail "MPI batch with a bad line exited 0"
for line in 1 3; do
  d=$(png diff "$tmp/bs-$line.png" "$tmp/bm-$line.png")
  [ "$d" -le 1 ] || fail "batch line $line differs from the serial batch by $d/255"
done
[ ! -e "$tmp/bm-2.png" ] || fail "the bad batch line left an output"
grep -q "1 of 3 prompts failed (line 2 of" "$tmp/log" || { cat "$tmp/log"; fail "batch summary"; }
echo "batch: lines 1 and 3 equal the serial batch, line 2 refused"

# every_rank_fails WHAT NP COMMAND...: runs COMMAND on NP processes, first as is (mpiexec must
# exit non-zero), then each rank wrapped to append "rank R rc C" to $tmp/status and exit 0 (so
# that mpiexec lets every rank finish): every rank must report, none with 0.
every_rank_fails() {
  local what=$1 np=$2
  shift 2
  mpi "$np" "$@" >"$tmp/log" 2>&1 && fail "$what: mpiexec exited 0"
  rm -f "$tmp/status" "$tmp/status.err"
  # shellcheck disable=SC2016
  mpi "$np" sh -c '"$@" 2>>"$0.err"; echo "rank $OMPI_COMM_WORLD_RANK rc $?" >>"$0"' \
    "$tmp/status" "$@" >"$tmp/log" 2>&1 || fail "$what: a wrapped rank failed"
  [ "$(wc -l <"$tmp/status")" -eq "$np" ] || { cat "$tmp/status"; fail "$what: not every rank finished"; }
  if grep -q " rc 0$" "$tmp/status"; then cat "$tmp/status"; fail "$what: a rank exited 0"; fi
  echo "$what: all $np ranks exited non-zero"
}

every_rank_fails "np 3 with 2x2" 3 "$omnigen" --model "$tiny" --prompt x --width 64 --height 64 \
  --steps 2 --ulysses-degree 2 --ring-degree 2 -o "$tmp/bad.png"
grep -q "needs cfg_degree x ring_degree x ulysses_degree = 4 ranks but the MPI launcher started 3 processes" \
  "$tmp/status.err" || { cat "$tmp/status.err"; fail "np 3: message does not name the fix"; }
[ ! -e "$tmp/bad.png" ] || fail "np 3: a refused layout left an output file"

# The model folder exists for ranks 0, 1 and 3 only.
# shellcheck disable=SC2016
every_rank_fails "model missing on rank 2" 4 bash -c \
  'm=$1; [ "$OMPI_COMM_WORLD_RANK" = 2 ] && m=/nonexistent; exec "$0" --model "$m" "${@:2}"' \
  "$omnigen" "$tiny" --prompt x --width 64 --height 64 --steps 2 --ulysses-degree 2 \
  --ring-degree 2 -o "$tmp/bad.png"
[ "$(grep -c "rank 2: cannot open /nonexistent/model_index.json" "$tmp/status.err")" -eq 3 ] ||
  { cat "$tmp/status.err"; fail "the other ranks do not name rank 2's failure"; }

every_rank_fails "unwritable output" 2 "$omnigen" --model "$tiny" --prompt x --width 64 --height 64 \
  --steps 2 --ulysses-degree 2 -o /nonexistent/x.png

# Each of the 4 processes takes its share of the node's cores (at least one); --threads is per
# process.
cores=$(getconf _NPROCESSORS_ONLN)
share=$((cores / 4 > 0 ? cores / 4 : 1))
for threads in "" "--threads 3"; do
  want=$share
  [ -n "$threads" ] && want=3
  # shellcheck disable=SC2086
  mpi 4 "$omnigen" -v --model "$tiny" --prompt x --width 32 --height 32 --steps 1 $threads \
    --ulysses-degree 2 --ring-degree 2 -o "$tmp/t.png" >"$tmp/log" 2>&1 || fail "threads run failed"
  n=$(grep -c "4 ranks (mpi): 1 in this process, $want CPU thread" "$tmp/log" || true)
  [ "$n" -eq 4 ] || { cat "$tmp/log"; fail "expected 4 processes with $want thread(s) each"; }
  echo "threads '${threads:-default}': 4 processes, $want each"
done
echo "test_cli_mpi: all checks passed"
