#!/usr/bin/env python3
"""Builds the tiny Wan2.1 text-to-video pipeline (models/wan-tiny) and the reference runs of
diffusers' WanPipeline that tests/test_pipeline_wan.c checks omnigen's og_generate against.

models/wan-tiny is a WanPipeline folder in the released layout (model_index.json, tokenizer/,
text_encoder/, transformer/, vae/, scheduler/) with random weights:
  tokenizer     the tiny SentencePiece-Unigram umT5 tokenizer of tools/make_wan_umt5_fixtures.py
                (its build_tokenizer / tokenizer_folder, imported), as a T5TokenizerFast
  text_encoder  UMT5EncoderModel d_model 32 (= text_dim), 2 layers, 4 heads x 8, d_ff 48
  transformer   MODELS.md's tiny WanTransformer3DModel: 2 heads x 12, in/out 16, text_dim 32,
                ffn 32, 2 layers, rope_max_seq_len 32 (norms jittered)
  vae           MODELS.md's tiny AutoencoderKLWan: base_dim 3, z 16, mult [1,1,1,1]
  scheduler     UniPCMultistepScheduler with the released Wan2.1 scheduler_config.json

tests/fixtures/wan/pipeline/reference.safetensors holds, per case <c> (meta.json: the arguments):
  <c>.init    [16, T, H/8, W/8]  the injected initial latents (torch noise; omnigen's differs)
  <c>.final   [16, T, H/8, W/8]  the latents after the last step (before the VAE)
  <c>.frames  [F, H, W, 3]       the output frames, output_type "np" (f32 in [0, 1])
Cases: "cfg"   48x32 (HxW), 5 frames, 3 steps, guidance 5.0 with a negative prompt
       "plain" 32x48, 1 frame, 2 steps, guidance 1.0 (no guidance in WanPipeline)
       "euler" 32x32, 9 frames, 3 steps, guidance 4.0, on tests/fixtures/wan/pipeline/euler/: the
               same model with FlowMatchEulerDiscreteScheduler (shift 3) instead of UniPC; its
               components are relative symlinks to models/wan-tiny
Seeds are fixed; fp32 on the CPU. Run from anywhere: python3 tools/make_wan_fixtures.py
"""
import json
import os
import shutil
import sys
import tempfile

import torch
from safetensors.torch import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from make_wan_umt5_fixtures import (build_tokenizer, tiny_umt5_encoder,  # noqa: E402
                                    tokenizer_folder)

MODEL = os.path.join(ROOT, "models", "wan-tiny")
OUT = os.path.join(ROOT, "tests", "fixtures", "wan", "pipeline")

SCHEDULER = {
    "beta_end": 0.02, "beta_schedule": "linear", "beta_start": 0.0001, "disable_corrector": [],
    "dynamic_thresholding_ratio": 0.995, "final_sigmas_type": "zero", "flow_shift": 3.0,
    "lower_order_final": True, "num_train_timesteps": 1000, "predict_x0": True,
    "prediction_type": "flow_prediction", "rescale_betas_zero_snr": False,
    "sample_max_value": 1.0, "solver_order": 2, "solver_p": None, "solver_type": "bh2",
    "steps_offset": 0, "thresholding": False, "timestep_spacing": "linspace",
    "trained_betas": None, "use_beta_sigmas": False, "use_exponential_sigmas": False,
    "use_flow_sigmas": True, "use_karras_sigmas": False,
}

CASES = {
    "cfg": dict(prompt="  a red fox\n running in   the snow ", negative_prompt="blurry, static",
                height=48, width=32, num_frames=5, num_inference_steps=3, guidance_scale=5.0,
                seed=1),
    "plain": dict(prompt="slow motion waves at sunset", negative_prompt=None, height=32, width=48,
                  num_frames=1, num_inference_steps=2, guidance_scale=1.0, seed=2),
}

EULER_CASE = dict(prompt="a lighthouse at night", negative_prompt="daylight", height=32, width=32,
                  num_frames=9, num_inference_steps=3, guidance_scale=4.0, seed=3)


def euler_folder():
    """tests/fixtures/wan/pipeline/euler: model_index.json and scheduler/ of its own, the other
    components linked to models/wan-tiny."""
    from diffusers import FlowMatchEulerDiscreteScheduler
    d = os.path.join(OUT, "euler")
    if os.path.lexists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    with open(os.path.join(MODEL, "model_index.json")) as f:
        index = json.load(f)
    index["scheduler"] = ["diffusers", "FlowMatchEulerDiscreteScheduler"]
    with open(os.path.join(d, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)
    FlowMatchEulerDiscreteScheduler(shift=3.0).save_pretrained(os.path.join(d, "scheduler"))
    for c in ("tokenizer", "text_encoder", "transformer", "vae"):
        os.symlink(os.path.relpath(os.path.join(MODEL, c), d), os.path.join(d, c))
    return d


def jitter_(model, seed, names):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if any(k in name for k in names) and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif any(k in name for k in names) and name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "scale_shift_table" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


def build_pipeline(tmp):
    from diffusers import (AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline,
                           WanTransformer3DModel)
    from transformers import T5TokenizerFast
    tok, vocab_size = build_tokenizer(tmp)
    tokdir = os.path.join(tmp, "tokenizer")
    tokenizer_folder(tok, tokdir)
    tokenizer = T5TokenizerFast.from_pretrained(tokdir)

    text_encoder = tiny_umt5_encoder(vocab_size)

    torch.manual_seed(1)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16,
        out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=None, added_kv_proj_dim=None,
        rope_max_seq_len=32).eval()
    jitter_(transformer, 11, [".norm"])

    torch.manual_seed(2)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1).eval()
    jitter_(vae, 12, ["gamma"])

    scheduler = UniPCMultistepScheduler(**SCHEDULER)
    return WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer,
                       vae=vae, scheduler=scheduler)


def run_case(pipe, name, c, tensors):
    from diffusers import WanPipeline  # noqa: F401
    T = (c["num_frames"] - 1) // 4 + 1
    shape = (1, 16, T, c["height"] // 8, c["width"] // 8)
    init = torch.randn(shape, generator=torch.Generator().manual_seed(c["seed"]))
    final = {}

    def grab(_pipe, i, t, kw):
        final["x"] = kw["latents"].detach().clone()
        return kw

    with torch.no_grad():
        frames = pipe(prompt=c["prompt"], negative_prompt=c["negative_prompt"], height=c["height"],
                      width=c["width"], num_frames=c["num_frames"],
                      num_inference_steps=c["num_inference_steps"],
                      guidance_scale=c["guidance_scale"], latents=init.clone(), output_type="np",
                      max_sequence_length=512, callback_on_step_end=grab,
                      callback_on_step_end_tensor_inputs=["latents"], return_dict=False)[0]
    tensors[name + ".init"] = init[0].float().contiguous()
    tensors[name + ".final"] = final["x"][0].float().contiguous()
    tensors[name + ".frames"] = torch.from_numpy(frames[0]).float().contiguous()


def main():
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    with tempfile.TemporaryDirectory() as tmp:
        pipe = build_pipeline(tmp)
        if os.path.lexists(MODEL):
            shutil.rmtree(MODEL)
        pipe.save_pretrained(MODEL, safe_serialization=True)
    from diffusers import WanPipeline
    pipe = WanPipeline.from_pretrained(MODEL, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    os.makedirs(OUT, exist_ok=True)
    tensors = {}
    for name, c in CASES.items():
        run_case(pipe, name, c, tensors)
    euler = WanPipeline.from_pretrained(euler_folder(), torch_dtype=torch.float32)
    euler.set_progress_bar_config(disable=True)
    run_case(euler, "euler", EULER_CASE, tensors)
    save_file(tensors, os.path.join(OUT, "reference.safetensors"))
    with open(os.path.join(OUT, "meta.json"), "w", encoding="utf-8") as f:
        json.dump({"model": "models/wan-tiny", "cases": dict(CASES, euler=EULER_CASE),
                   "euler_model": "tests/fixtures/wan/pipeline/euler"}, f, indent=1)
    print("wrote", MODEL, "and", OUT)


if __name__ == "__main__":
    main()
