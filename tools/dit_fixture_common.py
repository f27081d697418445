"""Helpers the transformer fixture scripts share (tools/make_wan_dit_fixtures.py,
tools/make_qwenimage_dit_fixtures.py): storing a tiny model in the released folder layout."""
import os

import torch
from safetensors.torch import save_file


def round_weights_(model, dtype):
    """Rounds every parameter to dtype and back, so the reference computes with the weights as
    stored."""
    if dtype != torch.float32:
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(dtype).float())


def save_model(model, out_dir, dtype, shard):
    """config.json and the weights: save_pretrained for fp32 (60 KB shards with an index when
    shard), else one diffusion_pytorch_model.safetensors in dtype."""
    os.makedirs(out_dir, exist_ok=True)
    if dtype == torch.float32:
        kw = {"max_shard_size": "60KB"} if shard else {}
        model.save_pretrained(out_dir, safe_serialization=True, **kw)
        return
    model.save_config(out_dir)
    sd = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(out_dir, "diffusion_pytorch_model.safetensors"),
              metadata={"format": "pt"})
