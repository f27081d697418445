#!/usr/bin/env python3
"""Builds tiny random-weight Wan2.1 VAEs (diffusers AutoencoderKLWan) and the reference decodes
omnigen's Wan VAE decoder is tested against (tests/test_wan_vae.c).

Each variant is a real AutoencoderKLWan saved in the released folder layout (config.json +
diffusion_pytorch_model.safetensors, the checkpoint's key names), plus cases.safetensors with, per
case <c>:
  <c>.latents   [16, T, h, w]  sampler-space latents (random normal)
  <c>.z         [16, T, h, w]  the pipeline's unscale: latents / (1 / latents_std) + latents_mean
  <c>.video     [3, F, H, W]   vae.decode(z).sample[0] (clamped to [-1, 1]), F = 1 + s_t (T - 1)
  <c>.video_u8  [F, H, W, 3]   VideoProcessor.postprocess_video(video, "np") * 255, rounded (the PIL
                               path's bytes)

Variants (tests/fixtures/wan/vae/<variant>/):
  tiny  base_dim 3, mult [1,1,1,1], 1 res block (the reference's own test config); the whole
        model (encoder too) in fp32, as released; cases T=1 4x6, T=3 3x5
  wide  base_dim 8, mult [1,2,2,2]: channel changes (shortcuts) in every up block; weights stored
        in bf16 and decoder-only (post_quant_conv + decoder.*) to stay small; cases T=1 5x7,
        T=3 5x7
  t2    base_dim 4, mult [1,2,2], 2 res blocks, temperal_downsample [True, False]: three blocks
        (4x in space) and the time upsample in the second up block only (F = 1 + 2 (T - 1)); its own
        latents_mean / latents_std in the config; decoder-only fp32; case T=3 3x4
Seeds are fixed; rerunning reproduces the files (CPU, fp32).

    python3 tools/make_wan_vae_fixtures.py            # from the repository root
"""
import argparse
import os
import shutil

import torch
from safetensors.torch import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def randomize_(vae, seed, out_gain):
    """Default init leaves gammas at 1 and biases at 0, which would hide a swapped norm or a
    dropped bias: jitter them. conv_out is scaled so that few outputs hit the [-1, 1] clamp."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if name.endswith("gamma"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
        vae.decoder.conv_out.weight.mul_(out_gain)


def decoder_state(vae):
    return {k: v for k, v in vae.state_dict().items()
            if k.startswith("decoder.") or k.startswith("post_quant_conv.")}


def save_vae(vae, out_dir, full, dtype):
    """Writes config.json and the weights: everything (full) or only what decoding reads."""
    os.makedirs(out_dir, exist_ok=True)
    if full and dtype == torch.float32:
        vae.save_pretrained(out_dir, safe_serialization=True)
        return
    vae.save_config(out_dir)
    sd = vae.state_dict() if full else decoder_state(vae)
    sd = {k: v.detach().to(dtype).contiguous() for k, v in sd.items()}
    save_file(sd, os.path.join(out_dir, "diffusion_pytorch_model.safetensors"),
              metadata={"format": "pt"})


def make_cases(vae, cases, seed):
    from diffusers.video_processor import VideoProcessor
    proc = VideoProcessor(vae_scale_factor=8)
    g = torch.Generator().manual_seed(seed)
    z_dim = vae.config.z_dim
    out = {}
    for name, (t, h, w) in cases.items():
        latents = torch.randn((1, z_dim, t, h, w), generator=g)
        # WanPipeline.__call__: latents / (1 / std) + mean, in the latents' dtype (fp32)
        mean = torch.tensor(vae.config.latents_mean).view(1, z_dim, 1, 1, 1).to(latents.dtype)
        std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z_dim, 1, 1, 1).to(latents.dtype)
        z = latents / std + mean
        with torch.no_grad():
            video = vae.decode(z, return_dict=False)[0]
        frames = proc.postprocess_video(video, output_type="np")[0]  # [F, H, W, 3] in [0, 1]
        u8 = torch.from_numpy((frames * 255).round().astype("uint8"))
        clamped = (video.abs() >= 1.0).float().mean().item()
        print(f"  {name}: latents {tuple(latents.shape[1:])} -> video {tuple(video.shape[1:])}, "
              f"std {video.std().item():.3f}, clamped {100 * clamped:.1f}%")
        out[f"{name}.latents"] = latents[0].contiguous()
        out[f"{name}.z"] = z[0].contiguous()
        out[f"{name}.video"] = video[0].contiguous()
        out[f"{name}.video_u8"] = u8.contiguous()
    return out


def build_variant(cls, make_cases, root, name, cfg, seed, out_gain, full, dtype, cases):
    """One variant folder root/name: a random-weight cls(**cfg) saved as vae/ (weights rounded to
    dtype first when that is not fp32) and make_cases(vae, cases, seed + 2) as cases.safetensors.
    Shared with tools/make_qwenimage_vae_fixtures.py."""
    torch.manual_seed(seed)
    vae = cls(**cfg).eval()
    randomize_(vae, seed + 1, out_gain)
    if dtype != torch.float32:  # the reference computes in fp32 with the stored values
        with torch.no_grad():
            for p in vae.parameters():
                p.copy_(p.to(dtype).float())
    vdir = os.path.join(root, name)
    save_vae(vae, os.path.join(vdir, "vae"), full, dtype)
    if full:  # the reference decodes with the model as loaded from the saved folder
        vae = cls.from_pretrained(os.path.join(vdir, "vae")).eval()
    print(f"{name}:")
    save_file(make_cases(vae, cases, seed + 2), os.path.join(vdir, "cases.safetensors"))
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(vdir) for f in fs)
    print(f"  {total / 1024:.0f} KiB")


def build(root, name, cfg, seed, out_gain, full, dtype, cases):
    from diffusers import AutoencoderKLWan
    build_variant(AutoencoderKLWan, make_cases, root, name, cfg, seed, out_gain, full, dtype,
                  cases)


def start(doc, model):
    """The fixture scripts' common start: parses --root, makes torch deterministic and returns
    the fixture folder <root>/tests/fixtures/<model>/vae, emptied. Shared with
    tools/make_qwenimage_vae_fixtures.py."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--root", default=ROOT, help="repository root to write into")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    torch.use_deterministic_algorithms(True)
    out = os.path.join(args.root, "tests", "fixtures", model, "vae")
    if os.path.lexists(out):
        shutil.rmtree(out)
    return out


def main():
    out = start(__doc__, "wan")

    build(out, "tiny", dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1),
          seed=10, out_gain=1.0, full=True, dtype=torch.float32,
          cases={"t1": (1, 4, 6), "t3": (3, 3, 5)})
    build(out, "wide", dict(base_dim=8, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1),
          seed=20, out_gain=0.7, full=False, dtype=torch.bfloat16,
          cases={"t1": (1, 5, 7), "t3": (3, 5, 7)})
    g = torch.Generator().manual_seed(30)
    build(out, "t2", dict(base_dim=4, z_dim=16, dim_mult=[1, 2, 2], num_res_blocks=2,
                          temperal_downsample=[True, False],
                          latents_mean=[round(x, 4) for x in torch.randn(16, generator=g).tolist()],
                          latents_std=[round(0.5 + x, 4) for x in torch.rand(16, generator=g).tolist()]),
          seed=30, out_gain=1.0, full=False, dtype=torch.float32, cases={"t3": (3, 3, 4)})


if __name__ == "__main__":
    main()
