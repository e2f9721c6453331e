#!/usr/bin/env python3
"""convert_tf_bert.py - Google's BERT as a TensorFlow SavedModel's variables (a TensorFlow "tensor
bundle") into a Hugging Face checkpoint folder, without TensorFlow.

    convert_tf_bert.py --variables SAVEDMODEL/variables/variables --vocab VOCAB.txt --out DIR
                       [--layers 12 --hidden 768 --heads 12 --ffn 3072 --vocab-size 30522
                        --positions 512 --types 2] [--prefix module/]

Writes DIR/config.json, DIR/model.safetensors (float32, Hugging Face BertForMaskedLM names:
bert.* for the encoder and pooler, cls.predictions.* for the masked-LM head, cls.seq_relationship.*
when the bundle has it), DIR/vocab.txt and DIR/tokenizer_config.json. The sizes default to
BERT-base (L-12, H-768, A-12); the head count is not stored in the weights, so it comes from the
command line (the artifact's name says A-12).

A tensor bundle is two files (tensorflow/core/util/tensor_bundle): PREFIX.data-00000-of-00001, the
raw little-endian tensor bytes, and PREFIX.index, a LevelDB-format table (an "SSTable": prefix-
compressed sorted blocks, an index block and a footer; each block followed by its compression
type and a masked CRC-32C) mapping "" to a BundleHeaderProto and each variable name to a
BundleEntryProto (dtype, shape, shard, offset, size, masked CRC-32C of the bytes). Both protos are
decoded here from the protobuf wire format.

Everything is checked and nothing is guessed: the footer's magic, every block's checksum and
compression type, strictly increasing keys, the header (one shard, little-endian), every entry's
dtype (float32), shape (against the sizes above), byte range (inside the data file, size = 4 x
elements) and CRC-32C; every bundle name must be one the mapping knows and every mapped name must
be present. Any failure exits 1 with a message naming the file and the tensor; nothing is written
to DIR until every tensor has passed.

Needs numpy and crcmod (Debian: python3-numpy, python3-crcmod).
"""
import argparse
import json
import os
import struct
import sys

try:
    import crcmod.predefined
    import numpy as np
except ImportError as exc:
    sys.exit(f"convert_tf_bert.py: needs numpy and crcmod (python3-numpy, python3-crcmod): {exc}")

TABLE_MAGIC = 0xDB4775248B80FB57  # LevelDB's, kept by TensorFlow's table format
FOOTER_LEN = 48  # two block handles padded to 40 bytes, then the magic
DT_FLOAT = 1  # tensorflow/core/framework/types.proto
DTYPE_NAMES = {1: "DT_FLOAT", 2: "DT_DOUBLE", 3: "DT_INT32", 7: "DT_STRING", 9: "DT_INT64",
               14: "DT_BFLOAT16", 19: "DT_HALF"}

crc32c = crcmod.predefined.mkCrcFun("crc-32c")


class ConvertError(Exception):
    pass


def unmask_crc(masked):
    """TensorFlow (as LevelDB) stores CRCs rotated right by 15 bits plus a constant."""
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def mask_crc(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


# ---- protobuf wire format --------------------------------------------------------------------

def varint(buf, pos, what):
    """(value, next position) of the base-128 varint at buf[pos]."""
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ConvertError(f"{what}: truncated or overlong varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def proto_fields(buf, what):
    """field number -> list of values (int for varint/fixed, bytes for length-delimited)."""
    out, pos = {}, 0
    while pos < len(buf):
        key, pos = varint(buf, pos, what)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos, what)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise ConvertError(f"{what}: truncated fixed64 field {field}")
            (value,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
        elif wire == 2:
            n, pos = varint(buf, pos, what)
            if pos + n > len(buf):
                raise ConvertError(f"{what}: field {field} runs past the message")
            value, pos = bytes(buf[pos : pos + n]), pos + n
        elif wire == 5:
            if pos + 4 > len(buf):
                raise ConvertError(f"{what}: truncated fixed32 field {field}")
            (value,) = struct.unpack_from("<I", buf, pos)
            pos += 4
        else:
            raise ConvertError(f"{what}: unsupported wire type {wire} (field {field})")
        out.setdefault(field, []).append(value)
    return out


def one(fields, number, default=0):
    values = fields.get(number)
    return values[-1] if values else default  # proto3: the last occurrence wins


# ---- the table (LevelDB SSTable) -------------------------------------------------------------

def block_handle(buf, pos, what):
    offset, pos = varint(buf, pos, what)
    size, pos = varint(buf, pos, what)
    return (offset, size), pos


def read_block(data, handle, path, what):
    """Contents of the block at handle = (offset, size), after checking its trailer."""
    offset, size = handle
    if offset + size + 5 > len(data):
        raise ConvertError(f"{path}: {what} at byte {offset} (+{size}) runs past the file "
                           f"({len(data)} bytes)")
    contents = data[offset : offset + size]
    ctype = data[offset + size]
    (stored,) = struct.unpack_from("<I", data, offset + size + 1)
    if unmask_crc(stored) != crc32c(data[offset : offset + size + 1]):
        raise ConvertError(f"{path}: {what} at byte {offset}: block checksum mismatch")
    if ctype != 0:
        raise ConvertError(f"{path}: {what} at byte {offset}: compression type {ctype} "
                           "(only uncompressed tables are supported; TensorFlow writes them so)")
    return contents


def block_entries(block, path, what):
    """(key, value) pairs of one block: entries share a prefix with the previous key; the block
    ends with the restart offsets and their count (uint32 each)."""
    if len(block) < 4:
        raise ConvertError(f"{path}: {what}: block of {len(block)} bytes has no restart count")
    (n_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * n_restarts
    if end < 0:
        raise ConvertError(f"{path}: {what}: {n_restarts} restart points do not fit the block")
    pos, key, out = 0, b"", []
    while pos < end:
        shared, pos = varint(block, pos, f"{path}: {what}")
        unshared, pos = varint(block, pos, f"{path}: {what}")
        vlen, pos = varint(block, pos, f"{path}: {what}")
        if shared > len(key) or pos + unshared + vlen > end:
            raise ConvertError(f"{path}: {what}: corrupt entry at block byte {pos}")
        key = key[:shared] + bytes(block[pos : pos + unshared])
        pos += unshared
        out.append((key, bytes(block[pos : pos + vlen])))
        pos += vlen
    return out


def read_table(path):
    """Every (key, value) of the table file, in order."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < FOOTER_LEN:
        raise ConvertError(f"{path}: {len(data)} bytes, shorter than a table footer")
    footer = data[-FOOTER_LEN:]
    (magic,) = struct.unpack_from("<Q", footer, 40)
    if magic != TABLE_MAGIC:
        raise ConvertError(f"{path}: not a TensorFlow table (magic {magic:#x})")
    _, pos = block_handle(footer, 0, f"{path}: footer")  # metaindex: unused (no filters)
    index_handle, _ = block_handle(footer, pos, f"{path}: footer")
    index = block_entries(read_block(data, index_handle, path, "index block"), path, "index block")
    entries = []
    for i, (_, value) in enumerate(index):
        handle, _ = block_handle(value, 0, f"{path}: index entry {i}")
        entries += block_entries(read_block(data, handle, path, f"data block {i}"), path,
                                 f"data block {i}")
    for (a, _), (b, _) in zip(entries, entries[1:]):
        if not a < b:
            raise ConvertError(f"{path}: keys out of order: {a!r} then {b!r}")
    return entries


# ---- the bundle ------------------------------------------------------------------------------

def read_bundle(prefix):
    """name -> dict(dtype, shape, offset, size, crc) of every tensor; checks the header."""
    path = prefix + ".index"
    try:
        table = read_table(path)
    except OSError as exc:
        raise ConvertError(f"{path}: {exc.strerror}") from exc
    if not table or table[0][0] != b"":
        raise ConvertError(f"{path}: no bundle header (the entry keyed by the empty string)")
    header = proto_fields(table[0][1], f"{path}: header")
    shards, endian = one(header, 1), one(header, 2)
    if shards != 1 or endian != 0:
        raise ConvertError(f"{path}: {shards} shard(s), endianness {endian}: only one "
                           "little-endian shard is supported")
    out = {}
    for key, value in table[1:]:
        name = key.decode("utf-8", "replace")
        what = f"{path}: tensor '{name}'"
        e = proto_fields(value, what)
        if e.get(7):
            raise ConvertError(f"{what}: partitioned (sliced) tensors are not supported")
        shape = []
        for dim in proto_fields(one(e, 2, b""), what).get(2, []):
            shape.append(one(proto_fields(dim, what), 1))
        out[name] = dict(dtype=one(e, 1), shape=tuple(shape), shard=one(e, 3), offset=one(e, 4),
                         size=one(e, 5), crc=one(e, 6))
    return out


def load_tensor(prefix, data, name, entry, want_shape):
    """The checked float32 array of one bundle entry."""
    what = f"{prefix}.index: tensor '{name}'"
    if entry["dtype"] != DT_FLOAT:
        dt = DTYPE_NAMES.get(entry["dtype"], str(entry["dtype"]))
        raise ConvertError(f"{what} has dtype {dt}, expected DT_FLOAT")
    if entry["shape"] != tuple(want_shape):
        raise ConvertError(f"{what} has shape {list(entry['shape'])}, expected {list(want_shape)}")
    count = int(np.prod(want_shape))
    off, size = entry["offset"], entry["size"]
    if entry["shard"] != 0 or size != 4 * count:
        raise ConvertError(f"{what}: shard {entry['shard']}, {size} bytes for {count} float32 "
                           "values")
    if off + size > len(data):
        raise ConvertError(f"{prefix}.data-00000-of-00001: tensor '{name}' ends at byte "
                           f"{off + size} but the file holds {len(data)} bytes")
    raw = data[off : off + size]
    if crc32c(memoryview(raw)) != unmask_crc(entry["crc"]):
        raise ConvertError(f"{prefix}.data-00000-of-00001: tensor '{name}': CRC-32C mismatch")
    return np.frombuffer(raw, dtype="<f4").reshape(want_shape)


# ---- names and shapes ------------------------------------------------------------------------

def tensor_map(s):
    """TF name (without the module prefix) -> (HF name, TF shape, transpose).
    TF dense kernels are [in, out]; PyTorch's Linear weights are [out, in]."""
    C, F = s.hidden, s.ffn
    m = {}

    def dense(tf, hf, n_in, n_out):
        m[tf + "/kernel"] = (hf + ".weight", (n_in, n_out), True)
        m[tf + "/bias"] = (hf + ".bias", (n_out,), False)

    def norm(tf, hf):
        m[tf + "/gamma"] = (hf + ".weight", (C,), False)
        m[tf + "/beta"] = (hf + ".bias", (C,), False)

    for tf, hf, rows in (("word_embeddings", "word_embeddings", s.vocab_size),
                         ("position_embeddings", "position_embeddings", s.positions),
                         ("token_type_embeddings", "token_type_embeddings", s.types)):
        m["bert/embeddings/" + tf] = ("bert.embeddings." + hf + ".weight", (rows, C), False)
    norm("bert/embeddings/LayerNorm", "bert.embeddings.LayerNorm")
    for l in range(s.layers):
        tf, hf = f"bert/encoder/layer_{l}/", f"bert.encoder.layer.{l}."
        for part in ("query", "key", "value"):
            dense(tf + "attention/self/" + part, hf + "attention.self." + part, C, C)
        dense(tf + "attention/output/dense", hf + "attention.output.dense", C, C)
        norm(tf + "attention/output/LayerNorm", hf + "attention.output.LayerNorm")
        dense(tf + "intermediate/dense", hf + "intermediate.dense", C, F)
        dense(tf + "output/dense", hf + "output.dense", F, C)
        norm(tf + "output/LayerNorm", hf + "output.LayerNorm")
    dense("bert/pooler/dense", "bert.pooler.dense", C, C)
    dense("cls/predictions/transform/dense", "cls.predictions.transform.dense", C, C)
    norm("cls/predictions/transform/LayerNorm", "cls.predictions.transform.LayerNorm")
    # the decoder matrix is the word embeddings (tied); only its bias is stored
    m["cls/predictions/output_bias"] = ("cls.predictions.bias", (s.vocab_size,), False)
    return m


# the next-sentence head: converted when present, not required
OPTIONAL = {"cls/seq_relationship/output_weights": ("cls.seq_relationship.weight", (2, None), False),
            "cls/seq_relationship/output_bias": ("cls.seq_relationship.bias", (2,), False)}


def config_json(s):
    return {"architectures": ["BertForMaskedLM"], "model_type": "bert",
            "hidden_size": s.hidden, "num_hidden_layers": s.layers,
            "num_attention_heads": s.heads, "intermediate_size": s.ffn, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": s.positions, "type_vocab_size": s.types,
            "initializer_range": 0.02, "layer_norm_eps": 1e-12, "vocab_size": s.vocab_size,
            "pad_token_id": 0, "position_embedding_type": "absolute"}


def write_safetensors(path, tensors):
    """tensors: HF name -> float32 array, written in name order (so the file is reproducible)."""
    header, off = {}, 0
    names = sorted(tensors)
    for name in names:
        n = tensors[name].size * 4
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [off, off + n]}
        off += n
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # tensor data 8-byte aligned, as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for name in names:
            f.write(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())


def convert(a):
    bundle = read_bundle(a.variables)
    data_path = a.variables + ".data-00000-of-00001"
    try:
        data = np.memmap(data_path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as exc:
        raise ConvertError(f"{data_path}: cannot map: {exc}") from exc
    spec = tensor_map(a)
    known = {a.prefix + k: v for k, v in spec.items()}
    optional = {a.prefix + k: v for k, v in OPTIONAL.items()}
    for name in bundle:
        if name not in known and name not in optional:
            raise ConvertError(f"{a.variables}.index: unexpected tensor '{name}' (not part of "
                               f"a {a.layers}-layer BERT with the prefix '{a.prefix}')")
    missing = sorted(set(known) - set(bundle))
    if missing:
        raise ConvertError(f"{a.variables}.index: missing tensor '{missing[0]}' "
                           f"({len(missing)} missing in all)")
    out, n_params = {}, 0
    for name, entry in bundle.items():
        hf, shape, transpose = known.get(name) or optional[name]
        shape = tuple(a.hidden if d is None else d for d in shape)
        x = load_tensor(a.variables, data, name, entry, shape)
        out[hf] = x.T if transpose else x
        if hf.startswith("bert."):
            n_params += x.size
    with open(a.vocab, "rb") as f:
        n_vocab = sum(1 for line in f.read().decode("utf-8").split("\n") if line)
    if n_vocab != a.vocab_size:
        raise ConvertError(f"{a.vocab}: {n_vocab} tokens, but the embeddings have "
                           f"{a.vocab_size} rows")
    os.makedirs(a.out, exist_ok=True)
    write_safetensors(os.path.join(a.out, "model.safetensors"), out)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config_json(a), f, indent=2)
        f.write("\n")
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "model_max_length": a.positions,
                   "tokenizer_class": "BertTokenizer"}, f, indent=2)
        f.write("\n")
    with open(a.vocab, "rb") as src, open(os.path.join(a.out, "vocab.txt"), "wb") as dst:
        dst.write(src.read())
    print(f"convert_tf_bert.py: {len(bundle)} tensors checked (CRC-32C, dtype, shape), "
          f"{n_params:,} encoder parameters (bert.*), {len(out)} tensors into {a.out}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variables", required=True, help="bundle prefix: .../variables/variables")
    ap.add_argument("--vocab", required=True, help="the SavedModel's assets/vocab.txt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--prefix", default="module/", help="scope of every variable name")
    for name, default in (("layers", 12), ("hidden", 768), ("heads", 12), ("ffn", 3072),
                          ("vocab-size", 30522), ("positions", 512), ("types", 2)):
        ap.add_argument("--" + name, type=int, default=default)
    a = ap.parse_args(argv)
    if a.hidden % a.heads:
        ap.error(f"--hidden {a.hidden} is not a multiple of --heads {a.heads}")
    try:
        convert(a)
    except ConvertError as exc:
        print(f"convert_tf_bert.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
