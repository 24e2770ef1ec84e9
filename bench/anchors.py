"""Benchmark: fit cost of the in-domain anchors EASE and RP3beta per dataset, beside ItemKNN.

One hyperparameter point each (EASE: one L2 solve; RP3beta: one alpha/beta/k; ItemKNN: k=100),
on each dataset's training split (5-core, random 80/10/10, seed 0): fit seconds and the process's
peak RSS after the fit. The validation search multiplies EASE's cost by the L2 candidates it
tries and RP3beta's by the points it scores (see `zsrec baselines --models ease,rp3beta`).

    python bench/anchors.py --datasets ml-100k,lastfm,douban-movie,ml-1m,epinions,amazon-sports,yelp,amazon-book
"""

from __future__ import annotations

import argparse
import resource
import time

from _common import load_average, machine, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="ml-100k,lastfm,douban-movie,ml-1m")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    from zsrec_ray.config import ZeroShotConfig
    from zsrec_ray.data.registry import domain_split
    from zsrec_ray.models import EASE, ItemKNN
    from zsrec_ray.training import build_model

    load = load_average()
    rows = []
    for name in args.datasets.split(","):
        split = domain_split(ZeroShotConfig(), name)
        row = {"dataset": name, "users": split.n_users, "items": split.n_items, "train": len(split.train)}
        for label, model in (("itemknn", ItemKNN(k=100)), ("rp3beta", build_model("rp3beta")), ("ease", EASE(l2=(500.0,)))):
            t0 = time.perf_counter()
            model.fit(split.train)
            row[f"{label}_s"] = time.perf_counter() - t0
            row[f"{label}_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            del model
        rows.append(row)
        print(row, flush=True)
    lines = [f"### In-domain anchors: fit cost ({time.strftime('%Y-%m-%d %H:%M')}, {machine()}, load average at "
             f"start {load})", "", f"`python bench/anchors.py --datasets {args.datasets}`", "",
             "One point each (ItemKNN k=100; RP3beta the middle candidates, alpha 0.75, beta 0.5, k 100; EASE one L2 solve, float32 "
             "Cholesky). Peak RSS is the process's high-water mark after that fit (it only grows).", "",
             "| dataset | users | items | train | ItemKNN s | RP3beta s | EASE s | peak RSS after EASE (GiB) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['users']:,} | {r['items']:,} | {r['train']:,} | {r['itemknn_s']:.1f} | "
                     f"{r['rp3beta_s']:.1f} | {r['ease_s']:.1f} | {r['ease_rss_gib']:.1f} |")
    report(lines, save=not args.no_save)


if __name__ == "__main__":
    main()
