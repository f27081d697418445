"""Reference side of bench/gpu/run.sh: the eager step time of diffusers' ZImageTransformer2DModel
at the same size as bench_cuda (full Z-Image config, random bf16 weights, 1024x1024 by default),
with the FLOP count of bench_cuda so the two MFU figures compare. Needs torch with CUDA."""
import argparse
import json
import math

import torch
from diffusers import ZImageTransformer2DModel


def step_flops(size, text, layers, refiners=2, dim=3840, ffn=10240, tdim=256, cap_dim=2560):
    """GEMMs (2*M*N*K) and attention (4*S^2*H*D) of one forward, as bench_cuda counts them."""
    img = (size // 16) ** 2
    cap = (text + 31) // 32 * 32

    def block(n, modulated):
        f = 2 * n * dim * 3 * dim + 4 * n * n * dim + 2 * n * dim * dim
        f += 2 * n * dim * 2 * ffn + 2 * n * ffn * dim
        return f + (2 * tdim * 4 * dim if modulated else 0)

    f = 2 * img * 64 * dim + 2 * cap * cap_dim * dim
    f += refiners * (block(img, True) + block(cap, False)) + layers * block(img + cap, True)
    return f + 2 * tdim * dim + 2 * img * dim * 64, img + cap


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
    p.add_argument("--text", type=int, default=128)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--peak", type=float, default=0.0)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    if a.quick:
        a.size, a.layers, a.steps = 256, 2, 2
    dev = torch.device("cuda")
    torch.manual_seed(0)
    with torch.device(dev):
        torch.set_default_dtype(torch.bfloat16)
        model = ZImageTransformer2DModel(n_layers=a.layers, axes_lens=[1536, 512, 512]).eval()
        torch.set_default_dtype(torch.float32)
    lat = a.size // 8
    x = [torch.randn(16, 1, lat, lat, device=dev, dtype=torch.bfloat16)]
    cap = [torch.randn(a.text, 2560, device=dev, dtype=torch.bfloat16)]
    t = torch.tensor([0.5], device=dev, dtype=torch.bfloat16)
    times = []
    with torch.no_grad():
        model(x, t, cap, return_dict=False)  # warm-up
        torch.cuda.synchronize()
        for _ in range(a.steps):
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            model(x, t, cap, return_dict=False)
            e1.record()
            torch.cuda.synchronize()
            times.append(e0.elapsed_time(e1))
    flops, seq = step_flops(a.size, a.text, a.layers)
    mean = sum(times) / len(times)
    name = torch.cuda.get_device_name(0)
    peak = a.peak or spec_peak(name)
    tf = flops / (mean * 1e-3) / 1e12
    print(f"reference eager step ({name}, {a.size}x{a.size}, S={seq}): {mean:.1f} ms mean, "
          f"{min(times):.1f} ms best, {tf:.1f} TFLOP/s"
          + (f", MFU {100 * tf / peak:.1f}% of {peak:.0f}" if peak else ""))
    print("json: " + json.dumps({"device": name, "size": a.size, "layers": a.layers, "seq": seq,
                                 "step_ms": round(mean, 3), "step_tflop": round(flops / 1e12, 4),
                                 "spec_peak_tflops": peak, "torch": torch.__version__}))
    assert math.isfinite(mean)


if __name__ == "__main__":
    main()
