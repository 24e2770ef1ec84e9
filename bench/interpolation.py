"""Two-stage vs exhaustive interpolation of the pretrained pair model with an in-domain model.

For each target: fit the base model once (its validation pick), featurize the target's training
split (cached), then run the interpolation report (alpha picked over the eleven points on
validation, then one test pass) twice: the pair network scoring every item, and two-stage (its
candidates plus the base's top items). Prints and appends a table of test NDCG@20 and wall
seconds to docs/BENCHMARKS.md.

    python bench/interpolation.py --checkpoint 'runs/loo/ck_{target}.pt' --targets yelp --base rp3beta \\
        [--set 'model.rp3beta.k=[500]' ...] [--no-exhaustive]
"""

from __future__ import annotations

import argparse
import time

from _common import load_average, machine, report

from zsrec_ray.config import ZeroShotConfig, apply_overrides
from zsrec_ray.data.registry import domain_split
from zsrec_ray.experiments.interpolation import BASE_TOP, interpolation_report
from zsrec_ray.features.featurizer import caching_featurizer
from zsrec_ray.models.checkpoint import Checkpoint
from zsrec_ray.models.pretrained import PretrainedRecommender
from zsrec_ray.training import build_model


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="zsrec-base",
                    help="a checkpoint (file or shipped name); {target} in it is replaced by each target's name")
    ap.add_argument("--targets", default="ml-1m")
    ap.add_argument("--base", default="ease", help="the in-domain model mixed in (fitted once per target)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. the base's grid")
    ap.add_argument("--no-exhaustive", action="store_true", help="skip the exhaustive mix (large catalogues)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    when, load = time.strftime("%Y-%m-%d %H:%M"), load_average()
    cfg = apply_overrides(ZeroShotConfig(), args.set)
    featurize_fn = caching_featurizer(cfg.resolved_cache_dir() / "features")
    rows = []
    for target in args.targets.split(","):
        ck = Checkpoint.load(args.checkpoint.format(target=target))
        split = domain_split(cfg, target)
        data = split.known()
        base, fit_s = timed(lambda: build_model(args.base, cfg.model).fit(data, split.valid))
        row = {"target": target, "items": split.n_items, "base_fit_s": fit_s}
        modes = [("two-stage", cfg.evaluation.candidates)] + ([] if args.no_exhaustive else [("exhaustive", None)])
        for mode, candidates in modes:
            model = PretrainedRecommender(ck, featurize_fn, candidates=candidates).fit(data)
            rep, s = timed(lambda: interpolation_report(model, base.score, split, args.base, ks=(20,)))
            row[mode] = {"alpha": rep["alpha"], "ndcg": rep["interpolated_test"]["ndcg@20"], "s": s,
                         "base": rep["base_test"]["ndcg@20"], "pair": rep["pretrained_test"]["ndcg@20"]}
        rows.append(row)
        print(row, flush=True)
    lines = [f"### Interpolation, two-stage vs exhaustive ({when}, {machine()}, load average at start {load})", "",
             f"`python bench/interpolation.py --checkpoint {args.checkpoint} --targets {args.targets} "
             f"--base {args.base}"
             + (f" --set {' '.join(repr(s) for s in args.set)}" if args.set else "")
             + (" --no-exhaustive" if args.no_exhaustive else "")
             + f"`: the report's wall seconds (validation over eleven alphas, then one test pass; features cached, "
             f"the base fitted once, beside); test NDCG@20. Two-stage: {cfg.evaluation.candidates} candidates plus the "
             f"base's top {BASE_TOP}.", "",
             "| target | items | base fit s | base NDCG | mode | pair alone | alpha | mixed NDCG | report s |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        for mode in ("two-stage", "exhaustive"):
            if mode in r:
                m = r[mode]
                lines.append(f"| {r['target']} | {r['items']:,} | {r['base_fit_s']:.0f} | {m['base']:.4f} | {mode} | "
                             f"{m['pair']:.4f} | {m['alpha']} | {m['ndcg']:.4f} | {m['s']:.0f} |")
    report(lines, save=not args.no_save)


if __name__ == "__main__":
    main()
