"""Benchmark: the least work the pair model's features need on a target, beside ItemKNN's fit + rank.

The pair features of a user are percentiles over every item of three raw scores: the item-kNN score
(the user's history times the item-item neighbour lists: exactly ItemKNN's score row), the user-kNN
score (the nearest users' histories) and the embedding cosine. So a zero-shot evaluation does at
least: node features (``featurize``), the item-item lists (ItemKNN's fit), the user-user lists, and
per test user the three raw score rows; candidate assembly, percentiles and the pair network come
on top. This script times each of those necessary parts alone and sets their sum (the floor)
against ItemKNN (k=100) fit + rank of the same test users. One warm-up featurization and fit run
first, so no row pays one-time start-up costs.

    python bench/zeroshot_floor.py --targets ml-100k,ml-1m,yelp,amazon-book
"""

from __future__ import annotations

import argparse
import time

from _common import load_average, machine, report, target_splits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="zsrec-base")
    ap.add_argument("--targets", default="ml-100k,ml-1m,yelp,amazon-book")
    ap.add_argument("--block", type=int, default=256, help="test users per block of raw score rows")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    import numpy as np
    import torch

    from zsrec_ray.features.featurizer import featurize
    from zsrec_ray.features.neighbors import cosine_topk
    from zsrec_ray.features.pairs import _unit_rows
    from zsrec_ray.models import ItemKNN
    from zsrec_ray.models.checkpoint import Checkpoint
    from zsrec_ray.ranking import evaluate

    load = load_average()
    ck = Checkpoint.load(args.checkpoint)
    rows = []
    warm = True
    for split in target_splits(args.targets):
        train = split.known()
        x = train.to_csr().astype(np.float64)
        users = np.unique(split.test.user)
        if warm:  # one-time start-up costs (imports, first k-means) go to no row
            featurize(train, ck.features)
            ItemKNN(k=100).fit(train)
            warm = False
        t0 = time.perf_counter()
        model = ItemKNN(k=100).fit(train)
        evaluate(model, split, "test")
        knn = time.perf_counter() - t0
        parts = {}
        t0 = time.perf_counter()
        fs = featurize(train, ck.features)
        parts["node features"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cap = ck.pairs.max_cooccurrence
        item_sim = cosine_topk(train.to_csr(), ck.pairs.item_neighbors, max_pairs=cap).astype(np.float64)
        parts["item-item lists"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        user_sim = cosine_topk(train.to_csr().T, ck.pairs.user_neighbors, max_pairs=cap).T.tocsr().astype(np.float64)
        parts["user-user lists"] = time.perf_counter() - t0
        uu, iu = torch.from_numpy(_unit_rows(fs.user_emb)), torch.from_numpy(_unit_rows(fs.item_emb))
        row_parts = {"item-kNN rows": lambda b: x[b] @ item_sim, "user-kNN rows": lambda b: user_sim[b] @ x,
                     "cosine rows": lambda b: uu[torch.from_numpy(b)] @ iu.T}
        for name, fn in row_parts.items():
            t0 = time.perf_counter()
            for s in range(0, len(users), args.block):
                fn(users[s:s + args.block])
            parts[name] = time.perf_counter() - t0
        floor = sum(parts.values())
        rows.append((split.name, len(users), knn, parts, floor))
        print(rows[-1], flush=True)
    names = list(rows[0][3])
    lines = [f"### Zero-shot floor: the pair features' necessary parts against ItemKNN ({time.strftime('%Y-%m-%d %H:%M')}, "
             f"{machine()}, load average at start {load})", "",
             f"`python bench/zeroshot_floor.py --targets {args.targets}` (seconds; every test user)", "",
             "| target | test users | ItemKNN fit + rank | " + " | ".join(names) + " | floor (sum) | floor / ItemKNN |",
             "|---|---:|---:|" + "---:|" * (len(names) + 2)]
    for name, n, knn, parts, floor in rows:
        lines.append(f"| {name} | {n:,} | {knn:.2f} | " + " | ".join(f"{parts[p]:.2f}" for p in names)
                     + f" | {floor:.2f} | {floor / knn:.1f}x |")
    report(lines, save=not args.no_save)


if __name__ == "__main__":
    main()
