#!/usr/bin/env bash
# CPU Wan2.1 VAE decode time, omnigen vs diffusers (torch CPU), same thread count, same weights
# and VAE input: a Wan2.1-sized AutoencoderKLWan with random f32 weights (bench/make_wan_vae.py),
# both sides in fp32, z [16, T, LATENT, LATENT] -> 1 + 4 (T - 1) frames of 8x. Prints each
# side's median wall time, CPU time and peak memory, and omnigen's error against diffusers'
# video (must be fp32 rounding: the same computation).
#
#     bench/wan_vae_decode.sh [BUILD_DIR=build] [THREADS=nproc] [LATENT=16] [T=2] [RUNS=1]
# Needs python3 with torch and diffusers (not needed by the rest of omnigen).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
threads=${2:-$(nproc)}
latent=${3:-16}
frames=${4:-2}
runs=${5:-1}
if [ ! -x "$build/bench_wan_vae" ]; then
  echo "wan_vae_decode: build omnigen first (cmake --build $build --target bench_wan_vae)" >&2
  exit 1
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 bench/make_wan_vae.py "$dir/vae"
python3 - "$dir" "$threads" "$latent" "$frames" "$runs" <<'PY'
import json, resource, statistics, sys, time

import torch
from diffusers import AutoencoderKLWan
from diffusers.utils import logging

logging.set_verbosity_error()  # the decoder-only checkpoint leaves the encoder unset

d, threads, latent, frames, runs = sys.argv[1], *map(int, sys.argv[2:6])
torch.set_num_threads(threads)
vae = AutoencoderKLWan.from_pretrained(f"{d}/vae", torch_dtype=torch.float32).eval()
z = torch.randn(1, vae.config.z_dim, frames, latent, latent,
                generator=torch.Generator().manual_seed(0))
z.numpy().tofile(f"{d}/z.f32")
wall, cpu = [], []
with torch.no_grad():
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        video = vae.decode(z).sample
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
video.numpy().tofile(f"{d}/ref.f32")
res = {"torch": torch.__version__, "threads": threads, "median_s": statistics.median(wall),
       "cpu_s": statistics.median(cpu),
       "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
json.dump(res, open(f"{d}/ref.json", "w"))
print(f"diffusers: {res}")
PY
OMP_NUM_THREADS=$threads "$build/bench_wan_vae" "$dir/vae" "$frames" "$latent" "$latent" \
  --runs "$runs" --latents "$dir/z.f32" --video "$dir/og.f32" | tee "$dir/og.txt"
python3 bench/vae_compare.py "$dir" video
