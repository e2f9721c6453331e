#!/usr/bin/env python3
"""RecBole 1.2.1's SASRec on the exact split `ssna export` wrote, ranked the way `ssna eval` ranks.

Reads DIR/NAME.{train,valid,test}.inter (RecBole atomic benchmark files: one row per training
target, one validation and one test row per user) with benchmark_filename, so RecBole neither
filters nor re-splits. RecBole's own trainer trains (its SASRec defaults: hidden 64, 2 layers x 2
heads, dropout 0.5, Adam lr 1e-3, batch 2048, loss_type CE = softmax over the whole catalogue);
after every epoch the validation users are ranked by this script, not by RecBole's evaluator:
every item is a candidate (RecBole's padding column 0 left out), the user's own items stay in,
ties count against the held-out item -- the rule of `ssna eval` (model/metrics.c). Early stopping
on that validation R@10 (patience --patience); the best epoch's weights rank the test users.

Output: one JSON line per epoch on stdout ({"epoch", "train_seconds", "loss", "valid"}), then one
final JSON line like `ssna train`'s; --per-user FILE gets `user, valid_rank, test_rank` (TSV),
the format of `ssna eval --per-user`.

Run-time patches for this environment (nothing in site-packages is edited):
- torch.utils.tensorboard needs the `tensorboard` package, which RecBole imports only for a
  SummaryWriter this script never uses: a stub module stands in when it is missing.
- RecBole's configurator restores numpy's removed aliases (np.float, ...) from np.float_,
  np.complex_ and np.unicode_, which numpy 2 removed as well: those three are set first.
- torch >= 2.6 loads checkpoints with weights_only=True; RecBole's holds its Config object, so
  the best epoch's file is read with weights_only=False (it is this run's own file).
"""
import argparse
import json
import math
import os
import sys
import time
import types


def stub_tensorboard():
    try:
        import torch.utils.tensorboard  # noqa: F401
    except Exception:
        mod = types.ModuleType("torch.utils.tensorboard")

        class SummaryWriter:  # never written to: the trainer gets no tensorboard
            def __init__(self, *a, **k):
                pass

            def __getattr__(self, name):
                return lambda *a, **k: None

        mod.SummaryWriter = SummaryWriter
        sys.modules["torch.utils.tensorboard"] = mod


def patch_numpy():
    import numpy as np

    for name, value in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if name not in np.__dict__:
            setattr(np, name, value)


def load_own_checkpoint(torch, path, device):
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except TypeError:  # torch < 1.13 has no weights_only
        return torch.load(path, map_location=device)


def ranks_of(model, loader, dataset, device):
    """{user token: 0-based pessimistic rank of the held-out item among all items}."""
    import torch

    iid, uid = dataset.iid_field, dataset.uid_field
    out = {}
    model.eval()
    with torch.no_grad():
        for batch in loader:
            inter = batch[0].to(device)
            scores = model.full_sort_predict(inter).view(len(inter), -1)[:, 1:]  # drop [PAD]
            target = inter[iid] - 1
            t = scores.gather(1, target.view(-1, 1))
            # items scoring higher, plus ties with other items (the target ties with itself)
            rank = (scores > t).sum(1) + (scores == t).sum(1) - 1
            users = dataset.id2token(uid, inter[uid].cpu().numpy())
            for u, r in zip(users, rank.cpu().tolist()):
                out[str(u)] = int(r)
    return out


def metrics(ranks):
    n = len(ranks)
    v = {}
    for k in (10, 50):
        v[f"recall@{k}"] = sum(r < k for r in ranks) / n
        v[f"ndcg@{k}"] = sum(1.0 / math.log2(r + 2) for r in ranks if r < k) / n
    return {k: round(v[k], 6) for k in ("recall@10", "recall@50", "ndcg@10", "ndcg@50")}


def load_split(folder, name, items, seed=1, epochs=300, patience=10, work=None, sets=()):
    """RecBole's Config and SequentialDataset over the exported split, checked against ssna's
    catalogue size. Exits with a message when it differs."""
    stub_tensorboard()
    patch_numpy()
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset
    from recbole.utils import init_seed

    cfg = {
        "data_path": os.path.dirname(os.path.abspath(folder)),
        "benchmark_filename": ["train", "valid", "test"],
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
        # histories and targets in ONE id space; without it RecBole remaps item_id_list on its
        # own and every history points at the wrong items (its catalogue then also lacks the
        # items that are never a target)
        "alias_of_item_id": ["item_id_list"],
        "MAX_ITEM_LIST_LENGTH": 50,
        "train_neg_sample_args": None,
        "loss_type": "CE",
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
        "metrics": ["Recall", "NDCG"],
        "topk": [10, 50],
        "valid_metric": "Recall@10",
        "epochs": epochs,
        "stopping_step": patience,
        "seed": seed,
        "reproducibility": True,
        "checkpoint_dir": work or os.path.join(folder, "saved"),
        "show_progress": False,
        "eval_batch_size": 1024,
        "worker": 0,
        "use_gpu": torch.cuda.is_available(),
        "log_wandb": False,
        "state": "WARNING",
    }
    for kv in sets:
        k, v = kv.split("=", 1)
        cfg[k] = json.loads(v)
    # the dataset folder must be named like the dataset for RecBole
    if os.path.basename(os.path.abspath(folder)) != name:
        sys.exit(f"recbole_sasrec: {folder} must be a folder named {name}")
    config = Config(model="SASRec", dataset=name, config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    n_items = dataset.item_num - 1  # [PAD] is item 0
    if n_items != items:
        sys.exit(f"recbole_sasrec: RecBole sees {n_items} items, ssna {items}: not the same split")
    return config, dataset


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="folder with NAME.{train,valid,test}.inter")
    ap.add_argument("--name", required=True)
    ap.add_argument("--items", type=int, required=True, help="catalogue size ssna saw (checked)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--work", required=True, help="folder for RecBole's checkpoint and log")
    ap.add_argument("--per-user", help="TSV of per-user ranks")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="extra RecBole config, e.g. --set hidden_size=256")
    a = ap.parse_args()
    config, dataset = load_split(a.dir, a.name, a.items, a.seed, a.epochs, a.patience, a.work,
                                 a.set)
    import torch
    from recbole.data import data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    n_items = dataset.item_num - 1
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = SASRec(config, train_data._dataset).to(config["device"])
    device = config["device"]
    log = []

    class RankingTrainer(Trainer):
        """RecBole's trainer with `ssna eval`'s validation ranking and per-epoch timing."""

        def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
            t0 = time.time()
            loss = super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)
            self._epoch_seconds = time.time() - t0
            self._epoch_loss = float(loss) / len(train_data)
            return loss

        def _valid_epoch(self, valid_data, show_progress=False):
            v = metrics(list(ranks_of(self.model, valid_data, dataset, device).values()))
            rec = {"epoch": len(log) + 1, "train_seconds": round(self._epoch_seconds, 3),
                   "loss": round(self._epoch_loss, 5), "valid": v}
            log.append(rec)
            print(json.dumps(rec), flush=True)
            return v["recall@10"], v

    trainer = RankingTrainer(config, model)
    t0 = time.time()
    trainer.fit(train_data, valid_data, saved=True, show_progress=False, verbose=False)
    wall = time.time() - t0
    state = load_own_checkpoint(torch, trainer.saved_model_file, device)
    model.load_state_dict(state["state_dict"])
    rv = ranks_of(model, valid_data, dataset, device)
    rt = ranks_of(model, test_data, dataset, device)
    if a.per_user:
        with open(a.per_user, "w") as f:
            f.write("user\tvalid_rank\ttest_rank\n")
            for u in rt:
                f.write(f"{u}\t{rv[u]}\t{rt[u]}\n")
    best = max(log, key=lambda r: r["valid"]["recall@10"])  # first of equals, as RecBole
    train_s = sum(r["train_seconds"] for r in log)
    print(json.dumps({
        "command": "recbole", "variant": "recbole-sasrec", "users": len(rt), "items": n_items,
        "epochs": len(log), "best_epoch": best["epoch"], "valid": metrics(list(rv.values())),
        "test": metrics(list(rt.values())), "train_seconds": round(train_s, 2),
        "seconds_per_epoch": round(train_s / max(1, len(log)), 3), "wall_seconds": round(wall, 1),
        "device": str(device), "torch": torch.__version__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "loss": "RecBole SASRec, loss_type CE (softmax over all items)",
        "run": {"seed": a.seed, "set": a.set, "dir": a.dir},
    }), flush=True)
    os.remove(trainer.saved_model_file)


if __name__ == "__main__":
    main()
