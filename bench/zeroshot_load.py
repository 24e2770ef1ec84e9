"""Benchmark: `zsrec zeroshot --load CK --target FILE.csv --compare mostpop,itemknn`, the command a
practitioner runs on their own file, timed end to end and part by part.

Writes the target dataset's raw interactions as a CSV with renamed columns (uid, iid, and ts where it has one), then runs the
command as a subprocess twice: with an empty cache directory (everything computed: node features,
baselines) and again on the filled cache (node features and baseline rows read back). Reports the
command's wall time beside the zero-shot row's parts (node features, neighbour lists, pair features
of the candidates, network and top-k) and the baselines' fit + rank seconds.

    python bench/zeroshot_load.py --targets ml-100k,ml-1m
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

PARTS = ("node_features_s", "neighbours_s", "pair_features_s", "network_s")


def write_csv(target: str, path: Path) -> str:
    """The registered dataset's raw interactions as ``uid,iid[,ts]``; returns the ``--columns`` mapping."""
    from zsrec_ray.data.registry import load_raw

    names = {"user": "uid", "item": "iid", "timestamp": "ts"}
    df = load_raw(target)
    keep = [c for c in names if c in df.columns]
    df[keep].rename(columns=names).to_csv(path, index=False)
    return ",".join(f"{c}={names[c]}" for c in keep)


def run(csv: Path, columns: str, cache: Path, checkpoint: str) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "zsrec_ray.cli", "zeroshot", "--load", checkpoint, "--target", str(csv),
           "--columns", columns, "--compare", "mostpop,itemknn", "--json",
           "--cache-dir", str(cache)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ})
    wall = time.perf_counter() - t0
    return wall, json.loads(out.stdout)["results"][0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="zsrec-base")
    ap.add_argument("--targets", default="ml-100k,ml-1m", help="registered dataset names")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    load = load_average()
    lines = [f"### `zsrec zeroshot --load` on a CSV ({time.strftime('%Y-%m-%d %H:%M')}, {machine()}, "
             f"load average at start {load})", "",
             f"`python bench/zeroshot_load.py --checkpoint {args.checkpoint} --targets {args.targets}`", "",
             "| target | cache | command wall s | zero-shot row s | node features s | neighbour lists s | "
             "pair features s | network + top-k s | MostPop + ItemKNN s | zero-shot NDCG@20 | ItemKNN NDCG@20 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for target in args.targets.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / f"{target}.csv"
            columns = write_csv(target, csv)
            for label in ("empty", "filled"):
                wall, res = run(csv, columns, Path(tmp) / "cache", args.checkpoint)
                rows = {r["model"]: r for r in res["rows"]}
                zs = next(r for name, r in rows.items() if name.startswith("pretrained"))
                if res["pretrain"].get("loaded") != args.checkpoint:
                    raise SystemExit(f"the command pretrained instead of loading {args.checkpoint}")
                base = rows["mostpop"]["wall_s"] + rows["itemknn"]["wall_s"]
                lines.append(f"| {target} | {label} | {wall:.2f} | {zs['wall_s']:.3f} | "
                             + " | ".join(f"{zs[p]:.3f}" for p in PARTS)
                             + f" | {base:.3f} | {zs['ndcg@20']:.4f} | {rows['itemknn']['ndcg@20']:.4f} |")
                print(lines[-1], flush=True)
    lines += ["", "The baselines' seconds on the filled cache are those recorded when they were fitted (their "
              "rows are read back, nothing is refitted)."]
    report(lines, not args.no_save)


if __name__ == "__main__":
    main()
