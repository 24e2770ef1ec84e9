"""Benchmark: what `zsrec zeroshot --load CK` costs on a target, part by part, beside the baselines.

For each target: the pretrained model's featurization (node features and pair-feature neighbour
lists of the training split) and its ranking of every test user (exhaustive, and two-stage with
the given candidate counts), against MostPop and ItemKNN fit + rank on the same split. One
warm-up featurization runs first, so no row pays one-time start-up costs.

    python bench/zeroshot_cost.py --checkpoint zsrec-base --targets ml-100k,ml-1m --candidates 200
"""

from __future__ import annotations

import argparse
import time

from _common import load_average, machine, report, target_splits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="zsrec-base")
    ap.add_argument("--targets", default="ml-100k,ml-1m", help="dataset names or files (columns user, item)")
    ap.add_argument("--candidates", default="200", help="comma-separated two-stage candidate counts")
    ap.add_argument("--no-exhaustive", action="store_true",
                    help="skip the every-item reference row (slow on large catalogues)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    from zsrec_ray.models import ItemKNN, MostPop
    from zsrec_ray.models.checkpoint import Checkpoint
    from zsrec_ray.models.pretrained import PretrainedRecommender
    from zsrec_ray.ranking import evaluate

    load = load_average()
    ck = Checkpoint.load(args.checkpoint)
    rows = []
    warm = True
    for split in target_splits(args.targets):
        if warm:
            PretrainedRecommender(ck).fit(split.known())
            warm = False
        counts = [int(c) for c in args.candidates.split(",") if c]
        for cand in counts if args.no_exhaustive else [None, *counts]:
            t0 = time.perf_counter()
            model = PretrainedRecommender(ck, candidates=cand).fit(split.known())
            t1 = time.perf_counter()
            res = evaluate(model, split, "test")
            rows.append((split.name, f"zero-shot, {'every item' if cand is None else f'{cand} candidates'}",
                         t1 - t0, time.perf_counter() - t1, res["ndcg@20"], res.n_users))
        for name, model in (("MostPop", MostPop()), ("ItemKNN", ItemKNN(k=100))):
            t0 = time.perf_counter()
            model.fit(split.known())
            t1 = time.perf_counter()
            res = evaluate(model, split, "test")
            rows.append((split.name, name, t1 - t0, time.perf_counter() - t1, res["ndcg@20"], res.n_users))
        print(rows[-1], flush=True)
    lines = [f"### Zero-shot cost by part ({time.strftime('%Y-%m-%d %H:%M')}, {machine()}, load average at start "
             f"{load})", "",
             f"`python bench/zeroshot_cost.py --checkpoint {args.checkpoint} --targets {args.targets} --candidates "
             f"{args.candidates}{' --no-exhaustive' if args.no_exhaustive else ''}`", "",
             "| target | model | featurize / fit s | rank every test user s | total s | test NDCG@20 | users |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for t, m, fit, rank, ndcg, users in rows:
        lines.append(f"| {t} | {m} | {fit:.2f} | {rank:.2f} | {fit + rank:.2f} | {ndcg:.4f} | {users:,} |")
    report(lines, save=not args.no_save)


if __name__ == "__main__":
    main()
