#!/usr/bin/env bash
# The GPU benchmark, for a machine with an NVIDIA GPU: builds omnigen with CUDA, runs bench_cuda
# (cuBLASLt GEMM vs the measured peak, attention TFLOP/s, the Z-Image DiT step and its MFU), then
# the reference library's eager step at the same size, and prints both against the targets
# (>= 1.3x the reference's step speed, >= 50% MFU). Arguments go to both programs, e.g. --quick.
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
speedup = r["step_ms"] / o["step_ms"]
tf = o["step_tflop"] / (o["step_ms"] * 1e-3)
peak = o["spec_peak_tflops"] or o["gemm_peak_tflops"]
mfu = tf / peak
print(f"omnigen {o['step_ms']:.1f} ms vs reference eager {r['step_ms']:.1f} ms: "
      f"{speedup:.2f}x (target >= 1.3x: {'met' if speedup >= 1.3 else 'NOT met'})")
print(f"omnigen MFU {100 * mfu:.1f}% of {peak:.0f} TFLOP/s (target >= 50%: "
      f"{'met' if mfu >= 0.5 else 'NOT met'})")
PY
