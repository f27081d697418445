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
same_as_serial "$qwen" usp 4 "--prompt a_lighthouse --width 48 --height 32 --steps 2 --seed 3" \
  "--ulysses-degree 2 --ring-degree 2" "ulysses 2 x ring 2 x cfg 1 (strict)"
same_as_serial "$qwen" cfg 2 "--prompt a_storm --negative-prompt blurry --width 48 --height 32 --steps 2 --seed 11" \
  "--cfg-degree 2" "ulysses 1 x ring 1 x cfg 2 (strict)"
echo "test_cli_qwenimage_mpi: ok"
