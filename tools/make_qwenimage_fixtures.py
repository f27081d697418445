#!/usr/bin/env python3
"""Builds the tiny random-weight Qwen-Image pipeline (models/qwenimage-tiny, diffusers
QwenImagePipeline in the released folder layout) and the end-to-end reference runs omnigen's
Qwen-Image pipeline is tested against (tests/test_pipeline_qwenimage.c).

The components come from the component fixture builders, imported rather than repeated:
  transformer   QwenImageTransformer2DModel, 4 heads x 8, axes (4, 2, 2), in 64, out 16,
                joint dim 32, 2 layers (make_qwenimage_dit_fixtures.randomize_)
  vae           AutoencoderKLQwenImage, base_dim 3, the released structure otherwise
                (make_qwenimage_vae_fixtures.randomize_), whole model in fp32
  text_encoder  Qwen2_5_VLForConditionalGeneration, hidden 32, 2 heads x 16, 1 kv head, 3 layers,
                tied embeddings (make_qwenimage_text_fixtures.build_encoder)
  tokenizer     the Z-Image fixture's byte-level BPE (models/zimage-tiny/tokenizer)
  scheduler     FlowMatchEulerDiscreteScheduler with the released Qwen/Qwen-Image scheduler
                config (dynamic exponential shift, base/max shift 0.5/0.9, image seq len
                256/8192, shift_terminal 0.02)

The reference is QwenImagePipeline.from_pretrained(models/qwenimage-tiny) in fp32 with injected
initial latents (torch's RNG is not omnigen's), per case under
tests/fixtures/qwenimage/pipeline/<case>/:
  meta.json               the request (prompt, negative_prompt, size, steps, true_cfg_scale,
                          max_sequence_length), the schedule and mu
  reference.safetensors   latents_init [16, h, w] (the noise; the pipeline gets its
                          _pack_latents), sigmas [steps + 1], timesteps [steps],
                          latents_final [16, h, w] (_unpack_latents of the loop's last latents),
                          image_u8 [H, W, 3] (the PIL output)
Cases: base (32x32, 3 steps, no negative prompt: no CFG even at scale 4), cfg (48 wide x 32 high,
2 steps, a negative prompt and true_cfg_scale 4: true CFG with the norm rescale).
schedules.safetensors: for (N, image tokens) in SCHEDULES, linspace_<N> = np.linspace(1, 1/N, N)
cast to float32, and sigmas_<N>_<tokens> / timesteps_<N>_<tokens> = the scheduler's after
retrieve_timesteps(sigmas=that, mu=calculate_shift(tokens)), as __call__ computes them.

    python3 tools/make_qwenimage_fixtures.py       # from the repository root
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_qwenimage_dit_fixtures as dit_fx  # noqa: E402
import make_qwenimage_text_fixtures as text_fx  # noqa: E402
import make_qwenimage_vae_fixtures as vae_fx  # noqa: E402

MODEL = os.path.join(ROOT, "models", "qwenimage-tiny")
OUT = os.path.join(ROOT, "tests", "fixtures", "qwenimage", "pipeline")

# scheduler/scheduler_config.json of Qwen/Qwen-Image (its non-default values).
SCHEDULER = dict(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=True, base_shift=0.5,
                 max_shift=0.9, base_image_seq_len=256, max_image_seq_len=8192,
                 shift_terminal=0.02, time_shift_type="exponential", invert_sigmas=False)

SCHEDULES = [(50, 4096), (28, 1024), (7, 6), (13, 16384)]

CASES = [
    # (name, prompt, negative_prompt, height, width, steps, true_cfg_scale, seed)
    ("base", "a red fox in the snow", None, 32, 32, 3, 4.0, 1),
    ("cfg", "a lighthouse in a storm, oil painting", "blurry, low quality", 32, 48, 2, 4.0, 2),
]


def build_model():
    from diffusers import (AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler,
                           QwenImageTransformer2DModel)
    from transformers import AutoTokenizer
    tok_dir = text_fx.TOKENIZER
    tok = AutoTokenizer.from_pretrained(tok_dir)
    if os.path.lexists(MODEL):
        shutil.rmtree(MODEL)
    os.makedirs(MODEL)
    torch.manual_seed(700)
    tr = QwenImageTransformer2DModel(patch_size=2, in_channels=64, out_channels=16, num_layers=2,
                                     attention_head_dim=8, num_attention_heads=4,
                                     joint_attention_dim=32, axes_dims_rope=(4, 2, 2)).eval()
    dit_fx.randomize_(tr, 701)
    tr.save_pretrained(os.path.join(MODEL, "transformer"), safe_serialization=True)
    torch.manual_seed(710)
    vae = AutoencoderKLQwenImage(base_dim=3, z_dim=16).eval()
    vae_fx.randomize_(vae, 711, 3.0)
    vae.save_pretrained(os.path.join(MODEL, "vae"), safe_serialization=True)
    te = text_fx.build_encoder(32, 2, 1, 64, 3, tie=True, seed=720, vocab=len(tok))
    te.save_pretrained(os.path.join(MODEL, "text_encoder"), safe_serialization=True)
    gen = os.path.join(MODEL, "text_encoder", "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)
    shutil.copytree(tok_dir, os.path.join(MODEL, "tokenizer"))
    FlowMatchEulerDiscreteScheduler(**SCHEDULER).save_pretrained(os.path.join(MODEL, "scheduler"))
    index = {
        "_class_name": "QwenImagePipeline",
        "_diffusers_version": "0.42.1",
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "Qwen2_5_VLForConditionalGeneration"],
        "tokenizer": ["transformers", "Qwen2Tokenizer"],
        "transformer": ["diffusers", "QwenImageTransformer2DModel"],
        "vae": ["diffusers", "AutoencoderKLQwenImage"],
    }
    with open(os.path.join(MODEL, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


def run_case(pipe, name, prompt, negative, H, W, steps, scale, seed):
    f = pipe.vae_scale_factor
    h, w = 2 * (H // (f * 2)), 2 * (W // (f * 2))
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn((1, 1, 16, h, w), generator=g)
    packed = pipe._pack_latents(noise, 1, 16, h, w)
    seen = {}

    def grab(p, i, t, kw):
        seen["latents"] = kw["latents"].clone()
        return kw

    with torch.no_grad():
        img = pipe(prompt=prompt, negative_prompt=negative, true_cfg_scale=scale, height=H,
                   width=W, num_inference_steps=steps, latents=packed.clone(),
                   max_sequence_length=512, output_type="pil", callback_on_step_end=grab,
                   callback_on_step_end_tensor_inputs=["latents"]).images[0]
    final = pipe._unpack_latents(seen["latents"], H, W, f)[0, :, 0]
    mu = dit_calc_mu(pipe, packed.shape[1])
    T = {"latents_init": noise[0, 0].contiguous(), "latents_final": final.contiguous(),
         "sigmas": pipe.scheduler.sigmas.float().contiguous(),
         "timesteps": pipe.scheduler.timesteps.float().contiguous(),
         "image_u8": torch.from_numpy(np.array(img)).contiguous()}
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    save_file(T, os.path.join(d, "reference.safetensors"))
    meta = {"model": os.path.relpath(MODEL, ROOT), "prompt": prompt, "width": W, "height": H,
            "steps": steps, "true_cfg_scale": scale, "max_sequence_length": 512, "mu": mu,
            "do_true_cfg": negative is not None and scale > 1}
    if negative is not None:
        meta["negative_prompt"] = negative
    with open(os.path.join(d, "meta.json"), "w") as fh:
        json.dump(meta, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    print(f"{name}: {W}x{H}, {steps} steps, tokens {packed.shape[1]}, mu {mu:.6f}, sigmas "
          f"{[round(s, 6) for s in T['sigmas'].tolist()]}, final std {final.std().item():.3f}")


def dit_calc_mu(pipe, seq_len):
    from diffusers.pipelines.qwenimage.pipeline_qwenimage import calculate_shift
    c = pipe.scheduler.config
    return calculate_shift(seq_len, c.get("base_image_seq_len", 256),
                           c.get("max_image_seq_len", 4096), c.get("base_shift", 0.5),
                           c.get("max_shift", 1.15))


def save_schedules(pipe):
    from diffusers.pipelines.qwenimage.pipeline_qwenimage import retrieve_timesteps
    T = {}
    for n, tokens in SCHEDULES:
        sig = np.linspace(1.0, 1 / n, n)
        retrieve_timesteps(pipe.scheduler, n, "cpu", sigmas=sig, mu=dit_calc_mu(pipe, tokens))
        T[f"linspace_{n}"] = torch.from_numpy(sig.astype(np.float32))
        T[f"sigmas_{n}_{tokens}"] = pipe.scheduler.sigmas.float().contiguous()
        T[f"timesteps_{n}_{tokens}"] = pipe.scheduler.timesteps.float().contiguous()
    save_file(T, os.path.join(OUT, "schedules.safetensors"))


def main():
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    torch.use_deterministic_algorithms(True)
    from diffusers import QwenImagePipeline
    build_model()
    if os.path.lexists(OUT):
        shutil.rmtree(OUT)
    pipe = QwenImagePipeline.from_pretrained(MODEL, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    for case in CASES:
        run_case(pipe, *case)
    save_schedules(pipe)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(MODEL) for f in fs)
    print(f"models/qwenimage-tiny: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
