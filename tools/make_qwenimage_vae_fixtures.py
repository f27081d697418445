#!/usr/bin/env python3
"""Builds tiny random-weight Qwen-Image VAEs (diffusers AutoencoderKLQwenImage) and the reference
decodes omnigen's Wan-shaped VAE decoder and Qwen-Image latent packing are tested against
(tests/test_qwenimage_vae.c).

Each variant is a real AutoencoderKLQwenImage saved in the released folder layout (config.json +
diffusion_pytorch_model.safetensors, the checkpoint's key names), plus cases.safetensors with, per
case <c> (an image request of H x W pixels, latents h x w = 2 * (H // (2 f)) as the pipeline
rounds them):
  <c>.size          [2] int64   the requested pixel height and width
  <c>.noise         [16, h, w]  prepare_latents' normal noise ([1, 1, 16, h, w] in the pipeline)
  <c>.noise_packed  [N, 64]     QwenImagePipeline._pack_latents of it (N = h/2 * w/2)
  <c>.tokens        [N, 64]     sampler-output tokens (random normal, another draw)
  <c>.latents       [16, 1, h, w]  QwenImagePipeline._unpack_latents(tokens, H, W, f)
  <c>.z             [16, 1, h, w]  the pipeline's unscale:
                                   latents / (1 / latents_std) + latents_mean
  <c>.decoded       [3, f h, f w]  vae.decode(z)[0][:, :, 0] (clamped to [-1, 1])
  <c>.image         [3, f h, f w]  image_processor.postprocess(decoded, "pt"): in [0, 1]
  <c>.image_u8      [f h, f w, 3]  image_processor.postprocess(decoded, "pil") as bytes
The pipeline object (QwenImagePipeline with only its VAE) gives vae_scale_factor, the
image_processor and the pack/unpack static methods; the unscale is its __call__'s expression.
As a check of the claim that the decoder is AutoencoderKLWan's, every case is also decoded by an
AutoencoderKLWan holding the same weights, and must agree bit for bit.

Variants (tests/fixtures/qwenimage/vae/<variant>/):
  tiny   base_dim 3, the released structure otherwise (dim_mult [1,2,4,4], 2 res blocks,
         temperal_downsample [False,True,True], f = 8); the whole model (encoder too) in fp32 via
         save_pretrained, as released; cases 40x56 (4x6 latents) and 37x16 (4x2)
  base4  base_dim 4, released structure, decoder-only (post_quant_conv + decoder.*) weights stored
         in bf16; case 33x80 (4x10)
  short  base_dim 6, dim_mult [1,2,2], 1 res block, temperal_downsample [False, True] (f = 4),
         its own latents_mean / latents_std, decoder-only fp32; case 24x20 (6x4)
Seeds are fixed; rerunning reproduces the files (CPU, fp32).

    python3 tools/make_qwenimage_vae_fixtures.py       # from the repository root
"""
import copy
import os
import sys

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
# the random weights (randomize_, also used by make_qwenimage_fixtures.py), the folder layout,
# the variant builder and the command line are the Wan2.1 VAE fixtures'
from make_wan_vae_fixtures import build_variant, randomize_, start  # noqa: E402,F401


def wan_twin(vae):
    """An AutoencoderKLWan with the same configuration and weights."""
    from diffusers import AutoencoderKLWan
    c = vae.config
    wan = AutoencoderKLWan(base_dim=c.base_dim, z_dim=c.z_dim, dim_mult=list(c.dim_mult),
                           num_res_blocks=c.num_res_blocks, attn_scales=list(c.attn_scales),
                           temperal_downsample=list(c.temperal_downsample), dropout=c.dropout,
                           in_channels=c.input_channels, out_channels=c.input_channels,
                           latents_mean=list(c.latents_mean), latents_std=list(c.latents_std))
    wan.load_state_dict(vae.state_dict(), strict=True)
    return wan.eval()


def make_cases(vae, cases, seed):
    from diffusers import QwenImagePipeline
    pipe = QwenImagePipeline(scheduler=None, vae=vae, text_encoder=None, tokenizer=None,
                             transformer=None)
    wan = wan_twin(vae)
    vae64 = copy.deepcopy(vae).double()
    f = pipe.vae_scale_factor
    z_dim = vae.config.z_dim
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, (H, W) in cases.items():
        h, w = 2 * (H // (f * 2)), 2 * (W // (f * 2))  # prepare_latents' rounding
        noise = torch.randn((1, 1, z_dim, h, w), generator=g)
        packed = pipe._pack_latents(noise, 1, z_dim, h, w)
        tokens = torch.randn(packed.shape, generator=g)
        # QwenImagePipeline.__call__'s decode step (output_type != "latent")
        latents = pipe._unpack_latents(tokens, H, W, pipe.vae_scale_factor)
        latents = latents.to(pipe.vae.dtype)
        mean = torch.tensor(vae.config.latents_mean).view(1, z_dim, 1, 1, 1).to(latents.dtype)
        std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z_dim, 1, 1, 1).to(latents.dtype)
        z = latents / std + mean
        with torch.no_grad():
            decoded = pipe.vae.decode(z, return_dict=False)[0][:, :, 0]
            twin = wan.decode(z, return_dict=False)[0][:, :, 0]
        assert torch.equal(decoded, twin), f"{name}: AutoencoderKLWan decodes differently"
        # how far fp32 itself is from exact: the test's tolerance must allow it
        with torch.no_grad():
            d64 = vae64.decode(z.double(), return_dict=False)[0][:, :, 0]
        err32 = ((decoded.double() - d64).abs().max() / d64.abs().max()).item()
        image = pipe.image_processor.postprocess(decoded, output_type="pt")
        pil = pipe.image_processor.postprocess(decoded, output_type="pil")[0]
        u8 = torch.from_numpy(np.array(pil))
        clamped = (decoded.abs() >= 1.0).float().mean().item()
        print(f"  {name}: {H}x{W} px -> tokens {tuple(tokens.shape[1:])} -> latents "
              f"{tuple(latents.shape[1:])} -> image {tuple(decoded.shape[1:])}, "
              f"std {decoded.std().item():.3f}, clamped {100 * clamped:.1f}%, "
              f"fp32 vs fp64 {err32:.2g}")
        out[f"{name}.size"] = torch.tensor([H, W], dtype=torch.int64)
        out[f"{name}.noise"] = noise[0, 0].contiguous()
        out[f"{name}.noise_packed"] = packed[0].contiguous()
        out[f"{name}.tokens"] = tokens[0].contiguous()
        out[f"{name}.latents"] = latents[0].contiguous()
        out[f"{name}.z"] = z[0].contiguous()
        out[f"{name}.decoded"] = decoded[0].contiguous()
        out[f"{name}.image"] = image[0].contiguous()
        out[f"{name}.image_u8"] = u8.contiguous()
    return out


def build(root, name, cfg, seed, out_gain, full, dtype, cases):
    from diffusers import AutoencoderKLQwenImage
    build_variant(AutoencoderKLQwenImage, make_cases, root, name, cfg, seed, out_gain, full, dtype,
                  cases)


def main():
    out = start(__doc__, "qwenimage")

    build(out, "tiny", dict(base_dim=3, z_dim=16), seed=40, out_gain=3.0, full=True,
          dtype=torch.float32, cases={"a": (40, 56), "b": (37, 16)})
    build(out, "base4", dict(base_dim=4, z_dim=16), seed=50, out_gain=1.0, full=False,
          dtype=torch.bfloat16, cases={"a": (33, 80)})
    g = torch.Generator().manual_seed(60)
    mean = [round(x, 4) for x in torch.randn(16, generator=g).tolist()]
    std = [round(0.5 + x, 4) for x in torch.rand(16, generator=g).tolist()]
    build(out, "short", dict(base_dim=6, z_dim=16, dim_mult=[1, 2, 2], num_res_blocks=1,
                             temperal_downsample=[False, True], latents_mean=mean,
                             latents_std=std),
          seed=60, out_gain=1.5, full=False, dtype=torch.float32, cases={"a": (24, 20)})


if __name__ == "__main__":
    main()
