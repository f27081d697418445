#!/usr/bin/env bash
# Per-step Z-Image DiT time on the CPU, omnigen vs diffusers (torch CPU), same thread count, on a
# medium random-weight config (dim 1024, 8 layers + 2 refiners, 16 heads, 512x512 px = 1024 image
# tokens, 128 caption tokens of width 2560). Both sides run in fp32 and in bf16 (diffusers:
# model.to(torch.bfloat16); omnigen: --precision bf16, AMX GEMMs through oneDNN). Prints the
# medians, CPU seconds per step and their ratios, and each output's relative error against
# diffusers' fp32 output (omnigen fp32 must match it to fp32 rounding).
# With BASELINE_DIR (the build folder of another omnigen commit, e.g. from `git worktree add`),
# that build's zimage_step runs on the same model and inputs, each precision right before this
# build's, and the omnigen after/before ratios are printed too.
#
#     bench/zimage_step.sh [BUILD_DIR=build] [THREADS=nproc] [RUNS=3] [BASELINE_DIR]
# Needs python3 with torch and diffusers (not needed by the rest of omnigen).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
threads=${2:-$(nproc)}
runs=${3:-3}
baseline=${4:-}
for b in "$build" $baseline; do
  if [ ! -x "$b/zimage_step" ]; then
    echo "zimage_step: build omnigen first (cmake --build $b --target zimage_step)" >&2
    exit 1
  fi
done
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 bench/zimage_step_ref.py "$dir" --threads "$threads" --runs "$runs" --bf16 | tee "$dir/ref.json"
for p in fp32 bf16; do
  if [ -n "$baseline" ]; then
    "$baseline/zimage_step" "$dir" --threads "$threads" --runs "$runs" --precision $p |
      tee "$dir/base_$p.json"
  fi
  "$build/zimage_step" "$dir" --threads "$threads" --runs "$runs" --precision $p |
    tee "$dir/og_$p.json"
done
python3 - "$dir" "$baseline" <<'PY'
import json, os, sys
d, baseline = sys.argv[1], sys.argv[2]
ref32, ref16 = [json.loads(line) for line in open(f"{d}/ref.json") if line.startswith("{")]
og32 = json.load(open(f"{d}/og_fp32.json"))
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
for p, og in (("fp32", og32), ("bf16", og16)):
    if not baseline:
        break
    base = json.load(open(f"{d}/base_{p}.json"))
    print(f"{p} omnigen vs baseline {baseline}: wall median {base['median_s']:.3f} -> "
          f"{og['median_s']:.3f} s/step ({base['median_s'] / og['median_s']:.3f}x), CPU s/step "
          f"{base['cpu_s_per_step']:.3f} -> {og['cpu_s_per_step']:.3f} "
          f"({base['cpu_s_per_step'] / og['cpu_s_per_step']:.3f}x), scratch "
          f"{base['scratch_mb']:.1f} -> {og['scratch_mb']:.1f} MB")
PY
