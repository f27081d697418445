"""Writes a Wan2.1-sized AutoencoderKLWan decoder (the released config: base_dim 96, z_dim 16,
dim_mult [1,2,4,4], 2 res blocks, temperal_downsample [False,True,True]) with random f32 weights
into a diffusers vae/ folder, decoder-only (post_quant_conv + decoder.*), for bench_wan_vae:
python bench/make_wan_vae.py /tmp/wan_vae"""
import os
import sys

import torch
from diffusers import AutoencoderKLWan
from safetensors.torch import save_file

out = sys.argv[1]
torch.manual_seed(0)
vae = AutoencoderKLWan()
vae.save_config(out)
weights = {k: v.contiguous() for k, v in vae.state_dict().items()
           if k.startswith("decoder.") or k.startswith("post_quant_conv.")}
save_file(weights, os.path.join(out, "diffusion_pytorch_model.safetensors"),
          metadata={"format": "pt"})
