#!/usr/bin/env python3
"""Builds tiny random-weight Qwen-Image transformers (diffusers QwenImageTransformer2DModel) and
the reference forward outputs omnigen's Qwen-Image DiT is tested against
(tests/test_qwenimage_dit.c, tests/test_qwenimage_dit_sp.c).

Each variant (tests/fixtures/qwenimage/dit/<variant>/) holds transformer/ in the released folder
layout (config.json + diffusion_pytorch_model.safetensors, or shards with an index) and
reference.safetensors with, per case <c>:
  <c>.x     [hp*wp, in_channels]        packed latent tokens (random normal), rows (y, x)
  <c>.grid  [2]                         hp, wp: the token grid (img_shapes [(1, hp, wp)])
  <c>.t     [1]                         the timestep passed to the model (sigma in [0, 1])
  <c>.text  [L, joint_attention_dim]    text encoder output (random normal)
  <c>.mask  [L]                         encoder_hidden_states_mask (1 valid, 0 padding); absent
                                        when the case passes no mask
  <c>.out   [hp*wp, out_channels*4]     transformer(...).sample[0], fp32

Variants:
  tiny  MODELS.md's tiny config: 2 layers, 3 heads x 16, in 16, out 4, joint dim 16, axes
        (8, 4, 4); cases 4x4 tokens with 6 text tokens, no mask, and 2x3 tokens with 5 text
        tokens masked 1 1 0 1 0
  h5    5 heads x 8, axes (4, 2, 2), in 12, out 3, joint dim 20, 2 layers, shards with an index;
        cases 3x5 tokens (a 6x10 latent) with 7 text tokens, and 5x2 tokens with 11 text tokens
        masked 1 0 1 1 1 0 1 1 1 0 0
  bf16  the tiny config with weights stored in bf16; 3x3 tokens, 9 text tokens
Seeds are fixed; rerunning reproduces the files (CPU, fp32 compute).

    python3 tools/make_qwenimage_dit_fixtures.py       # from the repository root
"""
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from diffusers import QwenImageTransformer2DModel

from dit_fixture_common import round_weights_, save_model

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "qwenimage", "dit")


def randomize_(model, seed):
    """Default init leaves norm weights at 1 and zero-initialises nothing visible; jitter the
    norms so a swapped or dropped one shows, and enlarge the modulation so gates matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight") and p.ndim == 1:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif "_mod." in name or "norm_out.linear" in name:
                p.copy_(p * 4.0 + 0.05 * torch.randn(p.shape, generator=g))


def make_variant(name, config, cases, dtype=torch.float32, shard=False, seed=0):
    torch.manual_seed(seed)
    model = QwenImageTransformer2DModel(**config).eval()
    randomize_(model, seed + 1)
    round_weights_(model, dtype)
    vdir = os.path.join(OUT, name)
    shutil.rmtree(vdir, ignore_errors=True)
    save_model(model, os.path.join(vdir, "transformer"), dtype, shard)
    g = torch.Generator().manual_seed(seed + 2)
    tensors = {}
    for cname, (hp, wp, L, t, mask) in cases.items():
        x = torch.randn((1, hp * wp, config["in_channels"]), generator=g)
        text = torch.randn((1, L, config["joint_attention_dim"]), generator=g)
        ts = torch.tensor([t], dtype=torch.float32)
        m = None if mask is None else torch.tensor([mask], dtype=torch.float32)
        with torch.no_grad():
            out = model(hidden_states=x, encoder_hidden_states=text,
                        encoder_hidden_states_mask=m, timestep=ts,
                        img_shapes=[(1, hp, wp)]).sample
        tensors[cname + ".x"] = x[0].contiguous()
        tensors[cname + ".grid"] = torch.tensor([hp, wp], dtype=torch.float32)
        tensors[cname + ".t"] = ts
        tensors[cname + ".text"] = text[0].contiguous()
        if m is not None:
            tensors[cname + ".mask"] = m[0].contiguous()
        tensors[cname + ".out"] = out[0].contiguous()
    save_file(tensors, os.path.join(vdir, "reference.safetensors"))
    with open(os.path.join(vdir, "meta.json"), "w") as fh:
        json.dump({"cases": list(cases.keys())}, fh)
        fh.write("\n")
    print(name, "written:", ", ".join(cases.keys()))


def main():
    tiny = dict(patch_size=2, in_channels=16, out_channels=4, num_layers=2,
                attention_head_dim=16, num_attention_heads=3, joint_attention_dim=16,
                axes_dims_rope=(8, 4, 4))
    make_variant("tiny", tiny,
                 {"a": (4, 4, 6, 0.93, None), "b": (2, 3, 5, 0.0375, [1, 1, 0, 1, 0])},
                 seed=10)
    make_variant("h5", dict(patch_size=2, in_channels=12, out_channels=3, num_layers=2,
                            attention_head_dim=8, num_attention_heads=5,
                            joint_attention_dim=20, axes_dims_rope=(4, 2, 2)),
                 {"a": (3, 5, 7, 0.5, None),
                  "b": (5, 2, 11, 0.71, [1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0])},
                 shard=True, seed=20)
    make_variant("bf16", tiny, {"a": (3, 3, 9, 0.25, None)},
                 dtype=torch.bfloat16, seed=30)


if __name__ == "__main__":
    main()
