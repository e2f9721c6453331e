#!/usr/bin/env python3
"""Checks of ops/convert_tf_bert.py on small synthetic TensorFlow tensor bundles written here (a
LevelDB-format table builder and the two protos, after tensorflow/core/util/tensor_bundle and
tensorflow/core/lib/io/table_builder), so every way a bundle can be wrong is tried:

  - a well-formed 2-layer bundle spread over several table blocks converts, and every tensor of
    model.safetensors equals its TF source (dense kernels transposed), with config.json,
    vocab.txt and tokenizer_config.json beside it;
  - each damaged copy (an unexpected name, a missing tensor, a wrong dtype, shape, size or byte
    range, a flipped data byte, a flipped index byte, a compressed block, a bad footer, a sliced
    entry, two shards, a short vocabulary) fails with exit code 1 and a message naming the file
    and the tensor, and leaves no output folder.

The real bundle (Google's BERT-base-uncased) is checked by ops/setup.sh's conversion itself
(every CRC-32C) and by test_bert_fill_mask / test_bert_ref on the converted weights.

    convert_check.py WORKDIR
"""
import json
import os
import shutil
import struct
import subprocess
import sys

try:
    import crcmod.predefined
    import numpy as np
except ImportError as exc:  # a missing dependency fails the test, never skips it
    sys.exit(f"convert_check.py: needs numpy and crcmod (python3-numpy, python3-crcmod): {exc}")

HERE = os.path.dirname(os.path.abspath(__file__))
CONVERTER = os.path.join(HERE, "..", "..", "ops", "convert_tf_bert.py")
crc32c = crcmod.predefined.mkCrcFun("crc-32c")
SIZES = dict(layers=2, hidden=8, heads=2, ffn=12, vocab=20, positions=16, types=2)


def mask(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


# ---- protobuf and table writing ---------------------------------------------------------------

def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def field_bytes(num, b):
    return varint(num << 3 | 2) + varint(len(b)) + b


def field_fixed32(num, v):
    return varint(num << 3 | 5) + struct.pack("<I", v)


def entry_proto(dtype, shape, offset, size, crc, slices=False):
    dims = b"".join(field_bytes(2, field_varint(1, d)) for d in shape)
    out = field_varint(1, dtype) + field_bytes(2, dims) + field_varint(4, offset)
    out += field_varint(5, size) + field_fixed32(6, crc)
    if slices:
        out += field_bytes(7, b"")
    return out


def header_proto(shards=1):
    return field_varint(1, shards) + field_bytes(3, field_varint(1, 1))


def block(items, restart_interval=4):
    """A table block: prefix-compressed entries, restart offsets, their count."""
    out, restarts, prev = bytearray(), [], b""
    for i, (k, v) in enumerate(items):
        shared = 0
        if i % restart_interval:
            while shared < min(len(k), len(prev)) and k[shared] == prev[shared]:
                shared += 1
        else:
            restarts.append(len(out))
        out += varint(shared) + varint(len(k) - shared) + varint(len(v)) + k[shared:] + v
        prev = k
    for r in restarts or [0]:
        out += struct.pack("<I", r)
    return bytes(out + struct.pack("<I", len(restarts or [0])))


def table(items, block_bytes=300, ctype=0):
    """A LevelDB-format table of sorted (key, value) items, blocks of about block_bytes."""
    out, index = bytearray(), []

    def put(contents):
        handle = varint(len(out)) + varint(len(contents))
        trailer = bytes([ctype])
        out.extend(contents + trailer + struct.pack("<I", mask(crc32c(contents + trailer))))
        return handle

    pending, size = [], 0
    for k, v in items:
        pending.append((k, v))
        size += len(k) + len(v)
        if size >= block_bytes:
            index.append((k, put(block(pending))))
            pending, size = [], 0
    if pending:
        index.append((pending[-1][0], put(block(pending))))
    meta = put(block([]))
    idx = put(block(index, restart_interval=1))
    footer = (meta + idx).ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    return bytes(out + footer)


# ---- a small BERT as TF names it --------------------------------------------------------------

def tf_tensors(rng):
    s, C, F = SIZES, SIZES["hidden"], SIZES["ffn"]
    t = {}
    g = lambda *shape: rng.normal(0, 1, shape).astype(np.float32)  # noqa: E731
    t["bert/embeddings/word_embeddings"] = g(s["vocab"], C)
    t["bert/embeddings/position_embeddings"] = g(s["positions"], C)
    t["bert/embeddings/token_type_embeddings"] = g(s["types"], C)

    def dense(name, n_in, n_out):
        t[name + "/kernel"], t[name + "/bias"] = g(n_in, n_out), g(n_out)

    def norm(name):
        t[name + "/gamma"], t[name + "/beta"] = g(C), g(C)

    norm("bert/embeddings/LayerNorm")
    for l in range(s["layers"]):
        p = f"bert/encoder/layer_{l}/"
        for part in ("query", "key", "value"):
            dense(p + "attention/self/" + part, C, C)
        dense(p + "attention/output/dense", C, C)
        norm(p + "attention/output/LayerNorm")
        dense(p + "intermediate/dense", C, F)
        dense(p + "output/dense", F, C)
        norm(p + "output/LayerNorm")
    dense("bert/pooler/dense", C, C)
    dense("cls/predictions/transform/dense", C, C)
    norm("cls/predictions/transform/LayerNorm")
    t["cls/predictions/output_bias"] = g(s["vocab"])
    return {"module/" + k: v for k, v in t.items()}


def write_bundle(d, tensors, edit=None, shards=1, ctype=0, vocab_lines=None):
    """Bundle d/variables/variables.{index,data-00000-of-00001} and d/vocab.txt. edit(name, entry
    dict) may change an entry's fields before it is encoded."""
    os.makedirs(os.path.join(d, "variables"), exist_ok=True)
    data, items = bytearray(), []
    for name in sorted(tensors):
        raw = tensors[name].astype("<f4").tobytes()
        e = dict(dtype=1, shape=list(tensors[name].shape), offset=len(data), size=len(raw),
                 crc=mask(crc32c(raw)), slices=False)
        if edit:
            edit(name, e)
        items.append((name.encode(), entry_proto(**e)))
        data += raw
    prefix = os.path.join(d, "variables", "variables")
    with open(prefix + ".data-00000-of-00001", "wb") as f:
        f.write(data)
    with open(prefix + ".index", "wb") as f:
        f.write(table([(b"", header_proto(shards))] + items, ctype=ctype))
    with open(os.path.join(d, "vocab.txt"), "w") as f:
        n = SIZES["vocab"] if vocab_lines is None else vocab_lines
        f.write("".join(f"tok{i}\n" for i in range(n)))
    return prefix


def convert(d, prefix):
    out = os.path.join(d, "out")
    args = [sys.executable, CONVERTER, "--variables", prefix, "--vocab",
            os.path.join(d, "vocab.txt"), "--out", out]
    for k, v in SIZES.items():
        args += ["--vocab-size" if k == "vocab" else "--" + k, str(v)]
    p = subprocess.run(args, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr, out


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    out = {}
    for name, t in header.items():
        if name != "__metadata__":
            b, e = t["data_offsets"]
            out[name] = np.frombuffer(blob[8 + n + b : 8 + n + e], "<f4").reshape(t["shape"])
    return out


failures = []


def expect(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def check_good(work, tensors):
    d = os.path.join(work, "good")
    rc, msg, out = convert(d, write_bundle(d, tensors))
    expect(rc == 0, "a well-formed bundle converts: " + msg.strip())
    if rc:
        return
    st = read_safetensors(os.path.join(out, "model.safetensors"))
    expect(len(st) == len(tensors), f"{len(tensors)} tensors in, {len(st)} out")
    pairs = [("bert/embeddings/word_embeddings", "bert.embeddings.word_embeddings.weight", False),
             ("bert/encoder/layer_1/attention/self/key/kernel",
              "bert.encoder.layer.1.attention.self.key.weight", True),
             ("bert/encoder/layer_0/intermediate/dense/kernel",
              "bert.encoder.layer.0.intermediate.dense.weight", True),
             ("bert/encoder/layer_1/output/dense/kernel", "bert.encoder.layer.1.output.dense.weight",
              True),
             ("bert/encoder/layer_0/output/LayerNorm/gamma",
              "bert.encoder.layer.0.output.LayerNorm.weight", False),
             ("bert/encoder/layer_0/output/LayerNorm/beta",
              "bert.encoder.layer.0.output.LayerNorm.bias", False),
             ("cls/predictions/output_bias", "cls.predictions.bias", False),
             ("cls/predictions/transform/dense/kernel", "cls.predictions.transform.dense.weight",
              True)]
    for tf, hf, transposed in pairs:
        src = tensors["module/" + tf]
        got = st.get(hf)
        expect(got is not None and np.array_equal(got, src.T if transposed else src),
               f"{hf} = {tf}{' transposed' if transposed else ''}")
    with open(os.path.join(out, "config.json")) as f:
        cfg = json.load(f)
    expect(cfg["model_type"] == "bert" and cfg["hidden_size"] == 8 and cfg["num_hidden_layers"] == 2
           and cfg["num_attention_heads"] == 2 and cfg["intermediate_size"] == 12
           and cfg["vocab_size"] == 20, "config.json has the sizes")
    expect(os.path.exists(os.path.join(out, "vocab.txt")) and
           os.path.exists(os.path.join(out, "tokenizer_config.json")), "vocab.txt and tokenizer_config.json")
    first = open(os.path.join(out, "model.safetensors"), "rb").read()
    rc, _, _ = convert(d, os.path.join(d, "variables", "variables"))
    expect(rc == 0 and open(os.path.join(out, "model.safetensors"), "rb").read() == first,
           "converting again writes the same bytes")


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x40]))


def check_bad(work, tensors):
    key = "module/bert/encoder/layer_1/attention/self/value/kernel"

    def edited(field, value):
        def edit(name, e):
            if name == key:
                e[field] = value(e) if callable(value) else value
        return edit

    extra = dict(tensors)
    extra["module/bert/encoder/layer_2/attention/self/value/kernel"] = tensors[key]
    missing = {k: v for k, v in tensors.items() if k != key}
    wrong_shape = dict(tensors)
    wrong_shape[key] = np.zeros((8, 9), np.float32)
    # (label, bundle arguments, damage after writing, text the message must hold)
    cases = [
        ("unexpected tensor name", dict(tensors=extra), None, "unexpected tensor 'module/bert/encoder/layer_2"),
        ("missing tensor", dict(tensors=missing), None, f"missing tensor '{key}'"),
        ("dtype DT_DOUBLE", dict(edit=edited("dtype", 2)), None, f"'{key}' has dtype DT_DOUBLE"),
        ("wrong shape", dict(tensors=wrong_shape), None, f"'{key}' has shape [8, 9], expected [8, 8]"),
        ("size not 4 x elements", dict(edit=edited("size", lambda e: e["size"] - 4)), None,
         f"'{key}': shard 0, 252 bytes for 64"),
        ("byte range past the data file", dict(edit=edited("offset", 10**6)), None,
         f"tensor '{key}' ends at byte"),
        ("sliced entry", dict(edit=edited("slices", True)), None, f"'{key}': partitioned"),
        ("CRC-32C of a tensor", dict(), ("data", 4 * 64 * 5 + 3), "CRC-32C mismatch"),
        ("two shards", dict(shards=2), None, "2 shard(s)"),
        ("compressed blocks", dict(ctype=1), None, "compression type 1"),
        ("table block checksum", dict(), ("index", 40), "block checksum mismatch"),
        ("footer magic", dict(), ("index", -3), "not a TensorFlow table"),
        ("short vocabulary", dict(vocab_lines=19), None, "19 tokens, but the embeddings have 20"),
    ]
    for i, (label, kw, damage, text) in enumerate(cases):
        d = os.path.join(work, f"bad{i}")
        kw.setdefault("tensors", tensors)
        prefix = write_bundle(d, **kw)
        if damage:
            path = prefix + (".index" if damage[0] == "index" else ".data-00000-of-00001")
            flip(path, damage[1] if damage[1] >= 0 else os.path.getsize(path) + damage[1])
        rc, msg, out = convert(d, prefix)
        names_file = "variables.index" in msg or "variables.data" in msg or "vocab.txt" in msg
        expect(rc == 1 and text in msg and names_file and not os.path.exists(out),
               f"{label}: exit 1 naming the file, nothing written ({msg.strip()})")


def main():
    work = sys.argv[1]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    tensors = tf_tensors(np.random.default_rng(7))
    check_good(work, tensors)
    check_bad(work, tensors)
    shutil.rmtree(work, ignore_errors=True)
    print(f"{len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
