"""Reference side of bench/gpu/run.sh: the eager step time of diffusers' ZImageTransformer2DModel
at the size bench_cuda runs (the same config: dim 3840, 30 heads, 2 + 2 refiner layers and
--layers main layers, caption width 2560; random bf16 weights; 1024x1024 and a 100-token caption
by default), timed the same way (one warm-up, then the median of --steps forwards, wall clock
with torch.cuda.synchronize() on both sides), with bench_cuda's FLOP count (og_zimage_flops) so
the two MFU figures compare. bench_cuda's SP flags are accepted and ignored. Needs torch with
CUDA and diffusers."""
import argparse
import json
import statistics
import time

import torch
from diffusers import ZImageTransformer2DModel


def pad32(n):
    return (n + 31) // 32 * 32


def step_flops(size, text, layers, refiners=2, dim=3840, cap_dim=2560, in_ch=16):
    """og_zimage_flops (dit/zimage.c) term by term: every GEMM at 2*M*N*K (time embedder and
    adaLN GEMVs, embedders on the real tokens, the blocks on their padded tokens, the final
    linear on the padded image tokens) and attention's two products at 4*n^2*dim per block."""
    ffn, adaln, patch = int(dim / 3 * 8), min(dim, 256), 4 * in_ch
    img = (size // 16) ** 2
    img_pad, cap_pad = pad32(img), pad32(text)

    def block(n):
        return 2 * n * dim * (4 * dim + 3 * ffn) + 4 * n * n * dim

    f = 2 * (256 * 1024 + 1024 * adaln) + 2 * adaln * 4 * dim * (refiners + layers)
    f += 2 * adaln * dim + 2 * img * patch * dim + 2 * text * cap_dim * dim
    f += refiners * (block(img_pad) + block(cap_pad)) + layers * block(img_pad + cap_pad)
    return f + 2 * img_pad * dim * patch, img_pad + cap_pad


def spec_peak(name):
    if "H100 PCIe" in name:
        return 756.0
    if "H20 " in name:
        return 148.0
    if any(k in name for k in ("H100", "H200", "H800")):
        return 989.0
    if "A100" in name or "A800" in name:
        return 312.0
    return 362.0 if "L40S" in name else 0.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--layers", type=int, default=30)
    p.add_argument("--text", type=int, default=100)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--peak", type=float, default=0.0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--ulysses-degree", type=int, default=1)  # bench_cuda's; ignored here
    p.add_argument("--ring-degree", type=int, default=1)
    p.add_argument("--layouts", action="store_true")
    p.add_argument("--no-probes", action="store_true")
    a = p.parse_args()
    if a.quick:
        a.size, a.layers, a.steps = 256, 2, 2
    dev = torch.device("cuda")
    torch.manual_seed(0)
    with torch.device(dev):
        torch.set_default_dtype(torch.bfloat16)
        # og_zimage_config_default: diffusers' defaults, axes_lens as the released config.
        model = ZImageTransformer2DModel(n_layers=a.layers, axes_lens=[1536, 512, 512]).eval()
        torch.set_default_dtype(torch.float32)
    lat = a.size // 8
    x = [torch.randn(16, 1, lat, lat, device=dev, dtype=torch.bfloat16)]
    cap = [torch.randn(a.text, 2560, device=dev, dtype=torch.bfloat16)]
    t = torch.tensor([0.5], device=dev, dtype=torch.bfloat16)  # bench_cuda's model time
    times = []
    with torch.no_grad():
        for i in range(1 + a.steps):  # one warm-up, as bench_cuda
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(x, t, cap, return_dict=False)
            torch.cuda.synchronize()
            if i > 0:
                times.append((time.perf_counter() - t0) * 1e3)
    flops, seq = step_flops(a.size, a.text, a.layers)
    med = statistics.median(times)
    name = torch.cuda.get_device_name(0)
    peak = a.peak or spec_peak(name)
    tf = flops / (med * 1e-3) / 1e12
    print(f"reference eager step ({name}, {a.size}x{a.size}, S={seq}): {med:.1f} ms median of "
          f"{a.steps}, {min(times):.1f} ms best, {tf:.1f} TFLOP/s"
          + (f", MFU {100 * tf / peak:.1f}% of {peak:.0f}" if peak else ""))
    print("json: " + json.dumps({"device": name, "size": a.size, "layers": a.layers,
                                 "text": a.text, "seq": seq, "step_ms": round(med, 3),
                                 "step_tflop": round(flops / 1e12, 6), "spec_peak_tflops": peak,
                                 "torch": torch.__version__}))


if __name__ == "__main__":
    main()
