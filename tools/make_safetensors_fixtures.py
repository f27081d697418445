#!/usr/bin/env python3
"""Writes the safetensors fixtures under tests/fixtures/safetensors/ (run from the repository root).

Valid files come from the `safetensors` package (the reference writer) with values drawn by numpy
and rounded to bf16/f16 by torch; expected.json records every stored element (floats as repr
strings, so inf and -0.0 survive; integers as decimal strings, so int64 stays exact) for the C
tests to compare against. Malformed files are built byte by byte, each with the status name and a
message substring the reader must report (bad/expected.json), and the folders under dirs/ cover
sharded loading. writer_ref.safetensors is what og_st_write must reproduce byte for byte. The
weights of tests/fixtures/diffusers_min (whose JSON files are hand-written) are written here too.
"""
import glob
import json
import os
import shutil
import struct
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

OUT = "tests/fixtures/safetensors"


def values_of(t):
    """Every element as a string: repr of the float value, or the integer in decimal."""
    flat = t.reshape(-1)
    if t.is_floating_point():
        return [repr(float(v)) for v in flat.float().tolist()]
    return [str(int(v)) for v in flat.tolist()]


def bits_of(t):
    """The raw 16-bit patterns of a bf16/f16 tensor, to check the bytes themselves."""
    return [int(v) & 0xFFFF for v in t.reshape(-1).view(torch.int16).tolist()]


def describe(tensors):
    out = {}
    for name, t in tensors.items():
        d = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "values": values_of(t)}
        if t.dtype in (torch.bfloat16, torch.float16):
            d["bits"] = bits_of(t)
        out[name] = d
    return out


DTYPE_NAMES = {
    torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64",
    torch.int32: "I32", torch.uint8: "U8", torch.float64: "F64", torch.bool: "BOOL",
    torch.int8: "I8", torch.int16: "I16",
}


def raw_file(path, header, data=b"", hlen=None, pad=True):
    """A file from a header (dict or raw bytes) and data; hlen overrides the stored length."""
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h) if hlen is None else hlen) + h + data)


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def main():
    if not os.path.isdir("tests/fixtures"):
        sys.exit("run from the repository root")
    shutil.rmtree(OUT, ignore_errors=True)
    for d in ("valid", "bad", "dirs"):
        os.makedirs(f"{OUT}/{d}")
    rng = np.random.default_rng(20261122)
    expected = {}

    # ---- valid files from the reference writer -------------------------------------------------
    f16 = torch.tensor(rng.standard_normal(12) * 3, dtype=torch.float32)
    f16[0], f16[1], f16[2], f16[3] = float("inf"), -0.0, 3e-6, 70000.0  # inf, -0, subnormal, overflow
    dtypes = {
        "f32": torch.tensor(rng.standard_normal((2, 3)), dtype=torch.float32),
        "bf16": torch.tensor(rng.standard_normal((4, 5)) * 100, dtype=torch.float32).to(torch.bfloat16),
        "f16": f16.reshape(3, 4).to(torch.float16),
        "i64": torch.tensor([0, -1, 2**62 + 12345, -(2**63), 2**63 - 1], dtype=torch.int64),
        "i32": torch.tensor([[7, -2**31], [2**31 - 1, 42]], dtype=torch.int32),
        "u8": torch.tensor([0, 1, 2, 127, 128, 254, 255], dtype=torch.uint8),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
        "layers.0.attention.to_q.weight": torch.tensor(rng.standard_normal((3, 2)),
                                                       dtype=torch.float32).to(torch.bfloat16),
    }
    # One metadata key: the reference writer orders several by a random hash, and these files
    # should come out the same on every run.
    save_file(dtypes, f"{OUT}/valid/dtypes.safetensors", metadata={"format": "pt"})
    expected["valid/dtypes.safetensors"] = {"metadata": {"format": "pt"}, "tensors": describe(dtypes)}

    unsupported = {
        "f64": torch.tensor([1.5, -2.0, 3.25], dtype=torch.float64),
        "mask": torch.tensor([True, False, True, True]),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "i16": torch.tensor([-300, 300], dtype=torch.int16),
        "ok": torch.tensor([1.0, 2.0], dtype=torch.float32),
    }
    save_file(unsupported, f"{OUT}/valid/unsupported.safetensors")
    expected["valid/unsupported.safetensors"] = {"metadata": {}, "tensors": describe(unsupported)}

    # A legal file whose F32 tensor starts 3 bytes into the data section: the reader must hand out
    # an aligned copy rather than a misaligned pointer.
    mis_u8 = bytes([9, 8, 7])
    mis_f32 = np.array([1.25, -3.5], dtype="<f4").tobytes()
    raw_file(f"{OUT}/valid/misaligned.safetensors",
             {"bytes": entry("U8", [3], 0, 3), "floats": entry("F32", [2], 3, 11)}, mis_u8 + mis_f32)
    expected["valid/misaligned.safetensors"] = {"metadata": {}, "tensors": {
        "bytes": {"dtype": "U8", "shape": [3], "values": ["9", "8", "7"]},
        "floats": {"dtype": "F32", "shape": [2], "values": ["1.25", "-3.5"]}}}

    meta = {"only": "metadata", "note": "omnigen fixture"}
    raw_file(f"{OUT}/valid/no_tensors.safetensors", {"__metadata__": meta})
    expected["valid/no_tensors.safetensors"] = {"metadata": meta, "tensors": {}}

    # ---- the writer's byte-exact reference ---------------------------------------------------
    # og_st_write must produce exactly these bytes for the same tensors (test_safetensors_write.c
    # fills them from the same formula: element i of a tensor is (i % 7 - 3) * 0.5, or i - 2).
    def formula(shape, dtype):
        n = int(np.prod(shape)) if shape else 1
        if dtype in (torch.int64, torch.int32, torch.uint8):
            v = torch.tensor([i - 2 if dtype != torch.uint8 else i for i in range(n)], dtype=dtype)
        else:
            v = torch.tensor([(i % 7 - 3) * 0.5 for i in range(n)], dtype=torch.float32).to(dtype)
        return v.reshape(shape)
    writer = {
        "w.f32": formula((2, 3), torch.float32), "w.bf16": formula((5,), torch.bfloat16),
        "w.f16": formula((1, 3), torch.float16), "w.i64": formula((4,), torch.int64),
        "w.i32": formula((3,), torch.int32), "w.u8": formula((5,), torch.uint8),
        "w.scalar": formula((), torch.float32), "w.empty": formula((0, 4), torch.bfloat16),
    }
    save_file(writer, f"{OUT}/writer_ref.safetensors", metadata={"format": "pt"})

    # ---- malformed files ------------------------------------------------------------------------
    bad = {}

    def add_bad(name, status, message, **kw):
        raw_file(f"{OUT}/bad/{name}.safetensors", **kw)
        bad[f"{name}.safetensors"] = {"status": status, "message": message}

    good_hdr = {"a": entry("F32", [2, 2], 0, 16), "b": entry("F32", [2], 16, 24)}
    good_data = bytes(range(24))
    with open(f"{OUT}/bad/too_short.safetensors", "wb") as f:
        f.write(b"\x10\x00\x00")
    bad["too_short.safetensors"] = {"status": "bad format", "message": "too short for the 8-byte"}
    add_bad("header_2e60", "bad format", "header length 1152921504606846976 is absurd",
            header=good_hdr, data=good_data, hlen=2**60)
    add_bad("header_past_end", "bad format", "runs past the end of the file",
            header=good_hdr, data=good_data, hlen=1000)
    add_bad("header_zero", "bad format", "header is not valid JSON", header=b"", data=good_data,
            pad=False)
    add_bad("bad_json", "bad format", "header is not valid JSON",
            header=b'{"a": {"dtype": "F32", "shape": [2', data=good_data)
    add_bad("not_object", "bad format", "header is not a JSON object", header=b"[1, 2, 3]")
    add_bad("trailing_bytes", "bad format", "header has bytes after its JSON object",
            header=b'{}xx', pad=True)
    add_bad("entry_not_object", "bad format", 'tensor "a": entry is not a JSON object',
            header={"a": 5})
    add_bad("missing_offsets", "bad format", 'tensor "a": entry lacks "data_offsets"',
            header={"a": {"dtype": "F32", "shape": [2]}}, data=bytes(8))
    add_bad("missing_dtype", "bad format", 'tensor "a": entry lacks "dtype"',
            header={"a": {"shape": [2], "data_offsets": [0, 8]}}, data=bytes(8))
    add_bad("dtype_not_string", "bad format", 'tensor "a": dtype is not a string',
            header={"a": entry(5, [2], 0, 8)}, data=bytes(8))
    add_bad("unknown_dtype", "bad format", 'tensor "a": unknown dtype "Q7"',
            header={"a": entry("Q7", [2], 0, 8)}, data=bytes(8))
    add_bad("shape_not_array", "bad format", 'tensor "a": shape is not an array',
            header={"a": entry("F32", 2, 0, 8)}, data=bytes(8))
    add_bad("negative_dim", "bad format", 'tensor "a": shape[1] is not a non-negative integer',
            header={"a": entry("F32", [2, -1], 0, 8)}, data=bytes(8))
    add_bad("fractional_dim", "bad format", 'tensor "a": shape[0] is not a non-negative integer',
            header={"a": entry("F32", [2.5], 0, 8)}, data=bytes(8))
    add_bad("offsets_not_pair", "bad format", 'tensor "a": data_offsets is not a pair',
            header={"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}, data=bytes(8))
    add_bad("offsets_negative", "bad format", 'tensor "a": data_offsets is not a pair',
            header={"a": entry("F32", [0], -4, -4)}, data=bytes(8))
    add_bad("offsets_reversed", "bad format", 'tensor "a": data_offsets [8, 0] end before they begin',
            header={"a": entry("F32", [2], 8, 0)}, data=bytes(8))
    add_bad("shape_size_mismatch", "bad format",
            'tensor "a": shape [2, 3] of F32 needs 24 bytes but data_offsets [0, 20] span 20',
            header={"a": entry("F32", [2, 3], 0, 20)}, data=bytes(24))
    add_bad("shape_overflow", "bad format", 'tensor "a": shape [4294967296, 4294967296] of F32 '
            "overflows a 64-bit byte count",
            header={"a": entry("F32", [2**32, 2**32], 0, 8)}, data=bytes(8))
    add_bad("sub_byte", "bad format", "is 12 bits, not a whole number of bytes",
            header={"a": entry("F4", [3], 0, 2)}, data=bytes(2))
    add_bad("span_past_end", "bad format",
            'tensor "b": data_offsets [16, 32] run past the end of the data section (24 bytes)',
            header={"a": entry("F32", [4], 0, 16), "b": entry("F32", [4], 16, 32)}, data=good_data)
    add_bad("truncated", "bad format", "run past the end of the data section",
            header=good_hdr, data=good_data[:20])
    add_bad("overlap", "bad format", 'tensors "a" [0, 16] and "b" [8, 24] overlap',
            header={"a": entry("F32", [4], 0, 16), "b": entry("F32", [4], 8, 24)}, data=good_data)
    add_bad("duplicate_name", "bad format", 'tensor "a" appears twice',
            header=b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                   b'"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', data=bytes(16))
    add_bad("metadata_not_object", "bad format", "__metadata__ is not a JSON object",
            header={"__metadata__": 5})
    add_bad("metadata_not_string", "bad format", '__metadata__ value "n" is not a string',
            header={"__metadata__": {"n": 1}})
    add_bad("duplicate_metadata", "bad format", "__metadata__ appears twice",
            header=b'{"__metadata__":{"a":"1"},"__metadata__":{"b":"2","c":"3"}}')
    add_bad("too_many_dims", "unsupported", 'has 7 dimensions, more than the 6',
            header={"a": entry("F32", [1] * 7, 0, 4)}, data=bytes(4))
    with open(f"{OUT}/bad/expected.json", "w") as f:
        json.dump(bad, f, indent=1, sort_keys=True)
    # The reference reader must refuse every file we call malformed.
    for name, want in bad.items():
        if want["status"] == "bad format":
            try:
                with safe_open(f"{OUT}/bad/{name}", "np"):
                    sys.exit(f"the reference reader accepts bad/{name}")
            except Exception:
                pass

    # ---- folders: shards, single-file fallback, and their faults --------------------------------
    shard_a = {"embed.weight": torch.tensor(rng.standard_normal((4, 3)), dtype=torch.float32)
               .to(torch.bfloat16),
               "layers.0.norm.weight": torch.tensor(rng.standard_normal(3) + 1, dtype=torch.float32)
               .to(torch.float16)}
    shard_b = {"layers.1.proj.weight": torch.tensor(rng.standard_normal((2, 3)), dtype=torch.float32),
               "layers.1.proj.bias": torch.tensor(rng.standard_normal(2), dtype=torch.float32)
               .to(torch.bfloat16)}

    def sharded(folder, weight_map, shards=(shard_a, shard_b), prefix="model"):
        os.makedirs(f"{OUT}/dirs/{folder}")
        names = [f"{prefix}-0000{i + 1}-of-0000{len(shards)}.safetensors" for i in range(len(shards))]
        for n, s in zip(names, shards):
            save_file(s, f"{OUT}/dirs/{folder}/{n}", metadata={"format": "pt"})
        if weight_map is not None:
            if weight_map == "auto":
                weight_map = {k: n for n, s in zip(names, shards) for k in s}
            index = {"metadata": {"total_size": sum(t.numel() * t.element_size()
                                                    for s in shards for t in s.values())},
                     "weight_map": weight_map}
            with open(f"{OUT}/dirs/{folder}/{prefix}.safetensors.index.json", "w") as f:
                json.dump(index, f, indent=2)
        return names

    names = sharded("sharded", "auto")
    expected["dirs/sharded"] = {"tensors": describe({**shard_a, **shard_b})}

    os.makedirs(f"{OUT}/dirs/single")
    save_file(shard_b, f"{OUT}/dirs/single/diffusion_pytorch_model.safetensors")
    expected["dirs/single"] = {"tensors": describe(shard_b)}
    sharded("unindexed", None)  # two shards and no index: both files are read
    expected["dirs/unindexed"] = {"tensors": describe({**shard_a, **shard_b})}

    dirs_bad = {}
    sharded("dup_unindexed", None, shards=(shard_a, {**shard_b, "embed.weight": shard_a["embed.weight"]}))
    dirs_bad["dup_unindexed"] = {"status": "bad format", "message": 'tensor "embed.weight" is in both'}
    sharded("index_missing_shard", "auto")
    os.remove(f"{OUT}/dirs/index_missing_shard/{names[1]}")
    dirs_bad["index_missing_shard"] = {"status": "not found",
                                       "message": f"index_missing_shard/{names[1]}: No such file"}
    sharded("index_wrong_shard", {"embed.weight": names[1], "layers.0.norm.weight": names[0]})
    dirs_bad["index_wrong_shard"] = {"status": "bad format",
                                     "message": 'maps "embed.weight" to model-00002-of-00002.safetensors, '
                                                "but it is in model-00001-of-00002.safetensors"}
    sharded("index_absent_tensor", {"embed.weight": names[0], "ghost": names[1]})
    dirs_bad["index_absent_tensor"] = {"status": "bad format",
                                       "message": 'maps "ghost" to model-00002-of-00002.safetensors, '
                                                  "but that shard lacks it"}
    sharded("index_escape", {"embed.weight": "../sharded/" + names[0]})
    dirs_bad["index_escape"] = {"status": "bad format", "message": "which is not a file in the same folder"}
    sharded("index_no_map", {})
    with open(f"{OUT}/dirs/index_no_map/model.safetensors.index.json", "w") as f:
        json.dump({"metadata": {}}, f)
    dirs_bad["index_no_map"] = {"status": "bad format", "message": 'has no "weight_map" object'}
    sharded("index_bad_json", "auto")
    with open(f"{OUT}/dirs/index_bad_json/model.safetensors.index.json", "w") as f:
        f.write('{\n  "weight_map": {\n    "embed.weight": model-00001-of-00002.safetensors\n')
    dirs_bad["index_bad_json"] = {"status": "bad format", "message": "is not valid JSON (line 3"}
    sharded("two_indexes", "auto")
    shutil.copy(f"{OUT}/dirs/two_indexes/model.safetensors.index.json",
                f"{OUT}/dirs/two_indexes/model.fp16.safetensors.index.json")
    dirs_bad["two_indexes"] = {"status": "bad format", "message": "holds 2 shard indexes"}
    os.makedirs(f"{OUT}/dirs/no_weights")
    with open(f"{OUT}/dirs/no_weights/config.json", "w") as f:
        f.write("{}\n")
    dirs_bad["no_weights"] = {"status": "not found", "message": "no .safetensors file in"}
    dirs_bad["does_not_exist"] = {"status": "not found", "message": "cannot open folder"}
    sharded("bad_shard", "auto")
    with open(f"{OUT}/dirs/bad_shard/{names[1]}", "r+b") as f:
        f.truncate(os.path.getsize(f"{OUT}/dirs/bad_shard/{names[1]}") - 4)
    dirs_bad["bad_shard"] = {"status": "bad format", "message": "run past the end of the data section"}
    with open(f"{OUT}/dirs/expected.json", "w") as f:
        json.dump(dirs_bad, f, indent=1, sort_keys=True)

    # ---- weights of the hand-written diffusers folder tests/fixtures/diffusers_min ---------------
    # The JSON files there are written by hand; only the weights come from here: a single-file
    # transformer and a two-shard text encoder, as the released checkpoints are laid out.
    mini = "tests/fixtures/diffusers_min"
    for f in glob.glob(f"{mini}/*/*.safetensors*"):
        os.remove(f)
    tf = {"x_pad_token": torch.tensor(rng.standard_normal((1, 8)), dtype=torch.float32)
          .to(torch.bfloat16),
          "layers.0.attention.to_q.weight": torch.tensor(rng.standard_normal((8, 8)),
                                                         dtype=torch.float32).to(torch.bfloat16),
          "layers.0.attention_norm1.weight": torch.tensor(rng.standard_normal(8) + 1,
                                                          dtype=torch.float32)}
    save_file(tf, f"{mini}/transformer/diffusion_pytorch_model.safetensors", metadata={"format": "pt"})
    expected["diffusers_min/transformer"] = {"tensors": describe(tf)}
    te = [{"embed_tokens.weight": torch.tensor(rng.standard_normal((64, 16)), dtype=torch.float32)
           .to(torch.bfloat16)},
          {"norm.weight": torch.tensor(rng.standard_normal(16) + 1, dtype=torch.float32)
           .to(torch.bfloat16)}]
    te_names = [f"model-0000{i + 1}-of-00002.safetensors" for i in range(2)]
    for n, shard in zip(te_names, te):
        save_file(shard, f"{mini}/text_encoder/{n}", metadata={"format": "pt"})
    with open(f"{mini}/text_encoder/model.safetensors.index.json", "w") as f:
        json.dump({"metadata": {"total_size": sum(t.numel() * t.element_size()
                                                  for s in te for t in s.values())},
                   "weight_map": {k: n for n, s in zip(te_names, te) for k in s}}, f, indent=2)
    expected["diffusers_min/text_encoder"] = {"tensors": describe({**te[0], **te[1]})}

    with open(f"{OUT}/expected.json", "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
    total = sum(os.path.getsize(os.path.join(r, n)) for r, _, ns in os.walk(OUT) for n in ns)
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
