#!/usr/bin/python3
"""ssna_ref.py - python3-torch reference of the WHOLE SSNA model, written independently of the C
code in the way UniSRec / RecBole write it: one nn.Linear-style product per whitening head,
torch.nn.GRU for the integration, PADDED [B, T] SASRec with an additive causal + key-padding
mask, and [N, N] in-batch logits with same-target entries masked (C packs rows and scores
against the distinct targets instead; both are the same loss).

usage: /usr/bin/python3 ssna_ref.py OUTDIR          (reference files for the C test)
       /usr/bin/python3 ssna_ref.py --bench DUMP [EPOCHS] [BATCH]   (ops/bench/train)

For every variant it writes OUTDIR/<case>.bin with the config, the cached item states, a batch,
the initial parameters, the noise of each step (dropout keep flags and gate N(0,1) draws, in the
order ssna.h documents), the loss of each step, every parameter gradient of step 0, and the
parameters after STEPS Adam steps. tests/test_ssna_reference.c loads the same weights, replays
the same noise, and compares. Computed in float64; the C model runs float32.

usage: /usr/bin/python3 ssna_ref.py OUTDIR
"""
import math
import os
import struct
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # a missing dependency fails the test, never skips it
    sys.exit("ssna_ref.py: python3-torch is required (Debian package python3-torch; run with "
             "/usr/bin/python3): %s" % e)

VARIANTS = ["gru", "mean", "weighted", "tmoe", "tmlp", "id"]
STEPS = 3
LR = 1e-3

LOSSES = ["inbatch", "full", "logq"]
SCORES = ["cos", "dot"]

# case name, variant, kept layers, loss, score; a name ending in _ids adds ID rows to the text
# vectors (C: SsnaConfig.item_ids)
CASES = [("gru3", "gru", 3, "inbatch", "cos"), ("gru1", "gru", 1, "inbatch", "cos"),
         ("mean3", "mean", 3, "inbatch", "cos"), ("weighted2", "weighted", 2, "inbatch", "cos"),
         ("tmoe", "tmoe", 1, "inbatch", "cos"), ("tmlp", "tmlp", 1, "inbatch", "cos"),
         ("id", "id", 1, "inbatch", "cos"), ("gru3_full", "gru", 3, "full", "cos"),
         ("id_full", "id", 1, "full", "cos"), ("gru3_logq", "gru", 3, "logq", "cos"),
         ("tmlp_logq", "tmlp", 1, "logq", "cos"), ("id_full_dot", "id", 1, "full", "dot"),
         ("gru3_logq_dot", "gru", 3, "logq", "dot"), ("gru3_logq_ids", "gru", 3, "logq", "cos"),
         ("tmlp_full_dot_ids", "tmlp", 1, "full", "dot")]


class Writer:
    """Records: u32 name length, name, u32 dtype (0 f32, 1 i32, 2 u8), u32 ndim, u32 dims, data."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(b"SSNAREF1")

    def put(self, name, t, dtype=0):
        t = torch.as_tensor(t).detach().contiguous()
        fmt = {0: torch.float32, 1: torch.int32, 2: torch.uint8}[dtype]
        arr = t.to(fmt).numpy().tobytes() if hasattr(t, "numpy") else None
        nb = name.encode()
        self.f.write(struct.pack("<I", len(nb)) + nb)
        self.f.write(struct.pack("<II", dtype, t.dim()))
        for s in t.shape:
            self.f.write(struct.pack("<I", s))
        self.f.write(arr)

    def close(self):
        self.f.close()


class Noise:
    """Draws in the model's order and records each draw for the C replay."""

    def __init__(self, gen, writer, step):
        self.gen, self.w, self.step, self.k = gen, writer, step, 0

    def mask(self, shape, p):
        keep = (torch.rand(shape, generator=self.gen) >= p).to(torch.uint8)
        self.w.put("noise.%d.%d" % (self.step, self.k), keep.reshape(-1), 2)
        self.k += 1
        return keep.double()

    def normal(self, shape):
        x = torch.randn(shape, generator=self.gen).float().double()
        self.w.put("noise.%d.%d" % (self.step, self.k), x.reshape(-1), 0)
        self.k += 1
        return x


def n_adapters(variant, layers):
    return {"gru": layers, "mean": layers, "weighted": layers, "tmoe": 1}.get(variant, 0)


def make_params(cfg, gen):
    """Random (not the zero inits) so every path carries gradient; float32-representable."""
    v, H, d, nE, I, L = cfg["variant"], cfg["hidden"], cfg["d"], cfg["nE"], cfg["inner"], cfg["L"]
    P = {}

    def rnd(name, *shape, std=0.1, mean=0.0):
        P[name] = (mean + std * torch.randn(shape, generator=gen)).float().double()

    for a in range(n_adapters(v, L)):
        rnd("adapter.%d.w" % a, nE * d, H, std=0.2)
        rnd("adapter.%d.b" % a, nE, H, std=0.2)
        rnd("adapter.%d.gate" % a, nE, H, std=0.3)
        rnd("adapter.%d.noise" % a, nE, H, std=0.3)
    if v == "gru":
        for n in ("w_ih", "w_hh"):
            rnd("gru." + n, 3 * d, d, std=0.3)
        for n in ("b_ih", "b_hh"):
            rnd("gru." + n, 3 * d, std=0.1)
    if v == "weighted":
        rnd("integrate.w", L, std=0.5)
    if v == "tmlp":
        for l in range(cfg["tmlp_layers"]):
            rnd("tmlp.%d.w" % l, d, H if l == 0 else d, std=0.2)
            rnd("tmlp.%d.b" % l, d)
    if v == "id" or cfg["item_ids"]:
        rnd("item_emb", cfg["n_items"], d, std=0.5)
    rnd("pos_emb", cfg["max_len"], d, std=0.3)
    rnd("emb_ln.w", d, mean=1.0)
    rnd("emb_ln.b", d)
    for l in range(cfg["blocks"]):
        rnd("block.%d.qkv.w" % l, 3 * d, d, std=0.3)
        rnd("block.%d.qkv.b" % l, 3 * d)
        rnd("block.%d.attn_out.w" % l, d, d, std=0.3)
        rnd("block.%d.attn_out.b" % l, d)
        rnd("block.%d.ln1.w" % l, d, mean=1.0)
        rnd("block.%d.ln1.b" % l, d)
        rnd("block.%d.ffn1.w" % l, I, d, std=0.3)
        rnd("block.%d.ffn1.b" % l, I)
        rnd("block.%d.ffn2.w" % l, d, I, std=0.3)
        rnd("block.%d.ffn2.b" % l, d)
        rnd("block.%d.ln2.w" % l, d, mean=1.0)
        rnd("block.%d.ln2.b" % l, d)
    return P


def item_tower(cfg, P, states, ids, train, noise):
    """v*: [U, d] for item ids (ascending distinct ids of the batch)."""
    if cfg["variant"] != "id" and cfg["item_ids"]:  # UniSRec's text + ID: the two vectors added
        return text_tower(cfg, P, states, ids, train, noise) + P["item_emb"][ids]
    return text_tower(cfg, P, states, ids, train, noise)


def text_tower(cfg, P, states, ids, train, noise):
    v, d, nE, pa = cfg["variant"], cfg["d"], cfg["nE"], cfg["p_adapter"]
    if v == "id":
        return P["item_emb"][ids]
    if v == "tmlp":
        x = states[ids, 0]
        h = x * noise.mask(x.shape, pa) / (1 - pa) if train else x
        for l in range(cfg["tmlp_layers"]):
            if l:
                h = F.gelu(h)
            h = F.linear(h, P["tmlp.%d.w" % l], P["tmlp.%d.b" % l])
        return h
    zs = []
    for a in range(n_adapters(v, cfg["L"])):
        x = states[ids, a]
        xd = x * noise.mask(x.shape, pa) / (1 - pa) if train else x
        W, b = P["adapter.%d.w" % a], P["adapter.%d.b" % a]
        experts = torch.stack([F.linear(xd - b[k], W[k * d:(k + 1) * d]) for k in range(nE)], 1)
        logits = x @ P["adapter.%d.gate" % a].t()
        if train:
            std = F.softplus(x @ P["adapter.%d.noise" % a].t()) + 0.01
            logits = logits + noise.normal(logits.shape) * std
        gates = torch.softmax(logits, -1)
        zs.append((gates.unsqueeze(-1) * experts).sum(1))
    if v == "gru":
        gru = torch.nn.GRU(d, d, batch_first=True)
        # the module's own parameters are replaced by ours, so autograd reaches P
        for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            delattr(gru, n)
        gru.weight_ih_l0, gru.weight_hh_l0 = P["gru.w_ih"], P["gru.w_hh"]
        gru.bias_ih_l0, gru.bias_hh_l0 = P["gru.b_ih"], P["gru.b_hh"]
        gru._flat_weights = [P["gru.w_ih"], P["gru.w_hh"], P["gru.b_ih"], P["gru.b_hh"]]
        _, h = gru(torch.stack(zs, 1))  # top layer first, h0 = 0
        return h[0]
    if v == "mean":
        return torch.stack(zs, 0).mean(0)
    if v == "weighted":
        w = torch.softmax(P["integrate.w"], 0)
        return (w[:, None, None] * torch.stack(zs, 0)).sum(0)
    return zs[0]  # tmoe


def layer_norm(x, P, name, eps):
    return F.layer_norm(x, x.shape[-1:], P[name + ".w"], P[name + ".b"], eps)


def user_tower(cfg, P, vin_pad, lens, train, noise, packed):
    """RecBole SASRec on padded [B, T, d]; noise masks are drawn packed [N, d] like C."""
    B, T, d = vin_pad.shape
    nh, p, eps = cfg["heads"], cfg["p_hidden"], cfg["eps"]
    hs = d // nh

    def dropout(x):
        if not train:
            return x
        keep = torch.zeros(B, T, d)
        keep[packed] = noise.mask((int(packed.sum()), d), p)
        return x * keep / (1 - p)

    pos = torch.arange(T)
    x = dropout(layer_norm(vin_pad + P["pos_emb"][pos][None], P, "emb_ln", eps))
    allowed = (pos[None, :] <= pos[:, None])[None] & (pos[None, None, :] < lens[:, None, None])
    add_mask = torch.where(allowed, 0.0, -1e9)[:, None]  # [B, 1, T, T]
    for l in range(cfg["blocks"]):
        pre = "block.%d." % l
        Wqkv, bqkv = P[pre + "qkv.w"], P[pre + "qkv.b"]
        q, k, v = (F.linear(x, Wqkv[i * d:(i + 1) * d], bqkv[i * d:(i + 1) * d]) for i in range(3))
        split = lambda t: t.view(B, T, nh, hs).transpose(1, 2)
        scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(hs) + add_mask
        probs = torch.softmax(scores, -1)
        if train and cfg["p_attn"] > 0:  # RecBole's attn_dropout_prob on the probabilities
            probs = probs * noise.mask((B, nh, T, T), cfg["p_attn"]) / (1 - cfg["p_attn"])
        ctx = (probs @ split(v)).transpose(1, 2).reshape(B, T, d)
        a = dropout(F.linear(ctx, P[pre + "attn_out.w"], P[pre + "attn_out.b"]))
        x = layer_norm(a + x, P, pre + "ln1", eps)
        f = F.linear(F.gelu(F.linear(x, P[pre + "ffn1.w"], P[pre + "ffn1.b"])), P[pre + "ffn2.w"],
                     P[pre + "ffn2.b"])
        x = layer_norm(dropout(f) + x, P, pre + "ln2", eps)
    return x


def model_loss(cfg, P, states, offsets, items, targets, noise):
    B = len(offsets) - 1
    N = offsets[-1]
    lens = torch.tensor([offsets[b + 1] - offsets[b] for b in range(B)])
    T = int(lens.max())
    have = targets >= 0
    if cfg["loss"] == "full":  # every item is a candidate: the whole catalogue, ascending
        uniq = torch.arange(cfg["n_items"])
    else:
        uniq = torch.unique(torch.cat([items, targets[have]]))  # ascending, as C
    v = item_tower(cfg, P, states, uniq, True, noise)
    local = {int(i): n for n, i in enumerate(uniq)}
    packed = torch.arange(T)[None, :] < lens[:, None]
    vin_pad = torch.zeros(B, T, cfg["d"])
    vin_pad[packed] = v[[local[int(i)] for i in items]]
    u = user_tower(cfg, P, vin_pad, lens, True, noise, packed)[packed]  # [N, d] row order
    rows = torch.nonzero(have)[:, 0]
    dot = cfg["score"] == "dot"  # RecBole's logits u . v; else cos(u, v) / tau

    def scoring(x):
        return x if dot else F.normalize(x, dim=-1)
    scale = 1.0 if dot else 1.0 / cfg["tau"]
    un = scoring(u[rows])
    tg = targets[rows]
    if cfg["loss"] == "full":  # RecBole's CE: a softmax over every item
        logits = un @ scoring(v).t() * scale
        return F.cross_entropy(logits, tg)
    vt = scoring(v[[local[int(t)] for t in tg]])
    logits = un @ vt.t() * scale
    if cfg["loss"] == "logq":  # Yi et al. 2019: each candidate column loses log q of its item
        logits = logits - cfg["log_q"][tg][None, :]
    same = (tg[:, None] == tg[None, :]) & ~torch.eye(len(rows), dtype=torch.bool)
    logits = logits.masked_fill(same, float("-inf"))  # UniSRec: other positions' same target
    return F.cross_entropy(logits, torch.arange(len(rows)))


def run_case(outdir, case, variant, layers, loss, score, seed):
    gen = torch.Generator().manual_seed(seed)
    cfg = dict(variant=variant, n_items=40, hidden=24, L=layers, d=16, nE=8, tmlp_layers=2,
               blocks=2, heads=2, inner=20, max_len=12, p_adapter=0.2, p_hidden=0.5, eps=1e-12,
               tau=0.07, loss=loss, score=score, p_attn=0.0 if case == "gru1" else 0.5,
               item_ids=case.endswith("_ids"))
    w = Writer(os.path.join(outdir, case + ".bin"))
    w.put("config", torch.tensor([VARIANTS.index(variant), cfg["n_items"], cfg["hidden"], layers,
                                  cfg["d"], cfg["nE"], cfg["tmlp_layers"], cfg["blocks"],
                                  cfg["heads"], cfg["inner"], cfg["max_len"], STEPS,
                                  LOSSES.index(loss), SCORES.index(score), int(cfg["item_ids"])]), 1)
    # target counts of the logq loss (C: ssna_set_item_counts), skewed like real popularity
    counts = torch.randint(0, 50, (cfg["n_items"],), generator=gen).double() ** 2
    w.put("item_counts", counts)
    cfg["log_q"] = torch.log((counts + 1) / (counts.sum() + cfg["n_items"]))
    w.put("config_f", torch.tensor([cfg["p_adapter"], cfg["p_hidden"], cfg["eps"], cfg["tau"], LR,
                                    cfg["p_attn"]]))
    states = torch.randn(cfg["n_items"], layers, cfg["hidden"], generator=gen).float().double()
    w.put("states", states)
    lens = [6, 3, 1, 8, 4, 12]
    offsets = [0]
    for n in lens:
        offsets.append(offsets[-1] + n)
    N = offsets[-1]
    items = torch.randint(0, cfg["n_items"], (N,), generator=gen)
    # targets from a few items so same-target masking matters; one position without a target
    targets = torch.randint(0, 9, (N,), generator=gen) * 4
    targets[5] = -1
    w.put("offsets", torch.tensor(offsets), 1)
    w.put("items", items, 1)
    w.put("targets", targets, 1)
    P = make_params(cfg, gen)
    for name, t in P.items():
        w.put("param." + name, t)
        t.requires_grad_(True)
    opt = torch.optim.Adam(list(P.values()), lr=LR)
    losses = []
    for step in range(STEPS):
        opt.zero_grad()
        loss = model_loss(cfg, P, states, offsets, items, targets, Noise(gen, w, step))
        loss.backward()
        losses.append(float(loss))
        w.put("loss.%d" % step, loss.reshape(1))
        if step == 0:
            for name, t in P.items():
                w.put("grad." + name, t.grad)
        opt.step()
    for name, t in P.items():
        w.put("final." + name, t)
    w.close()
    print("%s: losses of %d Adam steps: %s" % (case, STEPS, " ".join("%.6f" % x for x in losses)))


class FreshNoise:
    """Training noise drawn on the fly (benchmark: nothing recorded)."""

    def mask(self, shape, p):
        return (torch.rand(shape) >= p).to(torch.get_default_dtype())

    def normal(self, shape):
        return torch.randn(shape)


def bench(dump, epochs, batch):
    import resource
    import time
    import numpy as np
    torch.set_default_dtype(torch.float32)
    raw = open(dump, "rb").read()
    n_users, n_items, layers, hidden = struct.unpack_from("<4i", raw, 0)
    pos = 16
    offsets = np.frombuffer(raw, np.int32, n_users + 1, pos).tolist()
    pos += 4 * (n_users + 1)
    items_all = np.frombuffer(raw, np.int32, offsets[-1], pos)
    pos += 4 * offsets[-1]
    states = torch.from_numpy(np.frombuffer(raw, np.float32, n_items * layers * hidden, pos)
                              .reshape(n_items, layers, hidden).copy())
    cfg = dict(variant="gru", n_items=n_items, hidden=hidden, L=layers, d=256, nE=8,
               tmlp_layers=2, blocks=2, heads=2, inner=256, max_len=50, p_adapter=0.2,
               p_hidden=0.5, eps=1e-12, tau=0.07, loss="inbatch", score="cos", p_attn=0.5,
               item_ids=False)
    P = {k: v.float() for k, v in make_params(cfg, torch.Generator().manual_seed(1)).items()}
    for t in P.values():
        t.requires_grad_(True)
    opt = torch.optim.Adam(list(P.values()), lr=3e-4)
    users = [u for u in range(n_users) if offsets[u + 1] - offsets[u] - 2 >= 2]
    gen = torch.Generator().manual_seed(7)
    for e in range(epochs):
        t0 = time.time()
        order = torch.randperm(len(users), generator=gen).tolist()
        total, npos = 0.0, 0
        for s0 in range(0, len(order), batch):
            offs, items, targets = [0], [], []
            for i in order[s0:s0 + batch]:
                u = users[i]
                seq = items_all[offsets[u]:offsets[u + 1]]
                train = seq[:len(seq) - 2]
                items.extend(train[:-1][-50:].tolist())
                targets.extend(train[1:][-50:].tolist())
                offs.append(len(items))
            opt.zero_grad()
            loss = model_loss(cfg, P, states, offs, torch.tensor(items), torch.tensor(targets),
                              FreshNoise())
            loss.backward()
            opt.step()
            total += float(loss) * len(items)
            npos += len(items)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print("torch epoch %d: %.2f s, mean loss %.4f, peak RSS %.0f MB" %
              (e + 1, time.time() - t0, total / npos, rss), flush=True)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--bench":
        bench(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1,
              int(sys.argv[4]) if len(sys.argv) > 4 else 256)
        return
    if len(sys.argv) != 2:
        sys.exit("usage: ssna_ref.py OUTDIR | --bench DUMP [EPOCHS] [BATCH]")
    torch.set_default_dtype(torch.float64)
    os.makedirs(sys.argv[1], exist_ok=True)
    for i, (case, variant, layers, loss, score) in enumerate(CASES):
        run_case(sys.argv[1], case, variant, layers, loss, score, 1234 + i)


if __name__ == "__main__":
    main()
