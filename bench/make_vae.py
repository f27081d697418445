"""Writes a FLUX-sized AutoencoderKL decoder with random bf16 weights (the released Z-Image VAE's
shape: block_out 128/256/512/512, 2 layers per block, 16 latent channels, 32 groups) into a
diffusers vae/ folder, for bench_vae: python bench/make_vae.py /tmp/flux_vae"""
import json
import os
import sys

import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

out = sys.argv[1]
torch.manual_seed(0)
vae = AutoencoderKL(
    in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512],
    layers_per_block=2, latent_channels=16, norm_num_groups=32, scaling_factor=0.3611,
    shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False)
os.makedirs(out, exist_ok=True)
weights = {k: v.to(torch.bfloat16).contiguous() for k, v in vae.state_dict().items()
           if not k.startswith("encoder.")}
save_file(weights, os.path.join(out, "diffusion_pytorch_model.safetensors"))
config = {k: v for k, v in vae.config.items() if not k.startswith("_use")}
config["_class_name"] = "AutoencoderKL"
with open(os.path.join(out, "config.json"), "w") as f:
    json.dump(config, f, indent=2, default=list)
