#!/usr/bin/env bash
# Builds bench_cpu_ops twice (Release, -march=native), once with oneDNN and once with OpenBLAS as
# the GEMM library, and runs both, so the two libraries are compared on the same machine and load.
# Usage: bench/cpu_ops.sh [--quick]    (OMP_NUM_THREADS picks the thread count; default all cores)
# With OG_BENCH_BASELINE=DIR (the build folder of another omnigen commit holding bench_cpu_ops),
# that binary runs right before this tree's oneDNN one, for a before/after comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${OG_BENCH_BUILD:-build-bench}
cores=$(getconf _NPROCESSORS_ONLN) # not nproc, which follows OMP_NUM_THREADS
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $cores cores"
for lib in dnnl openblas; do
  log="$root-$lib.log"
  { cmake -S . -B "$root-$lib" -DCMAKE_BUILD_TYPE=Release -DOG_GEMM=$lib -DOG_WITH_CUDA=OFF &&
    cmake --build "$root-$lib" --target bench_cpu_ops -j "$cores"; } > "$log" 2>&1 ||
    { cat "$log"; exit 1; }
done
if [ -n "${OG_BENCH_BASELINE:-}" ]; then
  echo "baseline: $OG_BENCH_BASELINE/bench_cpu_ops"
  "$OG_BENCH_BASELINE/bench_cpu_ops" "$@"
  echo "this tree:"
fi
for lib in dnnl openblas; do
  "$root-$lib/bench_cpu_ops" "$@"
done
