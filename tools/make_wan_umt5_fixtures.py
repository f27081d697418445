#!/usr/bin/env python3
"""Fixtures for Wan2.1's text side (text/unigram.c, text/umt5.c).

Builds a tiny SentencePiece-Unigram tokenizer the way the released umT5 tokenizer is built
(sentencepiece model with the nmt_nfkc precompiled charsmap, converted to tokenizer.json with the
T5 structure: Precompiled + Replace normalizer, WhitespaceSplit + Metaspace pre-tokenizer, "$A </s>"
template, <pad>/</s>/<unk> at 0/1/2 and <extra_id_*> sentinels at the end), saves it in the released
tokenizer/ layout, and records the ids transformers' AutoTokenizer gives for ~100 prompts (plain,
and as WanPipeline calls it: max_length, truncation, </s>). Then builds a tiny random
UMT5EncoderModel, saves it as text_encoder/ (config.json + model.safetensors), and records the
pipeline's prompt embeddings (last_hidden_state of the real tokens, zero-padded to max length).

Needs sentencepiece, tokenizers, transformers, torch, safetensors. Writes tests/fixtures/wan/umt5/.
"""
import json
import os
import random
import sys
import tempfile

import regex
import sentencepiece as spm
import torch
from safetensors.torch import save_file
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors, decoders
from tokenizers.models import Unigram

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "wan", "umt5")
EXTRA_IDS = 8

WORDS = ("a cat sits on the windowsill looking at the rain while a dog sleeps beside the fire "
         "slow motion video of waves crashing against rocks at sunset cinematic lighting "
         "the quick brown fox jumps over the lazy dog astronaut riding a horse on mars "
         "café naïve résumé über straße façade piñata crème brûlée Ångström déjà vu "
         "東京の夜景 雨の中を歩く猫 一只猫坐在窗台上 美丽的风景 山と川 日本語のテキスト "
         "한국어 문장 고양이 Привет мир кошка собака Γειά σου κόσμε مرحبا بالعالم שלום עולם "
         "numbers 12345 3.14159 2024 100% 42nd 1st 7x7 #hashtag @user e-mail test_case").split()


def corpus_lines(rng, n):
    lines = []
    for _ in range(n):
        k = rng.randint(3, 14)
        lines.append(" ".join(rng.choice(WORDS) for _ in range(k)))
    return lines


def read_varint(b, i):
    v, s = 0, 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return v, i


def proto_fields(b):
    """(field number, wire type, value) of one protobuf message level."""
    i, out = 0, []
    while i < len(b):
        key, i = read_varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = read_varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        out.append((f, wt, v))
    return out


def precompiled_charsmap(model_bytes):
    # ModelProto.normalizer_spec = 3; NormalizerSpec.precompiled_charsmap = 2
    for f, wt, v in proto_fields(model_bytes):
        if f == 3 and wt == 2:
            for f2, wt2, v2 in proto_fields(v):
                if f2 == 2 and wt2 == 2:
                    return bytes(v2)
    raise RuntimeError("no precompiled_charsmap in the sentencepiece model")


def build_tokenizer(tmp):
    rng = random.Random(7)
    corpus = os.path.join(tmp, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("\n".join(corpus_lines(rng, 3000)) + "\n")
    prefix = os.path.join(tmp, "spiece")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, model_type="unigram", vocab_size=200,
        hard_vocab_limit=False,
        character_coverage=0.9995, normalization_rule_name="nmt_nfkc", pad_id=0, eos_id=1,
        unk_id=2, bos_id=-1, byte_fallback=False, split_digits=False, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    with open(prefix + ".model", "rb") as f:
        charsmap = precompiled_charsmap(f.read())
    vocab = [(sp.id_to_piece(i), float(sp.get_score(i))) for i in range(sp.get_piece_size())]
    vocab += [("<extra_id_%d>" % i, 0.0) for i in range(EXTRA_IDS - 1, -1, -1)]
    tok = Tokenizer(Unigram(vocab, unk_id=2, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    from tokenizers import AddedToken
    specials = ["<pad>", "</s>", "<unk>"] + ["<extra_id_%d>" % i for i in range(EXTRA_IDS)]
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in specials])
    tok.post_processor = processors.TemplateProcessing(
        single=["$A", "</s>"], pair=["$A", "</s>", "$B", "</s>"], special_tokens=[("</s>", 1)])
    return tok, len(vocab)


def tokenizer_folder(tok, dirpath):
    os.makedirs(dirpath, exist_ok=True)
    tok.save(os.path.join(dirpath, "tokenizer.json"))
    extra = ["<extra_id_%d>" % i for i in range(EXTRA_IDS)]
    cfg = {"tokenizer_class": "T5Tokenizer", "eos_token": "</s>", "unk_token": "<unk>",
           "pad_token": "<pad>", "extra_ids": EXTRA_IDS, "additional_special_tokens": extra,
           "model_max_length": 1000000000000000019884624838656, "legacy": True}
    with open(os.path.join(dirpath, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(dirpath, "special_tokens_map.json"), "w") as f:
        json.dump({"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                   "additional_special_tokens": extra}, f, indent=2)


def prompts():
    rng = random.Random(11)
    hand = [
        "", " ", "a", "a cat", "A Cat On The Windowsill", "  leading and trailing spaces  ",
        "multiple     spaces   between\twords\tand\ttabs", "line\nbreaks\r\nand\rreturns",
        "東京の夜景", "一只猫坐在窗台上，看着外面的雨。", "한국어 문장 고양이", "Привет, мир!",
        "Γειά σου κόσμε", "مرحبا بالعالم", "שלום עולם",
        "emoji 🐱🐶 and 👩‍👩‍👧 family 🇯🇵 flag ❤️ heart", "café naïve résumé", "cafe\u0301 nai\u0308ve",
        "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３", "ligature ﬁ ﬂ and ① ② ③ ㍻ ㌔", "½ ¼ ² ³ ™ ℃ Ⅻ",
        "numbers 12345 3.14159 2024 100% 42nd", "1234567890 0987654321",
        "punctuation!!! ??? ... --- *** ((( )))", "quotes “double” ‘single’ «guillemets»",
        "zero\u200bwidth\u200cjoiner\u200dhere", "no\u00a0break\u2009thin\u3000ideographic",
        "control\x01chars\x7f\x1fhere", "soft\u00adhyphen", "tab\tonly", "\t\n  \r",
        "</s> inside the prompt", "<pad><unk></s>", "<extra_id_0> sentinel <extra_id_7>",
        "▁already▁has▁metaspace", "▁", "▁▁double", "x▁y ▁z",
        "the quick brown fox jumps over the lazy dog",
        "A cinematic shot of an astronaut riding a horse on Mars, slow motion, 4k",
        "Ångström déjà vu über straße façade piñata crème brûlée",
        "mixed 東京 and English and 한국어 in one prompt",
        "unseen characters: ☃ ♞ ⚽ ∑ ∫ √ ∞ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛",
        "Hangul jamo \u1100\u1161\u11a8 and precomposed 각",
        "Devanagari नमस्ते दुनिया", "Thai สวัสดีชาวโลก", "a\u0301\u0302 stacked e\u0323\u0302",
        "K\u212a kelvin Ω ohm Å angstrom", "ǅungla ǈ ǋ", "ﾊﾝｶｸ ｶﾀｶﾅ halfwidth",
        "@user #hashtag e-mail test_case https://example.com/path?q=1",
    ]
    words = WORDS + ["zebra", "quantum", "xylophone", "🐱", "日本", "ß", "İstanbul", "ǆ"]
    rand = []
    for _ in range(50):
        k = rng.randint(1, 20)
        parts = []
        for _ in range(k):
            w = rng.choice(words)
            sep = rng.choice([" ", " ", " ", "  ", "\t", "\n", "", ", ", ". "])
            parts.append(w + sep)
        rand.append("".join(parts))
    long_prompt = " ".join(rng.choice(WORDS) for _ in range(260))
    return hand + rand + [long_prompt, long_prompt + " " + long_prompt]


def byte_fallback_variant(tokenizer_json):
    """The newer converter's layout on the same pieces: Precompiled + Strip(right) + Replace
    "{2,}" -> "\u2581", Metaspace alone (no WhitespaceSplit), byte_fallback with <0xXX> pieces.
    Returns the tokenizer and the parts the C test swaps into tokenizer.json to rebuild it."""
    with open(tokenizer_json, encoding="utf-8") as f:
        tj = json.load(f)
    model = dict(tj["model"])
    model["vocab"] = model["vocab"] + [["<0x%02X>" % b, -30.0] for b in range(256)]
    model["byte_fallback"] = True
    parts = {
        "model": model,
        "normalizer_rest": [
            {"type": "Strip", "strip_left": False, "strip_right": True},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "\u2581"}],
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                          "split": True},
    }
    tj["model"] = model
    tj["normalizer"]["normalizers"] = tj["normalizer"]["normalizers"][:1] + parts["normalizer_rest"]
    tj["pre_tokenizer"] = parts["pre_tokenizer"]
    return Tokenizer.from_str(json.dumps(tj)), parts


def tokenizer_fixtures(tmp):
    from transformers import AutoTokenizer
    tok, vocab_size = build_tokenizer(tmp)
    tokdir = os.path.join(OUT, "tokenizer")
    tokenizer_folder(tok, tokdir)
    ref = AutoTokenizer.from_pretrained(tokdir)
    raw = Tokenizer.from_file(os.path.join(tokdir, "tokenizer.json"))
    variant, variant_parts = byte_fallback_variant(os.path.join(tokdir, "tokenizer.json"))
    cases = []
    max_len = 64
    for p in prompts():
        ids = ref(p, add_special_tokens=True)["input_ids"]
        raw_ids = raw.encode(p).ids
        if ids != raw_ids:
            sys.exit("transformers and tokenizers disagree on %r: %s vs %s" % (p, ids, raw_ids))
        padded = ref(p, padding="max_length", max_length=max_len, truncation=True,
                     add_special_tokens=True, return_attention_mask=True)
        n = sum(padded["attention_mask"])
        cases.append({"text": p, "ids": ids, "ids_64": padded["input_ids"][:n],
                      "normalized": raw.normalizer.normalize_str(p),
                      "graphemes": [len(g) for g in regex.findall(r"\X", p)],
                      "variant_ids": variant.encode(p).ids})
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"max_length": max_len, "variant": variant_parts, "cases": cases}, f,
                  ensure_ascii=False, indent=0)
    return tokdir, vocab_size, ref


def tiny_umt5_encoder(vocab_size):
    """The tiny random-weight umT5 encoder (torch seed 0) of these fixtures and of models/wan-tiny
    (tools/make_wan_fixtures.py): d_model 32, 2 layers, 4 heads x 8, d_ff 48, 32 buckets."""
    from transformers import UMT5Config, UMT5EncoderModel
    torch.manual_seed(0)
    cfg = UMT5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
                     relative_attention_num_buckets=32, relative_attention_max_distance=128,
                     feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6, dropout_rate=0.0,
                     tie_word_embeddings=False)
    model = UMT5EncoderModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif "relative_attention_bias" in name:
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / (p.shape[-1] ** 0.5))
    return model


def encoder_fixtures(tokdir, vocab_size, ref_tok):
    from transformers import UMT5EncoderModel
    model = tiny_umt5_encoder(vocab_size)
    cfg = model.config
    enc_dir = os.path.join(OUT, "text_encoder")
    model.save_pretrained(enc_dir, safe_serialization=True)

    max_len = 48
    tensors = {}
    meta = []
    texts = ["a cat sits on the windowsill", "東京の夜景 and emoji 🐱",
             "the quick brown fox jumps over the lazy dog " * 4, "x",
             " ".join(["waves crashing against rocks"] * 20)]
    for i, p in enumerate(texts):
        enc = ref_tok(p, padding="max_length", max_length=max_len, truncation=True,
                      add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        ids, mask = enc.input_ids, enc.attention_mask
        n = int(mask.gt(0).sum())
        with torch.no_grad():
            h = model(ids, mask).last_hidden_state[0]
        emb = torch.cat([h[:n], h.new_zeros(max_len - n, h.shape[1])])
        # A distance past max_distance needs n > 64 with 32 buckets (16 per direction, 8 exact):
        # the longest prompt also runs unpadded to check the log buckets up to the clamp.
        tensors["ids_%d" % i] = ids[0, :n].to(torch.int64).contiguous()
        tensors["embeds_%d" % i] = emb.contiguous()
        meta.append({"text": p, "tokens": n})
    long_ids = torch.tensor([ref_tok(" ".join(["slow motion video of waves"] * 40))["input_ids"]])
    with torch.no_grad():
        tensors["long_embeds"] = model(long_ids).last_hidden_state[0].contiguous()
    tensors["long_ids"] = long_ids[0].to(torch.int64).contiguous()
    rel = torch.arange(-600, 601)
    attn = model.encoder.block[0].layer[0].SelfAttention
    tensors["buckets_32_128"] = attn._relative_position_bucket(rel).to(torch.int64).contiguous()
    # The released text encoder is bf16: the same model saved in bf16, and the embeddings of the
    # f32 forward on the bf16-rounded weights (what the CPU encoder computes from that file).
    model_bf16 = UMT5EncoderModel(cfg).eval()
    model_bf16.load_state_dict(model.state_dict())
    model_bf16.to(torch.bfloat16).save_pretrained(os.path.join(OUT, "text_encoder_bf16"),
                                                  safe_serialization=True)
    model_bf16.to(torch.float32)
    for i in (0, 4):
        ids = tensors["ids_%d" % i][None]
        with torch.no_grad():
            tensors["bf16_embeds_%d" % i] = model_bf16(ids).last_hidden_state[0].contiguous()
    save_file(tensors, os.path.join(OUT, "reference.safetensors"))
    with open(os.path.join(OUT, "meta.json"), "w", encoding="utf-8") as f:
        flat = {"prompt_%d" % i: m["text"] for i, m in enumerate(meta)}
        json.dump(dict({"max_sequence_length": max_len, "prompts": meta,
                        "long_tokens": int(long_ids.shape[1])}, **flat), f, ensure_ascii=False,
                  indent=1)


def prompt_clean_fixtures():
    """WanPipeline's prompt_clean on prompts with HTML references and whitespace (no ftfy here)."""
    from diffusers.pipelines.wan import pipeline_wan
    if pipeline_wan.is_ftfy_available():
        sys.exit("ftfy is installed: prompt_clean would run fix_text, which text/prompt_clean.c "
                 "does not implement; run this script without ftfy")
    hand = [
        "", "   ", "plain prompt", "  a  cat\t\ton\n\nthe   mat  ",
        "\u3000ideographic\u3000space\u00a0nbsp",
        "x\x1cfile\x1dgroup\x1erecord\x1funit\x85nel\u2028ls\u2029ps\u200bzwsp",
        "fish &amp; chips", "&lt;b&gt;bold&lt;/b&gt;", "&amp;lt; twice", "&amp;amp;amp; three",
        "&quot;quoted&quot; &apos;single&apos;", "&copy; &reg; &trade; &hellip; &mdash; &nbsp;x",
        "&#65;&#66;&#x43;&#X44;&#x1F431; cat",
        "&#0; &#13; &#128; &#150; &#159; &#1; &#x7f; &#xFFFE;",
        "&#xD800; &#1114112; &#99999999999999999999; &#x110000;", "&#65 no semicolon &#x41 too",
        "&amp no semicolon &lt3 &copyright &notit; &notin; &not;", "&ampx &ltx; &AElig &AEligx",
        "&unknown; & alone &; &# &#x &#xg; &&amp;", "&nGt; &acE; &NotEqualTilde; &fjlig;",
        "&CounterClockwiseContourIntegral; &CounterClockwiseContourIntegralx;",
        "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; long name", "a&b&c &amp&amp;",
        "東京&amp;大阪 &#x6771;&#20140; café&eacute;", "&#9;tab&#10;newline&#32;space&nbsp;end",
        "🐱 &#x1f436; 👩‍👩‍👧 &zwj;", "&Ascr;&Bopf;&Cfr;",
    ]
    rng = random.Random(5)
    frags = ["&amp;", "&lt;", "&#", "&#x", "1", "f", ";", " ", "  ", "\t", "\n", "&", "amp", "lt",
             "copy", "x", "東", "🐱", "&nbsp;", "&not", "in", "&#0", "\u3000", "é"]
    rand = ["".join(rng.choice(frags) for _ in range(rng.randint(1, 24))) for _ in range(60)]
    cases = [{"text": t, "clean": pipeline_wan.prompt_clean(t)} for t in hand + rand]
    with open(os.path.join(OUT, "prompt_clean.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=0)


def main():
    os.makedirs(OUT, exist_ok=True)
    prompt_clean_fixtures()
    with tempfile.TemporaryDirectory() as tmp:
        tokdir, vocab_size, ref = tokenizer_fixtures(tmp)
    encoder_fixtures(tokdir, vocab_size, ref)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
