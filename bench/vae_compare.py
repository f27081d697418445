"""The closing report of bench/vae_decode.sh and bench/wan_vae_decode.sh: reads what both sides
left in DIR (diffusers' ref.f32 and ref.json, omnigen's og.f32 and og.txt) and prints the wall and
CPU time ratios and omnigen's error against diffusers' output:
python bench/vae_compare.py DIR image|video"""
import json
import re
import sys

import numpy as np

d, kind = sys.argv[1], sys.argv[2]
ref = np.fromfile(f"{d}/ref.f32", dtype=np.float32).astype(np.float64)
og = np.fromfile(f"{d}/og.f32", dtype=np.float32).astype(np.float64)
ref_t = json.load(open(f"{d}/ref.json"))
line = open(f"{d}/og.txt").read()
og_wall = float(re.search(r": ([0-9.]+) s \(median", line).group(1))
og_cpu = float(re.search(r"([0-9.]+) CPU-s", line).group(1))
print(f"threads {ref_t['threads']}: wall median diffusers {ref_t['median_s']:.2f} s, omnigen "
      f"{og_wall:.2f} s, speedup {ref_t['median_s'] / og_wall:.2f}x; CPU-s {ref_t['cpu_s']:.2f} vs "
      f"{og_cpu:.2f}, ratio {ref_t['cpu_s'] / og_cpu:.2f}x")
if kind == "image":  # in [0, 1]
    rel = np.linalg.norm(og - ref) / np.linalg.norm(ref)
    print(f"omnigen image vs diffusers: rel err {rel:.2g}, "
          f"max abs {np.abs(og - ref).max():.2g}, bytes within 1/255 "
          f"{100 * np.mean(np.abs(np.round(og * 255) - np.round(ref * 255)) <= 1):.4f}%")
else:  # in [-1, 1]
    print(f"omnigen video vs diffusers: max abs {np.abs(og - ref).max():.2g} "
          f"(relative to the largest value {np.abs(og - ref).max() / np.abs(ref).max():.2g})")
