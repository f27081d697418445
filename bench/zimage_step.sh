#!/usr/bin/env bash
# Per-step Z-Image DiT time on the CPU, omnigen vs diffusers (torch CPU), same thread count, on a
# medium random-weight config (dim 1024, 8 layers + 2 refiners, 16 heads, 512x512 px = 1024 image
# tokens, 128 caption tokens of width 2560, fp32). Prints both medians and the ratio, and checks
# omnigen computed the reference's output.
#
#     bench/zimage_step.sh [BUILD_DIR=build] [THREADS=nproc] [RUNS=3]
# Needs python3 with torch and diffusers (not needed by the rest of omnigen).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
threads=${2:-$(nproc)}
runs=${3:-3}
if [ ! -x "$build/zimage_step" ]; then
  echo "zimage_step: build omnigen first (cmake --build $build)" >&2
  exit 1
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 bench/zimage_step_ref.py "$dir" --threads "$threads" --runs "$runs" | tee "$dir/ref.json"
"$build/zimage_step" "$dir" --threads "$threads" --runs "$runs" | tee "$dir/og.json"
python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
ref = json.load(open(f"{d}/ref.json"))
og = json.load(open(f"{d}/og.json"))
print(f"threads {og['threads']}: wall median diffusers {ref['median_s']:.3f} s/step, omnigen "
      f"{og['median_s']:.3f} s/step, speedup {ref['median_s'] / og['median_s']:.2f}x; CPU time per step "
      f"diffusers {ref['cpu_s_per_step']:.3f} s, omnigen {og['cpu_s_per_step']:.3f} s, ratio "
      f"{ref['cpu_s_per_step'] / og['cpu_s_per_step']:.2f}x (output rel err {og['rel_err_vs_reference']:.2g})")
PY
