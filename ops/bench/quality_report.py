"""quality_report - read the runs ops/bench/quality leaves, and make its tables, tests and plot.

A run is WORK/<model>[-<tag>]-s<seed>.*: for `ssna` models .json (train's final line), .log
(its per-epoch lines) and .ranks.tsv (`ssna eval --per-user`); for RecBole .jsonl (one line per
epoch, then the final one) and .ranks.tsv. Ranks are 0-based; per user R@K = [rank < K] and
N@K = 1 / log2(rank + 2) when rank < K, as model/metrics.c.
"""
import json
import math
import os
import re

EPOCH_LINE = re.compile(r"^epoch +(\d+) .*valid R@10 ([0-9.]+)")
BASELINES = ["pop", "recbole", "id"]
NAMES = {"pop": "most popular", "recbole": "RecBole SASRec (CE)", "id": "ID SASRec (ours)",
         "gru": "SSNA gru a=3", "mean": "SSNA mean a=3", "weighted": "SSNA weighted a=3",
         "tmoe": "SSNA tmoe a=1", "tmlp": "SSNA tmlp a=1"}
COLOURS = {"pop": "#7f7f7f", "recbole": "#d62728", "id": "#ff7f0e", "gru": "#1f77b4",
           "mean": "#2ca02c", "weighted": "#9467bd", "tmoe": "#8c564b", "tmlp": "#e377c2"}


def base(m):
    """The model of a --models entry: 'tmlp@idsrb' (tmlp's runs of tag idsrb) -> 'tmlp'."""
    return m.split("@", 1)[0]


def run_tag(m, tag=""):
    """The tag of an entry's files: its own after '@', else the run set's (pop has none)."""
    if "@" in m:
        return m.split("@", 1)[1]
    return "" if m == "pop" else tag


def run_prefix(work, m, seed, tag=""):
    """WORK/<model>[-<tag>]-s<seed>: where an entry's run of one seed is kept."""
    t = run_tag(m, tag)
    return os.path.join(work, f"{base(m)}{'-' + t if t else ''}-s{seed}")


def name(m):
    """The entry's label in tables and the plot: the model's name, and its tag when it has one."""
    return NAMES[base(m)] + (f" [{run_tag(m)}]" if "@" in m else "")


def read_ranks(path):
    """{user: test rank} from a per-user TSV (user, valid_rank, test_rank)."""
    out = {}
    with open(path) as f:
        head = f.readline().rstrip("\n").split("\t")
        if head != ["user", "valid_rank", "test_rank"]:
            raise ValueError(f"{path}: unexpected header {head}")
        for n, line in enumerate(f, 2):
            u, _, t = line.rstrip("\n").split("\t")
            out[u] = int(t)
    return out


def user_metrics(rank):
    """(R@10, N@10, R@50, N@50) of one user's rank."""
    g = 1.0 / math.log2(rank + 2)
    return (float(rank < 10), g if rank < 10 else 0.0, float(rank < 50), g if rank < 50 else 0.0)


def read_run(prefix, model):
    """The run's summary, per-user ranks and validation R@10 per epoch, or None if absent."""
    ranks_path = prefix + ".ranks.tsv"
    if not os.path.exists(ranks_path):
        return None
    run = {"ranks": read_ranks(ranks_path), "curve": []}
    if model == "recbole":
        lines = [json.loads(x) for x in open(prefix + ".jsonl") if x.strip()]
        final = lines[-1]
        run["curve"] = [(r["epoch"], r["valid"]["recall@10"]) for r in lines if "epoch" in r]
        run["device"] = final.get("device", "")
    else:
        final = json.loads(open(prefix + ".json").read().strip().splitlines()[-1])
        for line in open(prefix + ".log"):
            m = EPOCH_LINE.match(line)
            if m:
                run["curve"].append((int(m.group(1)), float(m.group(2))))
        run["device"] = "cpu"
    run["best_epoch"] = final["best_epoch"]
    run["epochs"] = final["epochs"]
    run["seconds_per_epoch"] = final["seconds_per_epoch"]
    run["test"] = final["test"]
    return run


def collect(work, models, seeds, tag=""):
    """{entry: [run per seed found]}; pop has no seed, so its first seed's run stands alone."""
    runs = {}
    for m in models:
        found = []
        for s in seeds[:1] if base(m) == "pop" else seeds:
            r = read_run(run_prefix(work, m, s, tag), base(m))
            if r:
                r["seed"] = s
                found.append(r)
        if found:
            runs[m] = found
    return runs


def mean_sd(xs):
    n = len(xs)
    mu = sum(xs) / n
    if n < 2:
        return mu, None
    return mu, math.sqrt(sum((x - mu) ** 2 for x in xs) / (n - 1))


def fmt(xs, digits=4):
    mu, sd = mean_sd(xs)
    return f"{mu:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None else "")


def per_user_means(runs, metric):
    """{user: metric averaged over the model's seeds} for users every seed ranked."""
    users = set.intersection(*(set(r["ranks"]) for r in runs))
    return {u: sum(user_metrics(r["ranks"][u])[metric] for r in runs) / len(runs) for u in users}


def paired(a, b):
    """Mean difference a - b over common users, paired t-test p and Wilcoxon signed-rank p."""
    from scipy import stats

    users = sorted(set(a) & set(b))
    x = [a[u] for u in users]
    y = [b[u] for u in users]
    d = [p - q for p, q in zip(x, y)]
    diff = sum(d) / len(d)
    if all(v == 0 for v in d):
        return diff, 1.0, 1.0, len(users)
    t = stats.ttest_rel(x, y).pvalue
    w = stats.wilcoxon(x, y).pvalue
    return diff, float(t), float(w), len(users)


def table(ds, runs, models):
    """Markdown: the metrics table and the paired tests of each SSNA variant vs each baseline."""
    out = [f"\n### {ds}\n",
           "| model | seeds | test R@10 | test N@10 | test R@50 | test N@50 | best epoch | "
           "s/epoch |", "|---|---|---|---|---|---|---|---|"]
    for m in models:
        rs = runs.get(m)
        if not rs:
            out.append(f"| {name(m)} | 0 | not run | | | | | |")
            continue
        test = {k: [r["test"][k] for r in rs] for k in ("recall@10", "ndcg@10", "recall@50", "ndcg@50")}
        dev = {r["device"] for r in rs}
        where = "" if dev == {"cpu"} else f" ({', '.join(sorted(dev))})"
        best = "-" if base(m) == "pop" else fmt([float(r["best_epoch"]) for r in rs], 1)
        out.append(f"| {name(m)} | {len(rs)} | {fmt(test['recall@10'])} | {fmt(test['ndcg@10'])} | "
                   f"{fmt(test['recall@50'])} | {fmt(test['ndcg@50'])} | {best} | "
                   f"{fmt([r['seconds_per_epoch'] for r in rs], 2)}{where} |")
    pairs = [(s, b) for s in models if base(s) not in BASELINES and s in runs
             for b in models if base(b) in BASELINES and b in runs]
    if pairs:
        out += ["", "Paired over users (per-user metric averaged over each model's seeds; "
                "two-sided p of the paired t-test / Wilcoxon signed-rank):", "",
                "| SSNA vs baseline | users | Δ R@10 | p (t) | p (W) | Δ N@10 | p (t) | p (W) |",
                "|---|---|---|---|---|---|---|---|"]
        for s, b in pairs:
            r = paired(per_user_means(runs[s], 0), per_user_means(runs[b], 0))
            n = paired(per_user_means(runs[s], 1), per_user_means(runs[b], 1))
            out.append(f"| {name(s)} vs {name(b)} | {r[3]} | {r[0]:+.4f} | {r[1]:.2g} | "
                       f"{r[2]:.2g} | {n[0]:+.4f} | {n[1]:.2g} | {n[2]:.2g} |")
    return "\n".join(out)


def _esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg(curves, width=860, panel_h=260):
    """Validation R@10 per epoch: one panel per data set, one colour per model, one line per
    seed. curves: {dataset: {model: [[(epoch, r10), ...] per seed]}}."""
    left, right, top, gap = 60, 190, 30, 50
    plot_w = width - left - right
    height = top + len(curves) * (panel_h + gap)
    el = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
          f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
          f'<rect width="{width}" height="{height}" fill="white"/>']
    for i, (ds, models) in enumerate(curves.items()):
        y0 = top + i * (panel_h + gap)
        pts = [p for seeds in models.values() for c in seeds for p in c]
        if not pts:
            continue
        xmax = max(p[0] for p in pts)
        ymax = max(p[1] for p in pts) * 1.08 or 1.0
        unit = 10 ** math.floor(math.log10(ymax / 4))
        step = next(unit * f for f in (1, 2, 5, 10) if ymax / (unit * f) <= 8)  # <= 8 gridlines
        X = lambda e: left + plot_w * (e - 1) / max(1, xmax - 1)  # noqa: E731
        Y = lambda v: y0 + panel_h - panel_h * v / ymax  # noqa: E731
        el.append(f'<text x="{left}" y="{y0 - 10}" font-size="13" font-weight="bold">{_esc(ds)}: '
                  f'validation R@10 per epoch</text>')
        el.append(f'<rect x="{left}" y="{y0}" width="{plot_w}" height="{panel_h}" fill="none" '
                  f'stroke="#444"/>')
        v = 0.0
        while v <= ymax + 1e-12:
            el.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" '
                      f'stroke="#ddd"/><text x="{left - 6}" y="{Y(v) + 4:.1f}" '
                      f'text-anchor="end">{v:.3g}</text>')
            v += step
        xstep = max(1, 10 ** math.floor(math.log10(max(1, xmax))) // (2 if xmax < 30 else 1))
        for e in range(0, xmax + 1, int(xstep)):
            if e >= 1:
                el.append(f'<text x="{X(e):.1f}" y="{y0 + panel_h + 14}" '
                          f'text-anchor="middle">{e}</text>')
        el.append(f'<text x="{left + plot_w / 2}" y="{y0 + panel_h + 30}" '
                  f'text-anchor="middle">epoch</text>')
        for j, (m, seeds) in enumerate(models.items()):
            col = COLOURS.get(base(m), "#000")
            for c in seeds:
                if base(m) == "pop" and c:  # counted once: its value holds for every epoch
                    el.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{Y(c[0][1]):.1f}" '
                              f'y2="{Y(c[0][1]):.1f}" stroke="{col}" stroke-dasharray="5,4"/>')
                elif len(c) == 1:
                    e, r = c[0]
                    el.append(f'<circle cx="{X(e):.1f}" cy="{Y(r):.1f}" r="3" fill="{col}"/>')
                elif c:
                    path = " ".join(f"{X(e):.1f},{Y(r):.1f}" for e, r in c)
                    el.append(f'<polyline points="{path}" fill="none" stroke="{col}" '
                              f'stroke-width="1.3" stroke-opacity="0.8"/>')
            ly = y0 + 12 + 16 * j
            el.append(f'<line x1="{left + plot_w + 12}" x2="{left + plot_w + 32}" y1="{ly}" '
                      f'y2="{ly}" stroke="{col}" stroke-width="2"/><text x="{left + plot_w + 36}" '
                      f'y="{ly + 4}">{_esc(name(m))} ({len(seeds)})</text>')
    el.append("</svg>")
    return "\n".join(el) + "\n"
