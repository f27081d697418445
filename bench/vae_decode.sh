#!/usr/bin/env bash
# CPU VAE decode time, omnigen vs diffusers (torch CPU), same thread count, same weights and
# latents: a FLUX-sized AutoencoderKL with random bf16 weights (bench/make_vae.py: block_out
# 128/256/512/512, 16 latent channels), both sides in fp32, LATENT x LATENT latents -> 8x image.
# Prints each side's median wall time and CPU time, their ratios, and omnigen's error against
# diffusers' image (must be fp32 rounding: the same computation).
#
#     bench/vae_decode.sh [BUILD_DIR=build] [THREADS=nproc] [LATENT=64] [RUNS=3]
# Needs python3 with torch and diffusers (not needed by the rest of omnigen).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
threads=${2:-$(nproc)}
latent=${3:-64}
runs=${4:-3}
if [ ! -x "$build/bench_vae" ]; then
  echo "vae_decode: build omnigen first (cmake --build $build --target bench_vae)" >&2
  exit 1
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 bench/make_vae.py "$dir/vae"
python3 - "$dir" "$threads" "$latent" "$runs" <<'PY'
import json, statistics, sys, time

import torch
from diffusers import AutoencoderKL
from diffusers.utils import logging

logging.set_verbosity_error()  # the decoder-only checkpoint leaves the encoder unset

d, threads, latent, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
vae = AutoencoderKL.from_pretrained(f"{d}/vae", torch_dtype=torch.float32).eval()
lat = torch.randn(1, vae.config.latent_channels, latent, latent,
                  generator=torch.Generator().manual_seed(0))
lat.numpy().tofile(f"{d}/latents.f32")
wall, cpu = [], []
with torch.no_grad():
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        z = lat / vae.config.scaling_factor + vae.config.shift_factor
        img = (vae.decode(z).sample / 2 + 0.5).clamp(0, 1)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
img.numpy().tofile(f"{d}/ref.f32")
res = {"torch": torch.__version__, "threads": threads, "median_s": statistics.median(wall),
       "cpu_s": statistics.median(cpu), "runs_s": [round(t, 2) for t in wall]}
json.dump(res, open(f"{d}/ref.json", "w"))
print(f"diffusers: {res}")
PY
OMP_NUM_THREADS=$threads "$build/bench_vae" "$dir/vae" "$latent" "$latent" --runs "$runs" \
  --latents "$dir/latents.f32" --image "$dir/og.f32" | tee "$dir/og.txt"
python3 bench/vae_compare.py "$dir" image
