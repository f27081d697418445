#!/usr/bin/env python3
"""Reference side of bench/zimage_step.sh: one Z-Image DiT step in diffusers on torch CPU.

Builds a random-weight ZImageTransformer2DModel (fp32) of the medium benchmark config, saves it
in the diffusers layout (DIR/transformer/) with the inputs (DIR/inputs.safetensors: latents,
caption features, model time), times forward() with torch.set_num_threads(THREADS), and stores
its output (DIR/reference_out.safetensors) so the C side can check it computed the same thing.
Prints one JSON line. With --bf16 it then times the same model cast to bfloat16
(model.to(torch.bfloat16), bf16 inputs) and prints a second line with that output's relative
error against the fp32 output.

    python3 bench/zimage_step_ref.py DIR --threads 2 --runs 3 [--bf16]
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
from safetensors.torch import save_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--size", type=int, default=512, help="image side in pixels")
    ap.add_argument("--cap-len", type=int, default=128)
    ap.add_argument("--cap-dim", type=int, default=2560)
    ap.add_argument("--bf16", action="store_true", help="also time the model in bfloat16")
    args = ap.parse_args()

    from diffusers import ZImageTransformer2DModel

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    head_dim = args.dim // args.heads
    a0 = head_dim // 4 // 2 * 2
    axes = [a0, (head_dim - a0) // 2, head_dim - a0 - (head_dim - a0) // 2]
    model = ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=args.dim,
        n_layers=args.layers, n_refiner_layers=2, n_heads=args.heads, n_kv_heads=args.heads,
        norm_eps=1e-5, qk_norm=True, cap_feat_dim=args.cap_dim, rope_theta=256.0,
        t_scale=1000.0, axes_dims=axes, axes_lens=[1536, 512, 512]).eval()
    with torch.no_grad():  # the default init leaves pad tokens at zero; make every input count
        model.x_pad_token.normal_()
        model.cap_pad_token.normal_()
    model.save_pretrained(os.path.join(args.dir, "transformer"), safe_serialization=True)

    lat = 2 * (args.size // 16)
    latents = torch.randn(16, lat, lat)
    cap = torch.randn(args.cap_len, args.cap_dim)
    t = torch.tensor([0.3])
    save_file({"latents": latents.contiguous(), "cap_feats": cap.contiguous(), "t": t},
              os.path.join(args.dir, "inputs.safetensors"))

    def timed(dtype):
        def step():
            with torch.no_grad():
                return model([latents.unsqueeze(1).to(dtype)], t, [cap.to(dtype)],
                             return_dict=False)[0][0]

        out = step()  # warm-up
        times, cpu = [], 0.0
        for _ in range(args.runs):
            t0, c0 = time.perf_counter(), time.process_time()
            out = step()
            times.append(time.perf_counter() - t0)
            cpu += time.process_time() - c0
        return out.squeeze(1).float().contiguous(), {
            "impl": "diffusers", "precision": "bf16" if dtype == torch.bfloat16 else "fp32",
            "torch": torch.__version__, "threads": args.threads,
            "median_s": statistics.median(times), "min_s": min(times),
            "cpu_s_per_step": cpu / args.runs, "times_s": times,
            "image_tokens": (lat // 2) ** 2, "caption_tokens": args.cap_len}

    out, info = timed(torch.float32)
    save_file({"out": out}, os.path.join(args.dir, "reference_out.safetensors"))
    print(json.dumps(info), flush=True)
    if args.bf16:
        model.to(torch.bfloat16)
        out16, info = timed(torch.bfloat16)
        info["rel_err_vs_fp32"] = float((out16 - out).abs().max() / out.abs().max())
        print(json.dumps(info))


if __name__ == "__main__":
    sys.exit(main())
