#!/usr/bin/env bash
# The GPU benchmark, for a machine with an NVIDIA GPU: builds omnigen with CUDA, runs bench_cuda
# (cuBLASLt GEMM vs the measured peak, attention TFLOP/s, the Z-Image DiT step through
# og_zimage_cuda_forward and its MFU, and with --ulysses-degree/--ring-degree/--layouts the same
# step under SP with all ranks on GPU 0), then diffusers' eager step at the same size, and prints
# both against the targets (>= 1.3x the reference's step speed, >= 50% MFU). Arguments go to
# both programs, e.g. --quick or --layouts. OG_BENCH_BUILD names the build folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${OG_BENCH_BUILD:-build-gpu}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target bench_cuda >/dev/null
"$build/bench_cuda" "$@" | tee "$build/bench_cuda.txt"
ours=$(sed -n 's/^json: //p' "$build/bench_cuda.txt")
if ! python3 -c "import torch, diffusers; assert torch.cuda.is_available()" 2>/dev/null; then
  echo "reference: skipped (needs python3 with torch on CUDA and diffusers)"
  exit 0
fi
python3 bench/gpu/torch_ref.py "$@" | tee "$build/torch_ref.txt"
ref=$(sed -n 's/^json: //p' "$build/torch_ref.txt")
python3 - "$ours" "$ref" <<'PY'
import json, sys
o, r = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert o["seq"] == r["seq"], "the two programs ran different sequence lengths"
assert abs(o["step_tflop"] - r["step_tflop"]) <= 1e-6 * o["step_tflop"], \
    "the two programs count different FLOPs"
speedup = r["step_ms"] / o["step_ms"]
peak = o["spec_peak_tflops"] or o["gemm_peak_tflops"]
print(f"omnigen {o['step_ms']:.1f} ms vs reference eager {r['step_ms']:.1f} ms: "
      f"{speedup:.2f}x (target >= 1.3x: {'met' if speedup >= 1.3 else 'NOT met'})")
if peak:
    mfu = o["step_tflop"] / (o["step_ms"] * 1e-3) / peak
    ref_mfu = r["step_tflop"] / (r["step_ms"] * 1e-3) / peak
    print(f"MFU of {peak:.0f} TFLOP/s: omnigen {100 * mfu:.1f}% (target >= 50%: "
          f"{'met' if mfu >= 0.5 else 'NOT met'}), reference {100 * ref_mfu:.1f}%")
for l in o["layouts"]:
    print(f"SP U{l['ulysses']} R{l['ring']} on one GPU: {l['step_ms']:.1f} ms, "
          f"{l['step_ms'] / o['step_ms']:.2f}x the serial step (output vs serial {l['rel_err']:.1e})")
PY
