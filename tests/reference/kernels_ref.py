#!/usr/bin/env python3
"""kernels_ref.py - torch reference tensors for tests/test_kernels_torch.c.

Usage: /usr/bin/python3 tests/reference/kernels_ref.py OUT.bin

Builds fixed, seeded inputs for torch.nn.GRUCell, torch.nn.MultiheadAttention (causal, causal +
key padding, key padding only), torch.nn.LayerNorm, erf-GELU, softplus, softmax, normalize,
cross-entropy with ignored rows and torch.optim.Adam (with and without weight decay), runs torch
forward and backward with loss = sum(out * wout), and writes inputs, weights, outputs and
gradients to OUT.bin. The C test recomputes everything with model/kernels.c and compares.

File format (little-endian): b"SSNAREF1", then records until EOF:
  u32 name_len | name (UTF-8) | u32 ndim | i32 shape[ndim] | f32 data[prod(shape)]
Integer tensors (lengths, targets) are stored as exactly representable floats.

Exits non-zero with a clear message when torch is missing: a reference that cannot run is a
failed test, never a skipped one.
"""
import struct
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover - the message is the point
    sys.stderr.write(
        "kernels_ref.py: cannot import torch (%s).\n"
        "Install Debian's python3-torch (ops/setup.sh does) and run with /usr/bin/python3.\n" % e
    )
    sys.exit(2)

records = []


def put(name, t):
    t = torch.as_tensor(t).detach().to(torch.float32).contiguous()
    records.append((name, t))


def weighted_backward(out, valid=None):
    """loss = sum(out * wout); returns wout (zero on rows that are not compared)."""
    wout = torch.randn(out.shape)
    if valid is not None:
        wout = wout * valid
    (out * wout).sum().backward()
    return wout


def gru_case(prefix, B, IN, H, with_h):
    cell = torch.nn.GRUCell(IN, H)
    x = torch.randn(B, IN, requires_grad=True)
    h = (0.8 * torch.randn(B, H)).requires_grad_(True)
    out = cell(x, h) if with_h else cell(x)
    wout = weighted_backward(out)
    put(prefix + ".x", x)
    put(prefix + ".h", h if with_h else torch.zeros(B, H))
    put(prefix + ".w_ih", cell.weight_ih)
    put(prefix + ".w_hh", cell.weight_hh)
    put(prefix + ".b_ih", cell.bias_ih)
    put(prefix + ".b_hh", cell.bias_hh)
    put(prefix + ".wout", wout)
    put(prefix + ".out", out)
    put(prefix + ".dx", x.grad)
    if with_h:
        put(prefix + ".dh", h.grad)
    put(prefix + ".dw_ih", cell.weight_ih.grad)
    put(prefix + ".dw_hh", cell.weight_hh.grad)
    put(prefix + ".db_ih", cell.bias_ih.grad)
    put(prefix + ".db_hh", cell.bias_hh.grad)


def mha_case(prefix, B, T, C, NH, causal, lens):
    mha = torch.nn.MultiheadAttention(C, NH, dropout=0.0, batch_first=True)
    with torch.no_grad():  # non-zero biases so their gradients are tested too
        mha.in_proj_bias.normal_(0.0, 0.1)
        mha.out_proj.bias.normal_(0.0, 0.1)
    x = torch.randn(B, T, C, requires_grad=True)
    lens_t = torch.tensor(lens)
    pad = torch.arange(T)[None, :] >= lens_t[:, None]  # True = padded key
    attn_mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1) if causal else None
    out, _ = mha(x, x, x, attn_mask=attn_mask, key_padding_mask=pad, need_weights=False)
    # padded query rows are defined differently (0 before out_proj in C): not compared, no loss
    valid = (~pad).to(torch.float32)[:, :, None]
    wout = weighted_backward(out, valid)
    put(prefix + ".dims", [B, T, C, NH, int(causal)])
    put(prefix + ".lens", lens_t)
    put(prefix + ".x", x)
    put(prefix + ".in_w", mha.in_proj_weight)
    put(prefix + ".in_b", mha.in_proj_bias)
    put(prefix + ".out_w", mha.out_proj.weight)
    put(prefix + ".out_b", mha.out_proj.bias)
    put(prefix + ".wout", wout)
    put(prefix + ".out", out * valid)
    put(prefix + ".dx", x.grad)
    put(prefix + ".d_in_w", mha.in_proj_weight.grad)
    put(prefix + ".d_in_b", mha.in_proj_bias.grad)
    put(prefix + ".d_out_w", mha.out_proj.weight.grad)
    put(prefix + ".d_out_b", mha.out_proj.bias.grad)


def layernorm_case(prefix, N, C, eps):
    ln = torch.nn.LayerNorm(C, eps=eps)
    with torch.no_grad():
        ln.weight.add_(0.3 * torch.randn(C))
        ln.bias.normal_(0.0, 0.3)
    x = (torch.randn(N, C) * 2.0 + 0.7).requires_grad_(True)
    out = ln(x)
    wout = weighted_backward(out)
    put(prefix + ".eps", [eps])
    for name, t in (("x", x), ("w", ln.weight), ("b", ln.bias), ("wout", wout), ("out", out),
                    ("dx", x.grad), ("dw", ln.weight.grad), ("db", ln.bias.grad)):
        put(prefix + "." + name, t)


def unary_case(prefix, x, fn):
    x = x.clone().requires_grad_(True)
    out = fn(x)
    wout = weighted_backward(out)
    for name, t in (("x", x), ("wout", wout), ("out", out), ("dx", x.grad)):
        put(prefix + "." + name, t)


def crossentropy_case(prefix, N, V):
    logits = (2.0 * torch.randn(N, V)).requires_grad_(True)
    targets = torch.randint(0, V, (N,))
    targets[1] = -1
    targets[N - 1] = -1
    loss = F.cross_entropy(logits, targets, ignore_index=-1)
    loss.backward()
    for name, t in (("logits", logits), ("targets", targets), ("loss", loss.reshape(1)),
                    ("dlogits", logits.grad)):
        put(prefix + "." + name, t)


def adam_case(prefix, weight_decay, steps):
    shapes = [(5, 4), (7,)]
    params = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    put(prefix + ".p0", torch.cat([p.detach().reshape(-1) for p in params]))
    opt = torch.optim.Adam(params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                           weight_decay=weight_decay)
    grads, after = [], []
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape)
        grads.append(torch.cat([p.grad.reshape(-1) for p in params]))
        opt.step()
        after.append(torch.cat([p.detach().reshape(-1) for p in params]))
    put(prefix + ".config", [1e-2, 0.9, 0.999, 1e-8, weight_decay, steps])
    put(prefix + ".grads", torch.stack(grads))
    put(prefix + ".params", torch.stack(after))
    put(prefix + ".m", torch.cat([opt.state[p]["exp_avg"].reshape(-1) for p in params]))
    put(prefix + ".v", torch.cat([opt.state[p]["exp_avg_sq"].reshape(-1) for p in params]))


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: kernels_ref.py OUT.bin\n")
        return 2
    torch.manual_seed(20261124)
    gru_case("gru", 4, 10, 8, True)
    gru_case("gru0", 3, 6, 5, False)
    mha_case("mha_causal", 3, 7, 16, 2, True, [7, 7, 7])
    mha_case("mha_causal_pad", 3, 7, 16, 2, True, [7, 4, 1])
    mha_case("mha_pad", 3, 7, 16, 2, False, [5, 7, 2])
    layernorm_case("ln", 6, 10, 1e-5)
    layernorm_case("ln12", 5, 32, 1e-12)
    gelu_x = torch.cat([torch.linspace(-8.0, 8.0, 101), 1.5 * torch.randn(64)])
    unary_case("gelu", gelu_x, F.gelu)  # default approximate='none': the erf form
    unary_case("softplus", torch.linspace(-30.0, 30.0, 121), F.softplus)
    unary_case("softmax", 2.0 * torch.randn(5, 11), lambda t: torch.softmax(t, dim=-1))
    unary_case("l2norm", torch.randn(6, 12), lambda t: F.normalize(t, dim=-1, eps=1e-12))
    crossentropy_case("ce", 6, 9)
    adam_case("adam", 0.0, 6)
    adam_case("adam_wd", 0.1, 6)
    with open(sys.argv[1], "wb") as f:
        f.write(b"SSNAREF1")
        for name, t in records:
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb)
            f.write(struct.pack("<I", t.dim()) + struct.pack("<%di" % t.dim(), *t.shape))
            f.write(t.numpy().astype("<f4").tobytes())
    print("kernels_ref.py: %d tensors (torch %s) -> %s" % (len(records), torch.__version__,
                                                           sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
