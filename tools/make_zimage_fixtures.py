#!/usr/bin/env python3
"""Builds the tiny random-weight Z-Image pipelines and the reference fixtures omnigen tests against.

Everything is made with the real classes (diffusers ZImagePipeline, ZImageTransformer2DModel,
AutoencoderKL, FlowMatchEulerDiscreteScheduler; transformers Qwen3Model and a byte-level BPE
tokenizer trained here with `tokenizers`) and saved in the released diffusers folder layout, so
omnigen's real loading code is the code under test. Seeds are fixed: rerunning reproduces the
same files (CPU, fp32).

Outputs (paths relative to the repository root):
  models/zimage-tiny/                 bundled tiny pipeline (6 heads x 8), fp32, also the model of
                                      the base, odd and cfg fixtures
  tests/fixtures/zimage/h30/model/    30 heads x 8 (dim 240) pipeline, transformer stored in bf16
  tests/fixtures/zimage/<variant>/    tensors.safetensors + meta.json + image.png per variant
  tests/fixtures/tokenizer/           corpus and reference ids (plain and chat-template encodes)
See tests/fixtures/zimage/README.md for what each tensor is.

    python3 tools/make_zimage_fixtures.py            # from the repository root
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

# The Qwen3 chat template (tokenizer_config.json of the Qwen3 release). The Z-Image pipeline
# renders it with add_generation_prompt=True, enable_thinking=True.
QWEN3_CHAT_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}"""

QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Added tokens in the order (and with the special flags) of the Qwen3 release; they get the ids
# right after the BPE vocabulary, as in the release.
QWEN3_ADDED_TOKENS = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
    ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False),
    ("</tool_call>", False), ("<|fim_prefix|>", False), ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False), ("<|fim_pad|>", False), ("<|repo_name|>", False),
    ("<|file_sep|>", False), ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False),
]

TRAIN_TEXT = """\
A photograph of a red fox sitting in the snow, golden hour light, shallow depth of field.
An oil painting of a lighthouse on a rocky coast during a storm; waves crash against the rocks.
A cat on a windowsill looking at the rain. The city lights are blurred in the background.
Portrait of an old sailor with a white beard, wearing a blue knitted hat, highly detailed, 8k.
A bowl of ramen with a soft boiled egg, green onions and chili oil, studio lighting, top view.
The quick brown fox jumps over the lazy dog. It's 12:45 and we're going to the market at 3pm.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 2024 3.14159 42% $19.99 #hashtag @user
Code: def main(argc, argv): return 0; for (int i = 0; i < n; i++) { x[i] += y[i] * 2; }
一只猫坐在窗台上，看着窗外的雨。城市的灯光在背景中模糊不清。
一幅为名为“造相「Z-IMAGE-TURBO」”的项目设计的创意海报。画面巧妙地将文字概念视觉化。
一辆复古蒸汽小火车化身为巨大的拉链头，正拉开厚厚的冬日积雪，展露出一个生机盎然的春天。
日本語のテキスト：桜の木の下で猫が寝ている。東京タワーの夜景。
한국어 문장: 고양이가 창문 옆에 앉아 있습니다.
Emoji: 🐱🦊🌧️🌸✨🚂❄️👍🏽 café naïve résumé Ångström façade jalapeño Straße
"""


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- tokenizer

def build_tokenizer(out_dir, vocab_size=1000):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(dropout=None, unk_token=None, continuing_subword_prefix="",
                               end_of_word_suffix="", fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(QWEN3_ADDED_TOKENS),
                                  min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    lines = TRAIN_TEXT.splitlines(keepends=True) * 4
    tok.train_from_iterator(lines, trainer=trainer)
    for content, special in QWEN3_ADDED_TOKENS:
        t = AddedToken(content, single_word=False, lstrip=False, rstrip=False, normalized=False,
                       special=special)
        if special:
            tok.add_special_tokens([t])
        else:
            tok.add_tokens([t])
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))

    decoder = {}
    for content, special in QWEN3_ADDED_TOKENS:
        decoder[str(tok.token_to_id(content))] = {
            "content": content, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": special}
    cfg = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": [c for c, s in QWEN3_ADDED_TOKENS if s and c != "<|endoftext|>"],
        "bos_token": None,
        "chat_template": QWEN3_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
        f.write("\n")


# ---------------------------------------------------------------------------- models

def randomize_(module, seed, norm_jitter=0.1):
    """Default init leaves norms at 1 and pad tokens at 0, which would hide bugs (a swapped norm,
    an unused pad token): jitter every 1-D parameter and fill zero tensors with noise."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1 and name.endswith("weight"):
                p.copy_(1.0 + norm_jitter * torch.randn(p.shape, generator=g))
            elif p.ndim == 1 and name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            elif torch.count_nonzero(p) == 0:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))


def build_text_encoder(vocab_size, seed):
    from transformers import Qwen3Config, Qwen3Model
    cfg = Qwen3Config(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=96, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, hidden_act="silu",
        max_position_embeddings=1024, rms_norm_eps=1e-6, rope_theta=1000000.0,
        tie_word_embeddings=True, attention_bias=False, use_sliding_window=False,
        bos_token_id=None, eos_token_id=None, pad_token_id=None)
    torch.manual_seed(seed)
    te = Qwen3Model(cfg)
    # Larger weights than the 0.02 default, so the layers change the residual stream visibly.
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in te.named_parameters():
            if p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=g) * (0.5 if "embed" in name else 1.0 / p.shape[1] ** 0.5))
    randomize_(te, seed + 2)
    return te.eval()


def build_transformer(n_heads, head_dim, axes_dims, n_layers, n_refiner_layers, cap_feat_dim, seed):
    from diffusers import ZImageTransformer2DModel
    torch.manual_seed(seed)
    tr = ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=n_heads * head_dim,
        n_layers=n_layers, n_refiner_layers=n_refiner_layers, n_heads=n_heads, n_kv_heads=n_heads,
        norm_eps=1e-5, qk_norm=True, cap_feat_dim=cap_feat_dim, rope_theta=256.0, t_scale=1000.0,
        axes_dims=list(axes_dims), axes_lens=[1536, 512, 512])
    randomize_(tr, seed + 1)
    return tr.eval()


def build_vae(seed):
    from diffusers import AutoencoderKL
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16), layers_per_block=2, act_fn="silu", latent_channels=16,
        norm_num_groups=4, sample_size=64, scaling_factor=0.3611, shift_factor=0.1159,
        use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=True,
        force_upcast=True)
    randomize_(vae, seed + 1)
    return vae.eval()


def build_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0,
                                           use_dynamic_shifting=False)


def save_pipeline(out_dir, transformer, vae, text_encoder, tok_dir, transformer_dtype=None):
    """The released layout: model_index.json, scheduler/, text_encoder/, tokenizer/,
    transformer/, vae/."""
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    build_scheduler().save_pretrained(os.path.join(out_dir, "scheduler"))
    vae.save_pretrained(os.path.join(out_dir, "vae"), safe_serialization=True)
    tr = transformer if transformer_dtype is None else transformer.to(transformer_dtype)
    tr.save_pretrained(os.path.join(out_dir, "transformer"), safe_serialization=True)
    if transformer_dtype is not None:
        transformer.to(torch.float32)
    text_encoder.save_pretrained(os.path.join(out_dir, "text_encoder"), safe_serialization=True)
    shutil.copytree(tok_dir, os.path.join(out_dir, "tokenizer"))
    index = {
        "_class_name": "ZImagePipeline",
        "_diffusers_version": "0.36.0.dev0",
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "Qwen3Model"],
        "tokenizer": ["transformers", "Qwen2Tokenizer"],
        "transformer": ["diffusers", "ZImageTransformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    with open(os.path.join(out_dir, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    # Drop generator noise that differs between runs/versions from the saved configs.
    for sub in ("text_encoder",):
        p = os.path.join(out_dir, sub, "generation_config.json")
        if os.path.exists(p):
            os.remove(p)


def load_pipeline(model_dir):
    from diffusers import ZImagePipeline
    pipe = ZImagePipeline.from_pretrained(model_dir, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ---------------------------------------------------------------------------- reference run

def f32(t):
    return t.detach().to(torch.float32).contiguous().clone()


def run_variant(pipe, name, out_dir, prompt, height, width, steps, seed, guidance=0.0,
                negative_prompt=None, model_rel="", vae_intermediates=False, notes="",
                long_prompt=None):
    os.makedirs(out_dir, exist_ok=True)
    T = {}  # name -> tensor
    tr = pipe.transformer

    # Token ids as the pipeline makes them (chat template, padding to 512, mask).
    def chat_ids(p):
        s = pipe.tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                               add_generation_prompt=True, enable_thinking=True)
        enc = pipe.tokenizer([s], padding="max_length", max_length=512, truncation=True,
                             return_tensors="pt")
        return s, enc.input_ids[0][enc.attention_mask[0].bool()]

    chat_str, ids = chat_ids(prompt)
    T["token_ids"] = ids.to(torch.int64)
    neg_str = None
    if guidance > 0:
        neg_str, nids = chat_ids(negative_prompt if negative_prompt is not None else "")
        T["neg_token_ids"] = nids.to(torch.int64)

    # Initial noise, made here so omnigen can be handed the same values.
    lat_h, lat_w = 2 * (height // 16), 2 * (width // 16)
    g = torch.Generator().manual_seed(seed)
    latents0 = torch.randn((1, 16, lat_h, lat_w), generator=g, dtype=torch.float32)
    T["latents_init"] = latents0[0].clone()

    # Capture the first transformer call (t = 0 there) and the last one (t > 0): inputs,
    # outputs and the intermediates of each stage.
    calls = []
    cur = {}

    def pre_hook(mod, args, kwargs):
        x, t, cap = args[0], args[1], args[2]
        cur.clear()
        cur.update({"x": [f32(v) for v in x], "t": f32(t), "cap": [f32(c) for c in cap]})

    def post_hook(mod, args, kwargs, out):
        cur["out"] = [f32(v) for v in out[0]]
        calls.append(dict(cur))

    def sub_hook(key):
        def h(mod, args, out):
            if key not in cur:
                cur[key] = f32(out)
        return h

    handles = [tr.register_forward_pre_hook(pre_hook, with_kwargs=True),
               tr.register_forward_hook(post_hook, with_kwargs=True),
               tr.t_embedder.register_forward_hook(sub_hook("adaln_input")),
               tr.all_x_embedder["2-1"].register_forward_hook(sub_hook("x_embed")),
               tr.cap_embedder.register_forward_hook(sub_hook("cap_embed")),
               tr.all_final_layer["2-1"].register_forward_hook(sub_hook("final_layer"))]
    for i, l in enumerate(tr.noise_refiner):
        handles.append(l.register_forward_hook(sub_hook(f"noise_refiner_{i}")))
    for i, l in enumerate(tr.context_refiner):
        handles.append(l.register_forward_hook(sub_hook(f"context_refiner_{i}")))
    for i, l in enumerate(tr.layers):
        handles.append(l.register_forward_hook(sub_hook(f"layer_{i}")))

    step_latents = []

    def on_step_end(p, i, t, kw):
        step_latents.append(f32(kw["latents"]))
        return {}

    # Prompt embeddings exactly as the pipeline computes them.
    pe, ne = pipe.encode_prompt(prompt=prompt, device=torch.device("cpu"),
                                do_classifier_free_guidance=guidance > 0,
                                negative_prompt=negative_prompt)
    T["prompt_embeds"] = f32(pe[0])
    if long_prompt:
        # Past 512 tokens: the pipeline truncates (cutting the template's end) and the encoder
        # sees RoPE positions up to 511.
        _, lids = chat_ids(long_prompt)
        T["long_token_ids"] = lids.to(torch.int64)
        T["long_prompt_embeds"] = f32(pipe.encode_prompt(prompt=long_prompt, device=torch.device("cpu"),
                                                         do_classifier_free_guidance=False)[0][0])
    if guidance > 0:
        T["neg_prompt_embeds"] = f32(ne[0])

    out = pipe(prompt=prompt, negative_prompt=negative_prompt, height=height, width=width,
               num_inference_steps=steps, guidance_scale=guidance, latents=latents0.clone(),
               output_type="latent", callback_on_step_end=on_step_end,
               callback_on_step_end_tensor_inputs=["latents"])
    final = f32(out.images)
    for h in handles:
        h.remove()

    sched = pipe.scheduler
    T["sigmas"] = f32(sched.sigmas)
    T["timesteps"] = f32(sched.timesteps)
    for prefix, c in (("dit_", calls[0]), ("dit_last_", calls[-1])):
        for k, v in c.items():
            if isinstance(v, list):
                for b, vb in enumerate(v):
                    T[f"{prefix}{k}_{b}"] = vb
            else:
                T[prefix + k] = v
    # The lead's spec names for the headline values (batch and frame dims dropped).
    T["tf_t"] = calls[0]["t"][:1]
    T["tf_out"] = calls[0]["out"][0][:, 0]
    for i, l in enumerate(step_latents):
        T[f"latents_step{i + 1}"] = l[0]
    T["latents_final"] = final[0]

    # VAE decode, as the pipeline does it after the loop.
    vae = pipe.vae
    z = final / vae.config.scaling_factor + vae.config.shift_factor
    T["vae_in"] = f32(z)
    vh = []
    if vae_intermediates:
        dec = vae.decoder
        vh.append(dec.conv_in.register_forward_hook(lambda m, a, o: T.__setitem__("vae_conv_in", f32(o))))
        vh.append(dec.mid_block.register_forward_hook(lambda m, a, o: T.__setitem__("vae_mid", f32(o))))
        for i, ub in enumerate(dec.up_blocks):
            vh.append(ub.register_forward_hook(
                (lambda k: lambda m, a, o: T.__setitem__(k, f32(o)))(f"vae_up_{i}")))
    with torch.no_grad():
        img = vae.decode(z, return_dict=False)[0]
    for h in vh:
        h.remove()
    T["vae_out"] = f32(img)
    img01 = pipe.image_processor.postprocess(img, output_type="pt")
    pil = pipe.image_processor.postprocess(img, output_type="pil")[0]
    T["image"] = f32(img01[0])
    T["image_u8"] = torch.from_numpy(np.array(pil, dtype=np.uint8))
    pil.save(os.path.join(out_dir, "image.png"))

    save_file({k: v.contiguous().clone() for k, v in T.items()}, os.path.join(out_dir, "reference.safetensors"))
    meta = {
        "variant": name,
        "model": model_rel,
        "notes": notes,
        "prompt": prompt,
        "chat_prompt": chat_str,
        "negative_prompt": negative_prompt,
        "negative_chat_prompt": neg_str,
        "long_prompt": long_prompt,
        "height": height,
        "width": width,
        "steps": steps,
        "guidance_scale": guidance,
        "cfg_normalization": False,
        "cfg_truncation": 1.0,
        "max_sequence_length": 512,
        "seed": seed,
        "seed_note": "torch.Generator().manual_seed(seed) drew latents_init; omnigen injects latents_init",
        "image_tokens": (lat_h // 2) * (lat_w // 2),
        "caption_tokens": int(ids.numel()),
        "transformer": {k: (list(v) if isinstance(v, (list, tuple)) else v)
                        for k, v in tr.config.items() if not k.startswith("_")},
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
                    for k, v in sorted(T.items())},
    }
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")
    log(f"{name}: {len(T)} tensors, image tokens {meta['image_tokens']}, caption {meta['caption_tokens']}")


# ---------------------------------------------------------------------------- tokenizer fixtures

TOKENIZER_CORPUS = [
    "a cat on a windowsill",
    "A photograph of a red fox sitting in the snow, golden hour light.",
    "",
    " ",
    "   leading and trailing spaces   ",
    "multiple    spaces\tand\ttabs\t\tand\nnewlines\n\n\nend",
    "windows\r\nline\r\nendings\r",
    "trailing newline\n",
    "\n\n",
    "numbers 0 12 345 6789 3.14159 1,000,000 2024-06-01 12:45 42% $19.99",
    "contractions: it's they're we've I'm you'll he'd IT'S THEY'RE",
    "punctuation!!! ??? ... --- ((())) [x] {y} <z> \"quoted\" 'single' `back`",
    "一只猫坐在窗台上，看着窗外的雨。",
    "一幅为名为“造相「Z-IMAGE-TURBO」”的项目设计的创意海报。",
    "日本語のテキスト：桜の木の下で猫が寝ている。",
    "한국어 문장: 고양이가 창문 옆에 앉아 있습니다.",
    "Emoji: 🐱🦊🌧️🌸✨🚂❄️👍🏽👨‍👩‍👧‍👦 🇯🇵",
    "café naïve résumé Ångström façade jalapeño Straße",
    # The same words decomposed (NFD): NFC must recompose them.
    "cafe\u0301 nai\u0308ve re\u0301sume\u0301 A\u030angstro\u0308m",
    "Greek αβγ Δ Ωμέγα, Cyrillic Привет мир, Arabic مرحبا, Hebrew שלום, Thai สวัสดี",
    "math ∑∫√∞ ≤≥≠ ½ ² ³ ℃ №",
    "zero\u200bwidth\u00a0nbsp\u2003emspace\u3000ideographic",
    "<|im_start|>user\ninline special tokens<|im_end|>\n<|endoftext|>",
    "<think>not special but added</think> and <tool_call>x</tool_call>",
    "partial <|im_start and <|im_end| and im_start|>",
    "abc<|endoftext|>def<|endoftext|><|endoftext|>",
    "Pneumonoultramicroscopicsilicovolcanoconiosis " + "supercalifragilisticexpialidocious" * 6,
    "x" * 300,
    "🙂" * 40,
    "def main(argc, argv):\n    return 0  # code\n\tif (x) { y++; }\n",
    "mixed中文English混合123数字",
    "control \x01\x02\x7f chars",
    "a" + " " * 20 + "b",
    " \n \n ",
]


def random_texts(count, seed):
    """Seeded random strings drawn from pieces that stress the pre-tokenizer and BPE: letters of
    several scripts, digits, marks (some decomposed), every kind of whitespace, punctuation,
    contractions, emoji with joiners, and (partial) special tokens."""
    import random
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789",
        " \t\n\r\u00a0\u2003\u3000\u200b\u0085\x0b\x0c", ".,;:!?'\"()[]{}<>-_/\\|@#$%^&*+=~`",
        "猫狗雨窗城市灯光背景模糊创意海报文字", "ぁあいうえおカタカナ", "한국어고양이", "αβγδΔΩЖжЯя",
        "\u0301\u0308\u0323\u0302\u030a", "éüñçåøß", "🐱🦊🌸✨👍🏽\u200d❤️🇯🇵",
    ]
    specials = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<|im_",
                "'s", "'LL", "'ve", "\r\n", "  ", "\n\n"]
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 30)):
            if rng.random() < 0.08:
                parts.append(rng.choice(specials))
            else:
                pool = rng.choice(pools)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
        out.append("".join(parts))
    return out


def make_tokenizer_fixtures(tok_dir, out_dir):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tok_dir)
    long_prompt = " ".join(["a very long prompt about a cat on a windowsill"] * 80)
    corpus = TOKENIZER_CORPUS + [long_prompt] + random_texts(150, seed=7)
    cases = []
    for text in corpus:
        plain = tok(text)["input_ids"]
        chat = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                       add_generation_prompt=True, enable_thinking=True)
        chat_ids = tok(chat)["input_ids"]
        enc = tok([chat], padding="max_length", max_length=512, truncation=True)
        chat_512 = [i for i, m in zip(enc["input_ids"][0], enc["attention_mask"][0]) if m]
        cases.append({"text": text, "ids": plain, "chat_text": chat, "chat_ids": chat_ids,
                      "chat_ids_512": chat_512})
    # NFC on its own: decomposed Latin, reordered marks, Hangul jamo, singletons, exclusions.
    nfc_inputs = [
        "e\u0301", "A\u030a", "a\u0323\u0302", "a\u0302\u0323", "o\u0308\u0304",
        "\u1112\u1161\u11ab\u1100\u1173\u11af", "\u1100\u1161", "\uac00\u11a8",
        "\u212b", "\u2126", "\u0958", "\u0344", "\u1e9b\u0323", "\u0041\u0300\u0301\u0327",
        "q\u0307\u0323", "\u0fb2\u0f80\u0f71", "\U0001d15e", "\u00c5\u0301",
        "ﬁ ﬃ ① ½", "x\u0338\u0300y", "\u0b47\u0b3e \u0dd9\u0dcf\u0dca",
    ]
    import unicodedata
    nfc = [{"in": s, "nfc": unicodedata.normalize("NFC", s)} for s in nfc_inputs]
    os.makedirs(out_dir, exist_ok=True)
    doc = {
        "nfc": nfc,
        "tokenizer": os.path.relpath(tok_dir, ROOT),
        "about": ("ids: tokenizer(text).input_ids; chat_text: apply_chat_template([{role: user, "
                  "content: text}], add_generation_prompt=True, enable_thinking=True); chat_ids: "
                  "tokenizer(chat_text).input_ids; chat_ids_512: the real (unpadded) ids of "
                  "tokenizer(chat_text, padding='max_length', max_length=512, truncation=True), "
                  "as ZImagePipeline makes them"),
        "cases": cases,
    }
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        # One case per line keeps the file small and its diffs readable.
        f.write("{\n")
        for k in ("tokenizer", "about"):
            f.write(f" {json.dumps(k)}: {json.dumps(doc[k], ensure_ascii=False)},\n")
        for k in ("nfc", "cases"):
            f.write(f' {json.dumps(k)}: [\n')
            f.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in doc[k]))
            f.write("\n ]" + (",\n" if k == "nfc" else "\n"))
        f.write("}\n")
    log(f"tokenizer: {len(cases)} cases, padding_side={tok.padding_side}")


# ---------------------------------------------------------------------------- main

VARIANTS = ("base", "odd", "cfg", "h30")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=ROOT, help="repository root to write into")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    torch.use_deterministic_algorithms(True)

    tiny = os.path.join(args.root, "models", "zimage-tiny")
    fx = os.path.join(args.root, "tests", "fixtures", "zimage")
    tmp_tok = os.path.join(args.root, "build-fixtures-tmp", "tokenizer")
    for d in [os.path.dirname(tmp_tok)] + [os.path.join(fx, v) for v in VARIANTS]:
        if os.path.lexists(d):
            shutil.rmtree(d)
    build_tokenizer(tmp_tok)
    from tokenizers import Tokenizer
    vocab_size = Tokenizer.from_file(os.path.join(tmp_tok, "tokenizer.json")).get_vocab_size()

    te = build_text_encoder(vocab_size, seed=100)
    vae = build_vae(seed=200)

    # Bundled model: 6 heads x 8, 2 layers, 1 refiner layer each.
    tr = build_transformer(6, 8, (2, 2, 4), n_layers=2, n_refiner_layers=1, cap_feat_dim=32, seed=300)
    save_pipeline(tiny, tr, vae, te, tmp_tok)
    # base, odd and cfg use the bundled model: their model/ is a relative symlink to it.
    for v in ("base", "odd", "cfg"):
        os.makedirs(os.path.join(fx, v))
        os.symlink(os.path.relpath(tiny, os.path.join(fx, v)), os.path.join(fx, v, "model"))
    # h30: 30 heads x 8 (dim 240), bf16 weights on disk (like the release), one layer.
    tr30 = build_transformer(30, 8, (2, 2, 4), n_layers=1, n_refiner_layers=0, cap_feat_dim=32, seed=400)
    save_pipeline(os.path.join(fx, "h30", "model"), tr30, vae, te, tmp_tok,
                  transformer_dtype=torch.bfloat16)
    shutil.rmtree(os.path.dirname(tmp_tok))

    def model_of(v):
        return os.path.join(fx, v, "model")

    def rel(v):
        return os.path.relpath(model_of(v), args.root)

    pipe = load_pipeline(model_of("base"))
    run_variant(pipe, "base", os.path.join(fx, "base"), "a cat on a windowsill, 猫 🐱",
                64, 64, 3, seed=1, model_rel=rel("base"), vae_intermediates=True,
                long_prompt=" ".join(["a red fox in the snow, 狐狸, golden light"] * 60),
                notes="square 64x64, 3 steps, no CFG; model/ -> models/zimage-tiny")
    run_variant(pipe, "odd", os.path.join(fx, "odd"),
                "A photograph of a red fox sitting in the snow, golden hour light, shallow depth of field.",
                112, 80, 2, seed=2, model_rel=rel("odd"),
                notes="non-square 112x80: 7x5 = 35 image tokens (odd), 2 steps; model/ -> models/zimage-tiny")
    run_variant(pipe, "cfg", os.path.join(fx, "cfg"), "an oil painting of a lighthouse in a storm",
                64, 48, 2, seed=3, guidance=4.0, negative_prompt="blurry, low quality",
                model_rel=rel("cfg"),
                notes="guidance 4.0 with a negative prompt; the transformer runs batched "
                      "[positive, negative]; model/ -> models/zimage-tiny")
    pipe30 = load_pipeline(model_of("h30"))
    run_variant(pipe30, "h30", os.path.join(fx, "h30"), "a cat on a windowsill", 64, 64, 2, seed=4,
                model_rel=rel("h30"),
                notes="30 heads x 8 (dim 240), transformer weights bf16 on disk, run in fp32")
    make_tokenizer_fixtures(os.path.join(tiny, "tokenizer"),
                            os.path.join(args.root, "tests", "fixtures", "tokenizer"))


if __name__ == "__main__":
    main()
