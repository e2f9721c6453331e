#!/usr/bin/env python3
"""Hugging Face `transformers` reference for model/encoder on a real BERT checkpoint folder
(models/bert-base-uncased, converted by ops/convert_tf_bert.py): BertTokenizerFast and BertModel
as a user of that library would run them, sharing nothing with the C code.

  bert_ref.py states --model DIR --texts FILE.text --out DIR2 [--stride K] [--batch-tokens N]
      Tokenizes item texts 0, K, 2K, ... of a UniSRec .text file (header line, then
      item_id TAB text), runs BertModel with output_hidden_states in longest-first padded
      batches (attention mask on the padding), and writes
        DIR2/ids.bin     int32 LE: n, then per text: length, ids (tests/reference/encoder_ref.py's
                         format), so the C test can check its tokenizer gives the same ids;
        DIR2/states.bin  float32 LE [n, layers + 1, 2, hidden]: layer 0 (embeddings) .. top,
                         pool 0 = first token ([CLS]), 1 = mean over the text's tokens.
      Exits non-zero on any failure (a missing model folder, library or data file).
"""
import argparse
import os
import sys
import time

try:
    import numpy as np
    import torch
    import transformers
    from transformers import BertModel, BertTokenizerFast
except ImportError as exc:  # a missing dependency fails the test, never skips it
    sys.exit(f"bert_ref.py: needs torch, numpy and transformers (ops/requirements.txt): {exc}")

torch.set_grad_enabled(False)
torch.set_num_threads(max(2, torch.get_num_threads()))
transformers.logging.set_verbosity_error()  # the unused masked-LM head is expected


def read_texts(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")[1:]
    return [line.rstrip("\r").split("\t", 1)[1] for line in lines if "\t" in line]


def states(model_dir, texts_path, out_dir, stride, batch_tokens):
    tok = BertTokenizerFast(os.path.join(model_dir, "vocab.txt"), do_lower_case=True)
    model = BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    cfg = model.config
    texts = read_texts(texts_path)[::stride]
    ids = tok(texts, truncation=True, max_length=cfg.max_position_embeddings)["input_ids"]
    n, L, C = len(ids), cfg.num_hidden_layers, cfg.hidden_size
    res = np.empty((n, L + 1, 2, C), dtype=np.float32)
    order = sorted(range(n), key=lambda i: -len(ids[i]))
    t0, i = time.perf_counter(), 0
    while i < n:
        T = len(ids[order[i]])
        batch = order[i : i + max(1, batch_tokens // T)]
        i += len(batch)
        x = torch.zeros(len(batch), T, dtype=torch.long)
        mask = torch.zeros(len(batch), T, dtype=torch.long)
        for r, k in enumerate(batch):
            x[r, : len(ids[k])] = torch.tensor(ids[k])
            mask[r, : len(ids[k])] = 1
        hidden = model(input_ids=x, attention_mask=mask, output_hidden_states=True).hidden_states
        m = mask[:, :, None].float()
        for layer, h in enumerate(hidden):
            res[batch, layer, 0] = h[:, 0].numpy()
            res[batch, layer, 1] = ((h * m).sum(1) / m.sum(1)).numpy()
    os.makedirs(out_dir, exist_ok=True)
    flat = [n]
    for s in ids:
        flat += [len(s)] + s
    np.asarray(flat, dtype="<i4").tofile(os.path.join(out_dir, "ids.bin"))
    res.astype("<f4").tofile(os.path.join(out_dir, "states.bin"))
    print(f"bert_ref.py: transformers {transformers.__version__}, torch {torch.__version__}: "
          f"{n} texts (every {stride}), {sum(map(len, ids))} tokens, {L + 1} layers in "
          f"{time.perf_counter() - t0:.1f} s")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("states")
    s.add_argument("--model", required=True)
    s.add_argument("--texts", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--stride", type=int, default=1)
    s.add_argument("--batch-tokens", type=int, default=4096)
    a = ap.parse_args()
    states(a.model, a.texts, a.out, a.stride, a.batch_tokens)


if __name__ == "__main__":
    main()
