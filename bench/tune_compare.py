"""Does a Tune search's best config beat the default it searched around?

Runs both configs through the search's own protocol at its full budget (leave-one-source-out over
the base config's sources, every fold trained to ``tune.max_epochs``; the held-out sources'
validation NDCG@20, zero-shot and blended with ItemKNN at the config's interpolation alpha, 0.5
where it is unset), then pretrains each on all the sources
with the same budget and evaluates it zero-shot on the test split of the base config's target,
which the search never read. Prints and appends the table to docs/BENCHMARKS.md.

    python bench/tune_compare.py --base configs/tune.yaml --best docs/results/tune_loso4_best_config.yaml
"""

from __future__ import annotations

import argparse
import time

from _common import load_average, machine, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="configs/tune.yaml", help="the search's config (its values are the default)")
    ap.add_argument("--best", default="docs/results/tune_loso4_best_config.yaml",
                    help="best_config.yaml the search wrote")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    from zsrec_ray.config import ZeroShotConfig, apply_overrides, load_yaml
    from zsrec_ray.data.registry import load_domains
    from zsrec_ray.experiments.loso import LeaveOneSourceOut
    from zsrec_ray.experiments.zeroshot import evaluate_pretrained, pretrain_on
    from zsrec_ray.features.featurizer import caching_featurizer

    load = load_average()
    base = load_yaml(args.base, ZeroShotConfig)
    rows = []
    for name, path in (("default", args.base), ("best", args.best)):
        cfg = load_yaml(path, ZeroShotConfig)
        cfg = apply_overrides(cfg, {"pretrain.epochs": base.tune.max_epochs, "sources": base.sources,
                                    "target": base.target})
        featurize_fn = caching_featurizer(cfg.resolved_cache_dir() / "features")
        t0 = time.perf_counter()
        alpha = 0.5 if cfg.interpolation.alpha is None else cfg.interpolation.alpha  # None: picked per target
        loso = LeaveOneSourceOut(cfg, load_domains(cfg, cfg.sources), featurize_fn, alpha=alpha)
        row = {}
        while not loso.done:
            row = loso.step()
        loso_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ck, _ = pretrain_on(cfg, cfg.sources)
        split = load_domains(cfg, [cfg.target])[cfg.target_label]
        target = evaluate_pretrained(cfg, ck, split, name, featurize_fn)
        rows.append((f"{name} (blend alpha {alpha:.2f})", row, target["ndcg@20"], loso_s, time.perf_counter() - t0))
        print(rows[-1], flush=True)
    held = sorted(k.split("/")[1] for k in rows[0][1] if k.startswith("zeroshot_ndcg@20/"))
    lines = [f"### Tune: best config against the default ({time.strftime('%Y-%m-%d %H:%M')}, {machine()}, load "
             f"average at start {load})", "",
             f"`python bench/tune_compare.py --base {args.base} --best {args.best}`: held-out sources' validation "
             f"NDCG@20 (leave-one-source-out, {base.tune.max_epochs} epochs, each fold's best epoch) and the "
             f"untouched target's ({base.target}) test NDCG@20 after pretraining on {', '.join(base.sources)}.", "",
             "| config | " + " | ".join(f"held-out {h}" for h in held) +
             " | mean zero-shot | mean blend | target test NDCG@20 | LOSO s | pretrain + target s |",
             "|---|" + "---:|" * (len(held) + 5)]
    for name, row, tgt, loso_s, tgt_s in rows:
        lines.append(f"| {name} | " + " | ".join(f"{row[f'zeroshot_ndcg@20/{h}']:.4f}" for h in held) +
                     f" | {row['zeroshot_ndcg@20']:.4f} | {row['blend_ndcg@20']:.4f} | {tgt:.4f} | {loso_s:.0f} "
                     f"| {tgt_s:.0f} |")
    (d, dr, dt, _, _), (b, br, bt, _, _) = rows
    lines.append(f"\nBest / default: held-out blend x{br['blend_ndcg@20'] / dr['blend_ndcg@20']:.3f}, "
                 f"zero-shot x{br['zeroshot_ndcg@20'] / dr['zeroshot_ndcg@20']:.3f}, target x{bt / dt:.3f}.")
    report(lines, save=not args.no_save)


if __name__ == "__main__":
    main()
