#!/usr/bin/env bash
# Per-step Z-Image DiT time on the CPU, omnigen vs diffusers (torch CPU), same thread count, on a
# medium random-weight config (dim 1024, 8 layers + 2 refiners, 16 heads, 512x512 px = 1024 image
# tokens, 128 caption tokens of width 2560). Both sides run in fp32 and in bf16 (diffusers:
# model.to(torch.bfloat16); omnigen: --precision bf16, AMX GEMMs through oneDNN). Prints the
# medians, CPU seconds per step and their ratios, and each output's relative error against
# diffusers' fp32 output (omnigen fp32 must match it to fp32 rounding).
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
python3 bench/zimage_step_ref.py "$dir" --threads "$threads" --runs "$runs" --bf16 | tee "$dir/ref.json"
"$build/zimage_step" "$dir" --threads "$threads" --runs "$runs" | tee "$dir/og.json"
"$build/zimage_step" "$dir" --threads "$threads" --runs "$runs" --precision bf16 | tee "$dir/og_bf16.json"
python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
ref32, ref16 = [json.loads(line) for line in open(f"{d}/ref.json") if line.startswith("{")]
og32 = json.load(open(f"{d}/og.json"))
og16 = json.load(open(f"{d}/og_bf16.json"))


def line(name, ref, og):
    print(f"{name}: wall median diffusers {ref['median_s']:.3f} s/step ({ref['precision']}), "
          f"omnigen {og['median_s']:.3f} s/step ({og['precision']}), speedup "
          f"{ref['median_s'] / og['median_s']:.2f}x; CPU s/step {ref['cpu_s_per_step']:.3f} vs "
          f"{og['cpu_s_per_step']:.3f}, ratio {ref['cpu_s_per_step'] / og['cpu_s_per_step']:.2f}x")


print(f"threads {og32['threads']}")
line("fp32 vs fp32", ref32, og32)
line("bf16 vs fp32", ref32, og16)
line("bf16 vs bf16", ref16, og16)
print(f"output rel err vs diffusers fp32: omnigen fp32 {og32['rel_err_vs_reference']:.2g}, "
      f"omnigen bf16 {og16['rel_err_vs_reference']:.2g}, diffusers bf16 {ref16['rel_err_vs_fp32']:.2g}")
PY
