#!/usr/bin/env python3
"""Independent reference for model/encoder: a hand-written PyTorch forward pass of BERT,
DistilBERT and RoBERTa over safetensors files parsed here (JSON header + numpy.frombuffer), and a
writer of seeded random-weight checkpoints in the Hugging Face layout.

It shares no code with the C encoder: the C tests write token ids to a file, run this script, and
compare its per-layer states with their own.

  encoder_ref.py forward --model DIR --ids IDS --out OUT
      IDS: int32 LE: n, then per sequence: length, ids.
      OUT: float32 LE [n, n_layers + 1, 2, hidden]: layer 0 (embeddings) .. n, pool 0 = first
      token, 1 = mean over the sequence's tokens.
  encoder_ref.py cli --ssna PATH --model DIR
      Runs `ssna encode` as a user would and checks its JSON against this forward pass and
      sentence-transformers' published vector; exits non-zero on any mismatch.
  encoder_ref.py bench --model DIR --ids IDS [--layers A] [--batch-tokens N] [--onnx DIR]
      Times this torch forward pass (and ONNX Runtime on its exported graph when --onnx names a
      scratch folder and onnxruntime imports) over IDS in longest-first padded batches; prints
      "RESULT <engine> <seconds> <GFLOP>" lines for ops/bench/encoder.
  encoder_ref.py bench-checkpoint --out DIR [--tokenizer FILE]
      A DistilBERT-shaped checkpoint (6 layers, hidden 768, 12 heads, FFN 3072) with seeded
      random F16 weights, for speed measurements only.
  encoder_ref.py checkpoints --out DIR --ids IDS [--tokenizer FILE]
      Writes DIR/<family>-<dtype>/{config.json, model.safetensors[, tokenizer.json]} for families
      bert, distilbert, roberta and dtypes F32, F16, BF16, and the states of IDS under each as
      DIR/<family>-<dtype>/ref.bin (same layout as forward's OUT).
"""
import argparse
import json
import os
import shutil
import struct
import sys

try:
    import numpy as np
    import torch
except ImportError as exc:  # a missing dependency fails the test, never skips it
    sys.exit(f"encoder_ref.py: needs python3-torch and numpy: {exc}")

torch.set_grad_enabled(False)
# elementwise ops on both cores; GEMMs follow OPENBLAS_NUM_THREADS (set by the test environment)
torch.set_num_threads(max(2, torch.get_num_threads()))

# ---- safetensors ---------------------------------------------------------------------------

def read_safetensors(path):
    """name -> float32 numpy array (F32/F16/BF16 converted; integer tensors skipped)."""
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + hlen])
    data = blob[8 + hlen :]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        raw = data[b:e]
        if t["dtype"] == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif t["dtype"] == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif t["dtype"] == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            continue
        out[name] = a.reshape(t["shape"]).copy()
    return out


def to_bf16_bits(a):
    """float32 -> bfloat16 bits, round to nearest even."""
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def write_safetensors(path, tensors, dtype):
    """tensors: name -> numpy array (float arrays stored as dtype, int64 as I64)."""
    header, chunks, off = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name]
        if a.dtype == np.int64:
            raw, dt = a.astype("<i8").tobytes(), "I64"
        elif dtype == "F32":
            raw, dt = a.astype("<f4").tobytes(), "F32"
        elif dtype == "F16":
            raw, dt = a.astype("<f2").tobytes(), "F16"
        else:
            raw, dt = to_bf16_bits(a).astype("<u2").tobytes(), "BF16"
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)  # as the reference writer does: data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))

# ---- the three families, by hand -----------------------------------------------------------

def family_of(cfg):
    mt = cfg.get("model_type", "")
    if mt in ("bert", "distilbert", "roberta"):
        return mt
    raise SystemExit(f"encoder_ref.py: unsupported model_type {mt!r}")


def layer_names(family, l):
    if family == "distilbert":
        p = f"transformer.layer.{l}."
        return dict(q=p + "attention.q_lin", k=p + "attention.k_lin", v=p + "attention.v_lin",
                    o=p + "attention.out_lin", ln1=p + "sa_layer_norm", f1=p + "ffn.lin1",
                    f2=p + "ffn.lin2", ln2=p + "output_layer_norm")
    p = f"encoder.layer.{l}."
    return dict(q=p + "attention.self.query", k=p + "attention.self.key",
                v=p + "attention.self.value", o=p + "attention.output.dense",
                ln1=p + "attention.output.LayerNorm", f1=p + "intermediate.dense",
                f2=p + "output.dense", ln2=p + "output.LayerNorm")


class Reference:
    def __init__(self, model_dir, dtype=torch.float32):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = json.load(f)
        self.family = family_of(self.cfg)
        raw = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        prefix = {"bert": "bert.", "distilbert": "distilbert.", "roberta": "roberta."}[self.family]
        self.w = {}
        for k, v in raw.items():
            self.w[k[len(prefix):] if k.startswith(prefix) else k] = torch.from_numpy(v).to(dtype)
        d = self.family == "distilbert"
        self.C = self.cfg["dim" if d else "hidden_size"]
        self.L = self.cfg["n_layers" if d else "num_hidden_layers"]
        self.NH = self.cfg["n_heads" if d else "num_attention_heads"]
        self.eps = self.cfg.get("layer_norm_eps", 1e-12)
        self.pad_id = self.cfg.get("pad_token_id", 1 if self.family == "roberta" else 0)

    def ln(self, x, name):
        return torch.nn.functional.layer_norm(x, (self.C,), self.w[name + ".weight"],
                                              self.w[name + ".bias"], self.eps)

    def lin(self, x, name):
        return torch.nn.functional.linear(x, self.w[name + ".weight"], self.w[name + ".bias"])

    def hidden(self, ids, mask):
        """ids: [B, T] long, mask: [B, T] float (1 = token) -> the B x T x C output of every
        layer, embeddings first. Tensor operations only, so torch.onnx can trace it."""
        B, T = ids.shape
        if self.family == "roberta":  # HF's create_position_ids_from_input_ids
            m = (ids != self.pad_id).long()
            pos = torch.cumsum(m, 1) * m + self.pad_id
        else:
            pos = torch.arange(T).unsqueeze(0).expand(B, T)
        x = self.w["embeddings.word_embeddings.weight"][ids]
        x = x + self.w["embeddings.position_embeddings.weight"][pos]
        if self.family != "distilbert":
            x = x + self.w["embeddings.token_type_embeddings.weight"][0]
        x = self.ln(x, "embeddings.LayerNorm")
        hs = self.C // self.NH
        key_bias = (1.0 - mask)[:, None, None, :] * torch.finfo(x.dtype).min
        out = [x]
        for l in range(self.L):
            n = layer_names(self.family, l)
            split = lambda t: t.view(B, T, self.NH, hs).transpose(1, 2)  # noqa: E731
            q, k, v = split(self.lin(x, n["q"])), split(self.lin(x, n["k"])), split(self.lin(x, n["v"]))
            att = torch.softmax(q @ k.transpose(-1, -2) / hs**0.5 + key_bias, dim=-1)
            a = (att @ v).transpose(1, 2).reshape(B, T, self.C)
            x = self.ln(x + self.lin(a, n["o"]), n["ln1"])
            h = torch.nn.functional.gelu(self.lin(x, n["f1"]))
            x = self.ln(x + self.lin(h, n["f2"]), n["ln2"])
            out.append(x)
        return out

    def pad(self, ids_batch):
        """Right-padded [B, T] ids and [B, T] mask of a list of id lists."""
        B, T = len(ids_batch), max(len(s) for s in ids_batch)
        ids = torch.full((B, T), self.pad_id, dtype=torch.long)
        mask = torch.zeros(B, T, dtype=self.w["embeddings.word_embeddings.weight"].dtype)
        for i, s in enumerate(ids_batch):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        return ids, mask

    def states(self, ids_batch):
        """ids_batch: list of id lists -> [B, L + 1, 2, C] (first token, mean) per layer."""
        ids, mask = self.pad(ids_batch)
        out = self.hidden(ids, mask)
        res = torch.empty(len(ids_batch), self.L + 1, 2, self.C, dtype=out[0].dtype)
        lens = mask.sum(1, keepdim=True)
        for l, h in enumerate(out):
            res[:, l, 0] = h[:, 0]
            res[:, l, 1] = (h * mask[:, :, None]).sum(1) / lens
        return res

    @staticmethod
    def batches(seqs, batch_tokens):
        """Longest-first batches of at most batch_tokens padded tokens, as index lists."""
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
        i, out = 0, []
        while i < len(order):
            j = min(len(order), i + max(1, batch_tokens // len(seqs[order[i]])))
            out.append(order[i:j])
            i = j
        return out

    def run(self, seqs, batch_tokens=4096):
        """All sequences, batched longest-first with padding; rows back in input order."""
        res = torch.empty(len(seqs), self.L + 1, 2, self.C, dtype=torch.float32)
        for idx in self.batches(seqs, batch_tokens):
            res[idx] = self.states([seqs[k] for k in idx]).float()
        return res

    def flops(self, n_tokens):
        """Multiply-adds x 2 of one sequence, counted as encoder_flops() counts them."""
        F = self.w[layer_names(self.family, 0)["f1"] + ".weight"].shape[0]
        C, T = self.C, n_tokens
        return self.L * (2.0 * T * (4 * C * C + 2 * C * F) + 4.0 * T * T * C)


# ---- files ---------------------------------------------------------------------------------

def read_ids(path):
    a = np.fromfile(path, dtype="<i4")
    n, pos, seqs = int(a[0]), 1, []
    for _ in range(n):
        ln = int(a[pos])
        seqs.append(a[pos + 1 : pos + 1 + ln].tolist())
        pos += 1 + ln
    return seqs


def write_states(path, res):
    res.numpy().astype("<f4").tofile(path)

# ---- generated checkpoints -----------------------------------------------------------------

SHAPES = {  # odd sizes on purpose: nothing may assume multiples of 8
    "bert": dict(hidden=40, layers=2, heads=4, ffn=72, vocab=30522, positions=80, prefix="bert."),
    "distilbert": dict(hidden=64, layers=2, heads=4, ffn=128, vocab=30522, positions=80,
                       prefix="distilbert."),
    "roberta": dict(hidden=48, layers=3, heads=3, ffn=100, vocab=1000, positions=82, prefix=""),
}


def make_config(family, s):
    if family == "distilbert":
        return {"architectures": ["DistilBertModel"], "model_type": "distilbert", "dim": s["hidden"],
                "n_layers": s["layers"], "n_heads": s["heads"], "hidden_dim": s["ffn"],
                "vocab_size": s["vocab"], "max_position_embeddings": s["positions"],
                "activation": "gelu", "pad_token_id": 0, "sinusoidal_pos_embds": False}
    cfg = {"architectures": ["BertModel" if family == "bert" else "RobertaModel"],
           "model_type": family, "hidden_size": s["hidden"], "num_hidden_layers": s["layers"],
           "num_attention_heads": s["heads"], "intermediate_size": s["ffn"],
           "vocab_size": s["vocab"], "max_position_embeddings": s["positions"],
           "type_vocab_size": 2 if family == "bert" else 1, "hidden_act": "gelu",
           "layer_norm_eps": 1e-12 if family == "bert" else 1e-5,
           "position_embedding_type": "absolute"}
    if family == "roberta":
        cfg.update(pad_token_id=1, bos_token_id=0, eos_token_id=2)
    return cfg


def make_weights(family, s, rng):
    C, F = s["hidden"], s["ffn"]
    # std 0.2 (not BERT's 0.02) so every layer moves the states visibly
    g = lambda *shape: rng.normal(0, 0.2, shape).astype(np.float32)  # noqa: E731
    w = {"embeddings.word_embeddings.weight": g(s["vocab"], C),
         "embeddings.position_embeddings.weight": g(s["positions"], C),
         "embeddings.LayerNorm.weight": 1 + g(C), "embeddings.LayerNorm.bias": g(C)}
    if family != "distilbert":
        w["embeddings.token_type_embeddings.weight"] = g(2 if family == "bert" else 1, C)
        w["embeddings.position_ids"] = np.arange(s["positions"], dtype=np.int64)[None]
    for l in range(s["layers"]):
        n = layer_names(family, l)
        for key, shape in (("q", (C, C)), ("k", (C, C)), ("v", (C, C)), ("o", (C, C)),
                           ("f1", (F, C)), ("f2", (C, F))):
            w[n[key] + ".weight"], w[n[key] + ".bias"] = g(*shape), g(shape[0])
        for key in ("ln1", "ln2"):
            w[n[key] + ".weight"], w[n[key] + ".bias"] = 1 + g(C), g(C)
    out = {s["prefix"] + k: v for k, v in w.items()}
    if family == "bert":  # a task head the encoder must ignore
        out["pooler.dense.weight"] = g(C, C)
    return out


def checkpoints(out_dir, ids_path, tokenizer):
    seqs = read_ids(ids_path)
    for fi, family in enumerate(SHAPES):
        s = SHAPES[family]
        weights = make_weights(family, s, np.random.default_rng(1234 + fi))
        # the C test draws ids valid for every family: below the smallest vocabulary, and never
        # RoBERTa's pad id 1 (HF gives a pad token inside a sequence the pad position)
        if any(t >= s["vocab"] or t == 1 for q in seqs for t in q):
            raise SystemExit("encoder_ref.py: ids must lie in [0, 1000) and avoid 1")
        for dtype in ("F32", "F16", "BF16"):
            d = os.path.join(out_dir, f"{family}-{dtype}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(make_config(family, s), f, indent=2)
            write_safetensors(os.path.join(d, "model.safetensors"), weights, dtype)
            if tokenizer and family != "roberta":
                shutil.copy(tokenizer, os.path.join(d, "tokenizer.json"))
            # float64 reference on the stored (rounded) weights
            ref = Reference(d, torch.float64).run(seqs)
            write_states(os.path.join(d, "ref.bin"), ref)


PUBLISHED = [0.06765693, 0.06349593, 0.04871314, 0.07930495, 0.03744806, 0.00265273]


def check_cli(ssna, model):
    import subprocess

    def run(*args):
        return subprocess.run([ssna, "encode", *args], capture_output=True, text=True)

    failures = []

    def expect(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    h = run("--help")
    expect(h.returncode == 0 and "--pool cls|mean" in h.stdout and "--layers" in h.stdout,
           "--help exits 0 and documents --pool and --layers")
    expect(run("--pool", "max", "x").returncode == 2, "a bad --pool is a usage error (2)")
    expect(run("--model", model).returncode == 2, "no text is a usage error (2)")
    expect(run("--model", model + "/nonexistent", "x").returncode == 1, "a missing model fails (1)")
    texts = ["This is an example sentence", 'Quotes "and" \\ back\tslash, caf\u00e9']
    r = run("--model", model, "--pool", "mean", "--normalize", "--layers", "1", texts[0])
    expect(r.returncode == 0, "mean + normalize runs: " + r.stderr.strip())
    if r.returncode == 0:
        out = json.loads(r.stdout)
        t = out["texts"][0]
        expect(t["ids"] == [101, 2023, 2003, 2019, 2742, 6251, 102], "token ids of the example")
        expect(t["tokens"][1] == "this" and len(t["layers"]) == 1 and t["layers"][0]["layer"] == 6,
               "tokens and the top layer only")
        v = t["layers"][0]["vector"]
        expect(max(abs(a - b) for a, b in zip(v, PUBLISHED)) < 2e-4,
               "published all-MiniLM-L6-v2 vector within 2e-4")
        expect(abs(sum(x * x for x in v) - 1) < 1e-5, "unit norm")
    r = run("--model", model, *texts)
    expect(r.returncode == 0, "default cls, all layers: " + r.stderr.strip())
    if r.returncode == 0:
        out = json.loads(r.stdout)
        expect(out["pool"] == "cls" and out["encoder"]["weights_dtype"] == "F16", "header fields")
        expect([t["text"] for t in out["texts"]] == texts, "texts round-trip through JSON escaping")
        ref = Reference(model).run([t["ids"] for t in out["texts"]])
        for i, t in enumerate(out["texts"]):
            got = torch.tensor([l["vector"] for l in t["layers"]])  # top layer first
            want = ref[i, :, 0].flip(0)
            expect(len(t["layers"]) == 7 and (got - want).abs().max().item() < 1e-4,
                   f"text {i}: every layer's first-token state matches torch within 1e-4")
    if failures:
        raise SystemExit(f"encoder_ref.py cli: {len(failures)} check(s) failed")


def bench(model, ids_path, layers, batch_tokens, onnx_dir):
    import time

    seqs = read_ids(ids_path)
    ref = Reference(model)
    gflop = sum(ref.flops(len(q)) for q in seqs) / 1e9
    batches = [[seqs[k] for k in idx] for idx in Reference.batches(seqs, batch_tokens)]
    padded = [ref.pad(b) for b in batches]

    def torch_pass():
        for ids, mask in padded:
            out = ref.hidden(ids, mask)
            torch.stack([h[:, 0] for h in out[::-1][:layers]], 1)

    torch_pass()  # warm-up: first-touch of weights and allocator pools
    t0 = time.perf_counter()
    torch_pass()
    print(f"RESULT torch {time.perf_counter() - t0:.4f} {gflop:.2f}", flush=True)
    if not onnx_dir:
        return
    try:
        import onnxruntime as ort
    except ImportError:
        print("RESULT onnxruntime unavailable (pip install onnxruntime)", flush=True)
        return

    class TopLayers(torch.nn.Module):
        def forward(self, ids, mask):
            out = ref.hidden(ids, mask)
            return torch.stack([h[:, 0] for h in out[::-1][:layers]], 1)

    path = os.path.join(onnx_dir, "encoder.onnx")
    ids, mask = padded[0]
    torch.onnx.export(TopLayers(), (ids, mask), path, input_names=["ids", "mask"],
                      output_names=["states"], opset_version=14,
                      dynamic_axes={"ids": {0: "B", 1: "T"}, "mask": {0: "B", 1: "T"}})
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(os.environ.get("OPENBLAS_NUM_THREADS", "2"))
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feeds = [{"ids": i.numpy(), "mask": m.numpy()} for i, m in padded]
    got = sess.run(None, feeds[0])[0]
    want = TopLayers()(*padded[0]).numpy()
    print(f"onnxruntime agrees with torch within {abs(got - want).max():.2g}", flush=True)
    for f in feeds:  # warm-up
        sess.run(None, f)
    t0 = time.perf_counter()
    for f in feeds:
        sess.run(None, f)
    print(f"RESULT onnxruntime {time.perf_counter() - t0:.4f} {gflop:.2f}", flush=True)


def bench_checkpoint(out_dir, tokenizer):
    s = dict(hidden=768, layers=6, heads=12, ffn=3072, vocab=30522, positions=512, prefix="")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(make_config("distilbert", s), f, indent=2)
    weights = make_weights("distilbert", s, np.random.default_rng(99))
    write_safetensors(os.path.join(out_dir, "model.safetensors"), weights, "F16")
    if tokenizer:
        shutil.copy(tokenizer, os.path.join(out_dir, "tokenizer.json"))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("forward")
    f.add_argument("--model", required=True)
    f.add_argument("--ids", required=True)
    f.add_argument("--out", required=True)
    k = sub.add_parser("cli")
    k.add_argument("--ssna", required=True)
    k.add_argument("--model", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--model", required=True)
    b.add_argument("--ids", required=True)
    b.add_argument("--layers", type=int, default=3)
    b.add_argument("--batch-tokens", type=int, default=2048)
    b.add_argument("--onnx")
    g = sub.add_parser("bench-checkpoint")
    g.add_argument("--out", required=True)
    g.add_argument("--tokenizer")
    c = sub.add_parser("checkpoints")
    c.add_argument("--out", required=True)
    c.add_argument("--ids", required=True)
    c.add_argument("--tokenizer")
    a = ap.parse_args()
    if a.cmd == "forward":
        write_states(a.out, Reference(a.model).run(read_ids(a.ids)))
    elif a.cmd == "bench":
        bench(a.model, a.ids, a.layers, a.batch_tokens, a.onnx)
    elif a.cmd == "bench-checkpoint":
        bench_checkpoint(a.out, a.tokenizer)
    elif a.cmd == "cli":
        check_cli(a.ssna, a.model)
    else:
        checkpoints(a.out, a.ids, a.tokenizer)


if __name__ == "__main__":
    main()
