"""Benchmark: per-epoch pretraining time of this revision against an earlier one, in one run.

Each revision runs in its own process from a `git worktree` of it, on the same sources, config
(`configs/results_loo.yaml` budget unless overridden) and feature cache, one after the other, as
the plain single-process loop. Reported per revision: source preparation seconds, seconds per
epoch (BPR pass plus validation), the BPR pass alone, and where the revision reports it the split
into pair features / forward-backward / validation.

    python bench/pretrain_epoch.py --baseline 697d7c3 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import load_average, machine, report

REPO = Path(__file__).resolve().parents[1]
ALL = "ml-100k,lastfm,douban-movie,ml-1m,yelp,amazon-sports,epinions,amazon-book"

CHILD = r"""
import json, sys, time
from zsrec_ray.config import apply_overrides, load_yaml, ZeroShotConfig
from zsrec_ray.experiments.zeroshot import pretrain_on
cfg = load_yaml(sys.argv[1], ZeroShotConfig)
cfg = apply_overrides(cfg, {"sources": sys.argv[2].split(","), "pretrain.epochs": int(sys.argv[3]),
                            "pretrain.patience": int(sys.argv[3]), "cache_dir": sys.argv[4]})
t0 = time.perf_counter()
ck, info = pretrain_on(cfg, cfg.sources)
print("RESULT " + json.dumps({"prepare_s": info["prepare_s"], "history": info["history"],
                              "seconds_per_epoch": info["seconds_per_epoch"], "wall_s": time.perf_counter() - t0,
                              "best_valid_ndcg20": info["best_valid_ndcg20"]}))
"""


def run_revision(root: Path, args, cache: str) -> dict:
    cmd = [sys.executable, "-c", CHILD, str(REPO / args.config), args.sources, str(args.epochs), cache]
    from zsrec_ray.config import default_data_dir

    env = {**os.environ, "PYTHONPATH": str(root), "ZSREC_DATA_DIR": str(default_data_dir())}
    out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{root}: no result\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", required=True, help="git revision to compare with (e.g. 697d7c3)")
    ap.add_argument("--sources", default=ALL)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--config", default="configs/results_loo.yaml")
    ap.add_argument("--cache-dir", help="feature cache shared by both runs (default: a fresh temporary one, "
                                        "warmed by the first run)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    load = load_average()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache_dir or f"{tmp}/cache"
        old = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.baseline], cwd=REPO, check=True,
                       capture_output=True)
        try:
            run_revision(REPO, args, cache)  # warms the feature cache, so neither run pays featurization
            for name, root in ((f"baseline {args.baseline}", old), ("this revision", REPO)):
                rows.append((name, run_revision(root, args, cache)))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=REPO, capture_output=True)
    lines = [f"### Pretraining epoch, this revision against {args.baseline} ({time.strftime('%Y-%m-%d %H:%M')}, "
             f"{machine()}, load average at start {load})", "",
             f"`python bench/pretrain_epoch.py --baseline {args.baseline} --epochs {args.epochs}` "
             f"({len(args.sources.split(','))} sources, `{args.config}` budget, plain loop; each revision after a "
             "run that warmed the feature cache)", "",
             "| revision | prepare s | s/epoch (with validation) | BPR pass s/epoch | pair features s | "
             "forward-backward s | validation s | best valid NDCG@20 |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows:
        h = r["history"]
        per_epoch = h[-1]["seconds"] / len(h)
        split = [sum(x.get(k, 0.0) for x in h) / len(h) if k in h[-1] else None
                 for k in ("pairs_s", "fwd_bwd_s", "valid_s")]
        cell = lambda v: f"{v:.1f}" if v is not None else "n/a"  # noqa: E731
        lines.append(f"| {name} | {r['prepare_s']:.1f} | {per_epoch:.1f} | {r['seconds_per_epoch']:.1f} | "
                     f"{cell(split[0])} | {cell(split[1])} | {cell(split[2])} | {r['best_valid_ndcg20']:.4f} |")
    old_epoch = rows[0][1]["history"][-1]["seconds"] / len(rows[0][1]["history"])
    new_epoch = rows[1][1]["history"][-1]["seconds"] / len(rows[1][1]["history"])
    lines += ["", f"Per epoch: {new_epoch / old_epoch:.2f}x the baseline's time ({old_epoch / new_epoch:.1f}x faster)."]
    report(lines, save=not args.no_save)


if __name__ == "__main__":
    main()
