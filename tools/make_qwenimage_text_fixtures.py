#!/usr/bin/env python3
"""Builds the Qwen-Image prompt-encoder fixtures: tiny random Qwen2.5-VL text encoders and what
QwenImagePipeline.encode_prompt (diffusers 0.42.1) returns for a set of prompts.

The text encoder is the class the pipeline loads, transformers' Qwen2_5_VLForConditionalGeneration,
with a tiny vision tower (saved as in the release, never run: omnigen must skip its tensors) and
saved with save_pretrained. The tokenizer is the Z-Image fixture's byte-level BPE
(models/zimage-tiny/tokenizer: Qwen2's pre-tokenizer regex, NFC, ByteLevel, the Qwen added
tokens, tokenizer_class Qwen2Tokenizer), the family the Qwen-Image release ships. Its template
head is not 34 tokens as with the real vocabulary: the pipeline drops 34 all the same, so the
fixtures exercise a fixed-count drop.

Variants (tests/fixtures/qwenimage/text/<variant>/):
  base   hidden 32, 2 heads x 16, 1 kv head (GQA), 3 layers, f32, config as transformers 5 writes it
         (text_config nested, rope_parameters with mrope_section [2, 3, 3]), untied lm_head
  flat   hidden 48, 3 heads x 16, 3 kv heads, 2 layers, bf16 on disk, config in the older flat
         layout (text keys at the top, rope_scaling {type: mrope, mrope_section}), tied embeddings;
         the reference is computed from the model transformers reloads from that folder
Each holds text_encoder/ (config.json + model.safetensors), reference.safetensors and meta.json.
Also checked here (asserted, recorded in meta.json): M-RoPE on text-only positions equals 1-D
RoPE, and hidden_states[-1] is the final norm applied to the last layer's output.

    python3 tools/make_qwenimage_text_fixtures.py     # from the repository root
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TOKENIZER = os.path.join(ROOT, "models", "zimage-tiny", "tokenizer")
OUT = os.path.join(ROOT, "tests", "fixtures", "qwenimage", "text")

PROMPTS = [
    # (name, prompt, max_sequence_length)
    ("short", "a cat on a windowsill", 1024),
    ("unicode", "一只猫坐在窗台上 🐱, café naïve — «Straße» 日本語のテキスト", 512),
    ("empty", "", 1024),
    ("specials", "<|im_start|>user\ninline <|im_end|> tokens<|endoftext|>", 1024),
    ("cut", "A photograph of a red fox sitting in the snow, golden hour light, shallow depth.", 7),
    # Past 1024 + 34 tokens: the tokenizer cuts the template's end and 1024 rows remain.
    ("long", " ".join(["a very long prompt about a red fox in the snow, 狐狸"] * 120), 1024),
]
BATCH = ("a cat", "an oil painting of a lighthouse in a storm, waves crashing on the rocks")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def build_encoder(hidden, heads, kv_heads, inter, layers, tie, seed, vocab):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    head_dim = hidden // heads
    assert head_dim == 16, "mrope_section [2, 3, 3] covers head_dim / 2 = 8"
    tc = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter,
              num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
              rms_norm_eps=1e-6, max_position_embeddings=2048, hidden_act="silu",
              rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                               "mrope_section": [2, 3, 3]},
              tie_word_embeddings=tie, use_sliding_window=False,
              bos_token_id=None, eos_token_id=None, pad_token_id=None)
    vc = dict(depth=1, hidden_size=16, intermediate_size=16, num_heads=2, out_hidden_size=hidden,
              patch_size=2, spatial_merge_size=2, temporal_patch_size=2, window_size=8,
              fullatt_block_indexes=[0], in_channels=3)
    cfg = Qwen2_5_VLConfig(text_config=tc, vision_config=vc, image_token_id=vocab - 9,
                           video_token_id=vocab - 8, vision_start_token_id=vocab - 7,
                           vision_end_token_id=vocab - 6, tie_word_embeddings=tie)
    torch.manual_seed(seed)
    m = Qwen2_5_VLForConditionalGeneration(cfg)
    # Larger weights than the 0.02 default so every layer changes the stream visibly; norms
    # jittered around 1 and biases non-zero so a skipped norm or bias shows.
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=g) *
                        (0.5 if "embed" in name else 1.0 / p.shape[1] ** 0.5))
            elif p.ndim == 1 and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1 and name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return m.eval()


def flatten_config(path):
    """Rewrites a transformers-5 config.json in the older flat layout of the Qwen2.5-VL releases:
    text keys at the top level, rope_theta at the top, rope_scaling {type: mrope, mrope_section}."""
    with open(path) as f:
        cfg = json.load(f)
    text = cfg.pop("text_config")
    rope = text.pop("rope_parameters")
    for k in ("model_type", "layer_types"):
        text.pop(k, None)
    cfg.update(text)
    cfg["rope_theta"] = rope["rope_theta"]
    cfg["rope_scaling"] = {"type": "mrope", "mrope_section": rope["mrope_section"]}
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def check_mrope_is_1d(model):
    """The text model's rotary tables for text-only positions (three equal position rows, as
    get_rope_index makes them without images) against plain rotate-half 1-D RoPE."""
    lm = model.model.language_model
    n = 50
    pos = torch.arange(n).view(1, 1, n).expand(3, 1, n)
    x = torch.zeros(1, n, lm.config.hidden_size)
    cos, sin = lm.rotary_emb(x, pos)
    hd = lm.config.hidden_size // lm.config.num_attention_heads
    inv = 1.0 / (lm.config.rope_parameters["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
    f = torch.arange(n).float()[:, None] * inv[None, :]
    emb = torch.cat([f, f], dim=-1)
    err = max((cos[0] - emb.cos()).abs().max().item(), (sin[0] - emb.sin()).abs().max().item())
    assert err == 0.0, f"mrope on text positions differs from 1-D RoPE by {err}"
    return err


def check_last_hidden_state(model, ids):
    """hidden_states[-1] == norm(output of the last decoder layer)."""
    lm = model.model.language_model
    raw = {}
    h = lm.layers[-1].register_forward_hook(lambda mod, a, out: raw.__setitem__("x", out))
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
        normed = lm.norm(raw["x"])
    h.remove()
    err = (out.hidden_states[-1] - normed).abs().max().item()
    assert err == 0.0, f"hidden_states[-1] is not the final norm of the last layer ({err})"
    assert len(out.hidden_states) == lm.config.num_hidden_layers + 1
    return err


def make_variant(name, tok, te, dtype, flat, notes):
    from diffusers import QwenImagePipeline
    from transformers import Qwen2_5_VLForConditionalGeneration
    out_dir = os.path.join(OUT, name)
    if os.path.lexists(out_dir):
        shutil.rmtree(out_dir)
    te_dir = os.path.join(out_dir, "text_encoder")
    te.to(dtype).save_pretrained(te_dir, safe_serialization=True)
    if flat:
        flatten_config(os.path.join(te_dir, "config.json"))
    # The reference runs the model as transformers reads it back from the folder, in fp32.
    te = Qwen2_5_VLForConditionalGeneration.from_pretrained(te_dir, dtype=torch.float32).eval()
    pipe = QwenImagePipeline(scheduler=None, vae=None, text_encoder=te, tokenizer=tok,
                             transformer=None)
    checks = {"mrope_vs_1d_rope_max_abs": check_mrope_is_1d(te),
              "hidden_states_last_vs_final_norm_max_abs":
                  check_last_hidden_state(te, torch.tensor([[1, 5, 7, 9, 100, 200, 3]]))}
    T, cases = {}, []
    drop = pipe.prompt_template_encode_start_idx
    for key, prompt, max_seq in PROMPTS:
        text = pipe.prompt_template_encode.format(prompt)
        enc = tok([text], max_length=pipe.tokenizer_max_length + drop, padding=True,
                  truncation=True, return_tensors="pt")
        with torch.no_grad():
            emb, mask = pipe.encode_prompt(prompt, device=torch.device("cpu"),
                                           max_sequence_length=max_seq)
        T[f"{key}_ids"] = enc.input_ids[0].to(torch.int64)
        T[f"{key}_embeds"] = emb[0].float().contiguous()
        cases.append({"name": key, "prompt": prompt, "max_sequence_length": max_seq,
                      "template_tokens": int(enc.input_ids.shape[1]), "rows": int(emb.shape[1]),
                      "mask_is_none": mask is None})
    with torch.no_grad():
        emb, mask = pipe.encode_prompt(list(BATCH), device=torch.device("cpu"))
    T["batch_embeds"] = emb.float().contiguous()
    T["batch_mask"] = mask.to(torch.int64).contiguous()
    head = pipe.prompt_template_encode.split("{}")[0]
    save_file(T, os.path.join(out_dir, "reference.safetensors"))
    meta = {
        "variant": name, "notes": notes, "tokenizer": os.path.relpath(TOKENIZER, ROOT),
        "template": pipe.prompt_template_encode, "drop_idx": drop,
        "tokenizer_max_length": pipe.tokenizer_max_length,
        "template_head_tokens": len(tok(head).input_ids),
        "hidden_size": te.config.text_config.hidden_size,
        "num_hidden_layers": te.config.text_config.num_hidden_layers,
        # Objects keyed by index (not lists): omnigen's config reader takes dotted keys.
        "checks": checks, "cases": {str(i): c for i, c in enumerate(cases)},
        "batch": {str(i): p for i, p in enumerate(BATCH)},
        "about": ("<name>_ids: the tokenizer call's input_ids (template, max_length 1058, "
                  "truncation); <name>_embeds: encode_prompt(prompt, max_sequence_length)[0][0] "
                  "(its mask is None: all ones); batch_embeds / batch_mask: encode_prompt(batch) "
                  "with the default max_sequence_length 1024"),
    }
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")
    log(f"{name}: " + ", ".join(f"{c['name']} {c['template_tokens']}->{c['rows']}" for c in cases)
        + f"; template head {meta['template_head_tokens']} tokens")


def main():
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    torch.use_deterministic_algorithms(True)
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(TOKENIZER)
    vocab = len(tok)
    base = build_encoder(32, 2, 1, 64, 3, tie=False, seed=500, vocab=vocab)
    make_variant("base", tok, base, torch.float32, flat=False,
                 notes="hidden 32, 2 heads x 16, 1 kv head, 3 layers, f32, nested text_config")
    flat = build_encoder(48, 3, 3, 80, 2, tie=True, seed=600, vocab=vocab)
    make_variant("flat", tok, flat, torch.bfloat16, flat=True,
                 notes="hidden 48, 3 heads x 16, 3 kv heads, 2 layers, bf16 on disk, flat "
                       "config with rope_scaling type mrope, tied embeddings")


if __name__ == "__main__":
    main()
