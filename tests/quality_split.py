#!/usr/bin/env python3
"""tests/quality_split.py - the pieces of ops/bench/quality, each against an independent
computation written here from the data sets' SOURCE.md:

1. `ssna export` writes exactly the split `ssna train` uses: Scientific sequences rebuilt from
   Scientific.test.inter (history + target, last 50), MovieLens from ratings.csv with an
   iterative 5-core, (timestamp, file order) sort and last 50 done here; every user's train
   rows are s[0..t) -> s[t] for t = 1..n-3, valid s[0..n-2) -> s[n-2], test s[0..n-1) -> s[n-1].
2. RecBole 1.2.1 (ops/bench/recbole_sasrec.py's configuration) loads those files as the same
   catalogue and the same rows per user, history and target, in all three parts.
3. `ssna train --variant pop` / `ssna eval --per-user`: counts of s[0..n-2) only, every user's
   pessimistic rank among all items (ties against the item, own items kept) equal to the ranks
   computed here, and the JSON metrics equal to their means; `ssna recommend` on the counts
   prints the most popular unseen items.
4. ops/bench/quality_report turns those ranks into the same metrics ssna prints.
Needs the venv python with RecBole (ops/setup.sh); a missing piece fails.
"""
import csv
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict

SRC = os.environ["SSNA_SOURCE_DIR"]
SSNA = os.path.join(os.environ["SSNA_BUILD_DIR"], "daemon", "ssna")
DATA = os.environ["SSNA_DATA_DIR"]
sys.path.insert(0, os.path.join(SRC, "ops", "bench"))
failures = []


def check(what, ok, detail=""):
    print(("ok: " if ok else "FAILED: ") + what + ("" if ok else f" ({detail})"), flush=True)
    if not ok:
        failures.append(what)


def ssna(*args):
    r = subprocess.run([SSNA, *args], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"FAILED: ssna {' '.join(args)}: exit {r.returncode}: {r.stderr[-2000:]}")
    return r.stdout


def sci_sequences():
    """{user id: last-50 sequence of item ids} from the UniSRec files alone."""
    d = os.path.join(DATA, "amazon-scientific")
    users = {i: u for u, i in (l.split() for l in open(os.path.join(d, "Scientific.user2index")))}
    items = {i: a for a, i in (l.split() for l in open(os.path.join(d, "Scientific.item2index")))}
    seqs = {}
    with open(os.path.join(d, "Scientific.test.inter")) as f:
        next(f)
        for line in f:
            u, hist, target = line.rstrip("\n").split("\t")
            seqs[users[u]] = [items[i] for i in hist.split() + [target]][-50:]
    return seqs


def ml_sequences():
    """MovieLens as SOURCE.md describes it: (timestamp, file order), iterative 5-core, last 50."""
    rows = []
    with open(os.path.join(DATA, "movielens-latest-small", "ratings.csv"), newline="") as f:
        for n, r in enumerate(csv.DictReader(f)):
            rows.append((r["userId"], r["movieId"], int(r["timestamp"]), n))
    while True:
        cu, ci = Counter(r[0] for r in rows), Counter(r[1] for r in rows)
        kept = [r for r in rows if cu[r[0]] >= 5 and ci[r[1]] >= 5]
        if len(kept) == len(rows):
            break
        rows = kept
    by_user = defaultdict(list)
    for r in rows:
        by_user[r[0]].append(r)
    return {u: [r[1] for r in sorted(rs, key=lambda r: (r[2], r[3]))][-50:]
            for u, rs in by_user.items()}


def expected_rows(seqs):
    """{part: {user: [(history tuple, target)]}} of the leave-one-out split."""
    out = {"train": defaultdict(list), "valid": {}, "test": {}}
    for u, s in seqs.items():
        n = len(s)
        if n < 3:
            continue
        out["train"][u] = [(tuple(s[:t]), s[t]) for t in range(1, n - 2)]
        out["valid"][u] = [(tuple(s[:n - 2]), s[n - 2])]
        out["test"][u] = [(tuple(s[:n - 1]), s[n - 1])]
    return out


def read_export(folder, name):
    got = {}
    for part in ("train", "valid", "test"):
        rows = defaultdict(list)
        with open(os.path.join(folder, f"{name}.{part}.inter")) as f:
            head = f.readline().rstrip("\n")
            if head != "user_id:token\titem_id_list:token_seq\titem_id:token":
                sys.exit(f"FAILED: {name}.{part}.inter header {head!r}")
            for line in f:
                u, h, t = line.rstrip("\n").split("\t")
                rows[u].append((tuple(h.split(" ")), t))
        got[part] = rows
    return got


def check_export(label, got, want):
    for part in ("train", "valid", "test"):
        g, w = got[part], want[part]
        check(f"{label} {part}: the same users ({len(w)})", set(g) == set(w),
              f"{len(set(g) ^ set(w))} differ")
        counts = sum(len(g.get(u, [])) == len(w[u]) for u in w)
        check(f"{label} {part}: rows per user equal for every user", counts == len(w),
              f"{len(w) - counts} users differ")
        same = sum(g.get(u) == w[u] for u in w)
        check(f"{label} {part}: every row's history and target equal", same == len(w),
              f"{len(w) - same} users differ")


def check_recbole(folder, name, n_items, want):
    try:
        import recbole_sasrec
        config, dataset = recbole_sasrec.load_split(folder, name, n_items,
                                                    work=os.path.join(folder, "saved"))
    except ImportError as e:
        check(f"RecBole importable by {sys.executable}", False, str(e))
        return
    check(f"RecBole {name}: catalogue of {n_items} items", dataset.item_num - 1 == n_items)
    built = dataset.build()
    for part, ds in zip(("train", "valid", "test"), built):
        inter = ds.inter_feat
        users = ds.id2token("user_id", inter["user_id"].numpy())
        lens = inter["item_length"].numpy()
        hist = inter["item_id_list"].numpy()
        targets = ds.id2token("item_id", inter["item_id"].numpy())
        rows = defaultdict(list)
        for u, L, h, t in zip(users, lens, hist, targets):
            rows[str(u)].append((tuple(str(x) for x in ds.id2token("item_id", h[:L])), str(t)))
        w = want[part]
        same = sum(sorted(rows.get(u, [])) == sorted(w[u]) for u in w)
        check(f"RecBole {name} {part}: {sum(map(len, w.values()))} rows, the same per user",
              same == len(w) and len(rows) == len(w), f"{len(w) - same} users differ")


def pessimistic_rank(counts, target):
    c = counts[target]
    return sum(v > c for v in counts.values()) + sum(v == c for v in counts.values()) - 1


def check_pop(label, data, seqs, tmp):
    ckpt = os.path.join(tmp, f"{label}.pop")
    ranks_path = os.path.join(tmp, f"{label}.ranks.tsv")
    train = json.loads(ssna("train", "--data", data, "--variant", "pop", "--out", ckpt).splitlines()[-1])
    ev = json.loads(ssna("eval", "--ckpt", ckpt, "--data", data, "--per-user", ranks_path))
    catalogue = {i for s in seqs.values() for i in s}
    counts = Counter({i: 0 for i in catalogue})
    for s in seqs.values():
        counts.update(s[:-2])
    want = {u: (pessimistic_rank(counts, s[-2]), pessimistic_rank(counts, s[-1]))
            for u, s in seqs.items() if len(s) >= 3}
    got = {}
    with open(ranks_path) as f:
        next(f)
        for line in f:
            u, v, t = line.rstrip("\n").split("\t")
            got[u] = (int(v), int(t))
    same = sum(got.get(u) == want[u] for u in want)
    check(f"{label} pop: every user's validation and test rank equal ({len(want)} users)",
          same == len(want) and len(got) == len(want), f"{len(want) - same} differ")
    import quality_report
    for part, idx in (("valid", 0), ("test", 1)):
        per = [quality_report.user_metrics(r[idx]) for r in want.values()]
        mean = [sum(p[k] for p in per) / len(per) for k in range(4)]
        for k, key in enumerate(("recall@10", "ndcg@10", "recall@50", "ndcg@50")):
            for src, j in (("train", train), ("eval", ev)):
                check(f"{label} pop {src} {part} {key} = {mean[k]:.6f}", abs(j[part][key] - mean[k]) < 2e-6,
                      f"printed {j[part][key]}")
    user, s = next(iter(seqs.items()))
    top = [i for i, _ in sorted(((i, c) for i, c in counts.items() if i not in set(s)),
                                key=lambda ic: -ic[1])]
    out = ssna("recommend", "--ckpt", ckpt, "--data", data, "--user", user, "-k", "5")
    listed = [line.split()[1] for line in out.splitlines()[1:]]
    ok = len(listed) == 5 and all(counts[i] == counts[top[j]] for j, i in enumerate(listed))
    check(f"{label} pop recommend: the 5 most popular unseen items", ok, f"{listed} vs {top[:5]}")


def main():
    if not os.access(SSNA, os.X_OK):
        sys.exit(f"FAILED: {SSNA} not built")
    with tempfile.TemporaryDirectory() as tmp:
        sci, ml = sci_sequences(), ml_sequences()
        check("independent Scientific: 8,442 users, 59,381 interactions",
              (len(sci), sum(map(len, sci.values()))) == (8442, 59381))
        check("independent MovieLens: 610 users, 25,973 interactions",
              (len(ml), sum(map(len, ml.values()))) == (610, 25973))
        for label, data, seqs in (("sci", os.path.join(DATA, "amazon-scientific"), sci),
                                  ("ml", os.path.join(DATA, "movielens-latest-small", "ratings.csv"), ml)):
            folder = os.path.join(tmp, label)
            j = json.loads(ssna("export", "--data", data, "--out", folder, "--name", label))
            want = expected_rows(seqs)
            check_export(label, read_export(folder, label), want)
            if label == "ml":  # RecBole's loader is slow in pure python: the small set suffices
                check_recbole(folder, label, j["items"], want)
            check_pop(label, data, seqs, tmp)
    print(f"{'FAILED' if failures else 'passed'}: {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
