#!/usr/bin/env python3
"""Builds tiny random-weight Wan2.1 transformers (diffusers WanTransformer3DModel, text-to-video)
and the reference forward outputs omnigen's Wan DiT is tested against (tests/test_wan_dit.c,
tests/test_wan_dit_sp.c).

Each variant (tests/fixtures/wan/dit/<variant>/) holds transformer/ in the released folder layout
(config.json + diffusion_pytorch_model.safetensors, or shards with an index) and
reference.safetensors with, per case <c>:
  <c>.x     [16, F, H, W]      latents (random normal)
  <c>.t     [1]                the pipeline's timestep (a float in [0, 1000])
  <c>.text  [L, text_dim]      text encoder output (random normal)
  <c>.out   [16, F, H, W]      transformer(x, t, text).sample[0], fp32

Variants:
  tiny  MODELS.md's tiny config: 2 heads x 12, in/out 16, text_dim 32, ffn 32, 2 layers,
        rope_max_seq_len 32, cross_attn_norm; cases 2x4x6 (12 tokens, 7 text tokens) and 1x2x2
        (1 token, 5 text tokens: more keys than queries)
  h5    5 heads x 12 (uneven over 2, 3 and 4 ranks), ffn 48, text_dim 20, odd latents 3x6x10
        (45 tokens) and 5x2x4 with 9 and 4 text tokens; saved as shards with an index
  plain 3 heads x 16 (RoPE split t 8, h 4, w 4), cross_attn_norm false, eps 1e-5, freq_dim 64,
        patch (1, 2, 2), 3 layers; weights stored in bf16; case 4x4x2 (8 tokens), 5 text tokens
Seeds are fixed; rerunning reproduces the files (CPU, fp32 compute).

    python3 tools/make_wan_dit_fixtures.py            # from the repository root
"""
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from diffusers import WanTransformer3DModel

from dit_fixture_common import round_weights_, save_model

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "wan", "dit")


def randomize_(model, seed):
    """Default init leaves every norm weight at 1 and norm biases at 0, which would hide a
    swapped or dropped norm: jitter them, and give the modulation tables a visible size."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif ".norm" in name and name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "scale_shift_table" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


def make_variant(name, config, cases, dtype=torch.float32, shard=False, seed=0):
    torch.manual_seed(seed)
    model = WanTransformer3DModel(**config).eval()
    randomize_(model, seed + 1)
    round_weights_(model, dtype)
    vdir = os.path.join(OUT, name)
    shutil.rmtree(vdir, ignore_errors=True)
    save_model(model, os.path.join(vdir, "transformer"), dtype, shard)
    g = torch.Generator().manual_seed(seed + 2)
    tensors = {}
    for cname, (f, h, w, L, t) in cases.items():
        x = torch.randn((1, config["in_channels"], f, h, w), generator=g)
        text = torch.randn((1, L, config["text_dim"]), generator=g)
        ts = torch.tensor([t], dtype=torch.float32)
        with torch.no_grad():
            out = model(hidden_states=x, timestep=ts, encoder_hidden_states=text).sample
        tensors[cname + ".x"] = x[0].contiguous()
        tensors[cname + ".t"] = ts
        tensors[cname + ".text"] = text[0].contiguous()
        tensors[cname + ".out"] = out[0].contiguous()
    save_file(tensors, os.path.join(vdir, "reference.safetensors"))
    with open(os.path.join(vdir, "meta.json"), "w") as fh:
        json.dump({"cases": list(cases.keys())}, fh)
        fh.write("\n")
    print(name, "written:", ", ".join(cases.keys()))


def main():
    base = dict(patch_size=(1, 2, 2), in_channels=16, out_channels=16, freq_dim=256,
                cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
                image_dim=None, added_kv_proj_dim=None, rope_max_seq_len=32)
    make_variant("tiny", dict(base, num_attention_heads=2, attention_head_dim=12, text_dim=32,
                              ffn_dim=32, num_layers=2),
                 {"a": (2, 4, 6, 7, 999.0), "b": (1, 2, 2, 5, 3.5)}, seed=10)
    make_variant("h5", dict(base, num_attention_heads=5, attention_head_dim=12, text_dim=20,
                            ffn_dim=48, num_layers=2),
                 {"a": (3, 6, 10, 9, 757.25), "b": (5, 2, 4, 4, 41.0)}, shard=True, seed=20)
    make_variant("plain", dict(base, num_attention_heads=3, attention_head_dim=16, text_dim=24,
                               ffn_dim=40, num_layers=3, cross_attn_norm=False, eps=1e-5,
                               freq_dim=64),
                 {"a": (4, 4, 2, 5, 500.0)}, dtype=torch.bfloat16, seed=30)


if __name__ == "__main__":
    main()
