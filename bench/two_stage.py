"""Two-stage vs exhaustive ranking of the pretrained pair model on targets it never saw.

For each target: featurize its training split (cached), then rank every test user's items with
the checkpoint, once scoring every item and once per candidate count (the pair scorer on the
candidates only); beside it, ItemKNN fit + rank on the same split. Prints and appends a table
of test NDCG@20 and wall seconds to docs/BENCHMARKS.md.

    python bench/two_stage.py --checkpoint 'runs/loo/ck_{target}.pt' --targets douban-movie,ml-1m \\
        --candidates 200,500,1000 [--users 3000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import load_average, machine, report

from zsrec_ray.config import ZeroShotConfig
from zsrec_ray.data.registry import domain_split
from zsrec_ray.features.featurizer import caching_featurizer
from zsrec_ray.models.checkpoint import Checkpoint
from zsrec_ray.models.itemknn import ItemKNN
from zsrec_ray.models.pretrained import PretrainedRecommender
from zsrec_ray.ranking import rank_metrics


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def test_ndcg20(model, split, users):
    """Test NDCG@20 of ``users`` (None: every test user), training and validation items masked."""
    exclude = (split.known().to_csr() + split.valid.to_csr()).tocsr()
    return rank_metrics(model, exclude, split.test.to_csr(), ks=(20,), users=users)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="zsrec-base",
                    help="a checkpoint (file or shipped name); {target} in it is replaced by each target's name, "
                         "e.g. runs/loo/ck_{target}.pt for leave-one-out checkpoints")
    ap.add_argument("--targets", default="douban-movie,ml-1m")
    ap.add_argument("--candidates", default="200,500,1000")
    ap.add_argument("--users", type=int, help="rank a seeded sample of this many test users (default: all)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    when, load = time.strftime('%Y-%m-%d %H:%M'), load_average()
    cfg = ZeroShotConfig()
    featurize_fn = caching_featurizer(cfg.resolved_cache_dir() / "features")
    counts = [int(c) for c in args.candidates.split(",")]
    rows = []
    for target in args.targets.split(","):
        ck = Checkpoint.load(args.checkpoint.format(target=target))
        split = domain_split(cfg, target)
        data = split.known()
        users = None
        if args.users:
            tested = np.unique(split.test.user)
            users = np.sort(np.random.default_rng(0).choice(tested, min(args.users, len(tested)), replace=False))
        _, feat_s = timed(lambda: featurize_fn(data, ck.features))  # cached after the first run
        knn, knn_s = timed(lambda: test_ndcg20(ItemKNN(cfg.model.itemknn.k).fit(data), split, users))
        exhaustive = PretrainedRecommender(ck, featurize_fn).fit(data)
        ex, ex_s = timed(lambda: test_ndcg20(exhaustive, split, users))
        row = {"target": target, "users": ex.n_users, "items": split.n_items, "itemknn": (knn["ndcg@20"], knn_s),
               "exhaustive": (ex["ndcg@20"], ex_s), "featurize_s": feat_s}
        for c in counts:
            model = PretrainedRecommender(ck, featurize_fn, candidates=c).fit(data)
            res, s = timed(lambda: test_ndcg20(model, split, users))
            row[c] = (res["ndcg@20"], s)
        rows.append(row)
        print(row, flush=True)
    head = " | ".join(f"{c} cand. NDCG (s)" for c in counts)
    lines = [f"### Two-stage ranking ({when}, {machine()}, load average at start "
             f"{load})", "",
             f"`python bench/two_stage.py --checkpoint {args.checkpoint} --targets {args.targets} --candidates "
             f"{args.candidates}" + (f" --users {args.users}" if args.users else "") + "`: test NDCG@20 and wall seconds to rank every test user (features cached; "
             "ItemKNN: fit + rank).", "",
             f"| target | users x items | ItemKNN NDCG (s) | exhaustive NDCG (s) | {head} |",
             "|---|---|---|---|" + "---|" * len(counts)]
    for r in rows:
        cells = " | ".join(f"{r[c][0]:.4f} ({r[c][1]:.1f}) {r[c][0] / r['exhaustive'][0]:.3f}x" for c in counts)
        lines.append(f"| {r['target']} | {r['users']:,} x {r['items']:,} | {r['itemknn'][0]:.4f} ({r['itemknn'][1]:.1f}) "
                     f"| {r['exhaustive'][0]:.4f} ({r['exhaustive'][1]:.1f}) | {cells} |")
    report(lines, save=not args.no_save)


if __name__ == "__main__":
    main()
