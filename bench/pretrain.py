"""Benchmark: pretraining epoch time and triples/s, plain loop vs Ray Train with 1 and 2 workers.

Same sources, features (from one feature store), config and seed in one run. "train s/epoch" is
the BPR pass alone (triple sampling with pair features, forward, backward, step; validation and
checkpointing excluded) as rank 0 measures it; triples/s is the epoch's triples over all workers
divided by it; "wall s" is the whole run, Ray Train start-up and per-epoch checkpoints included.

    python bench/pretrain.py --sources ml-100k,lastfm,douban-movie --epochs 3
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _common import load_average, machine, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", default="ml-100k,lastfm,douban-movie")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--users-per-epoch", type=int, default=3000)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    when, load = time.strftime('%Y-%m-%d %H:%M'), load_average()
    import ray

    from zsrec_ray.config import ZeroShotConfig
    from zsrec_ray.distributed.featurize import featurize_domains
    from zsrec_ray.distributed.train import pretrain_distributed
    from zsrec_ray.config import DomainSpec
    from zsrec_ray.data.registry import domain_split
    from zsrec_ray.features.store import FeatureStore
    from zsrec_ray.training.pretrain import prepare_source, pretrain

    sources = args.sources.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ZeroShotConfig.model_validate({
            "sources": sources, "pretrain": {"epochs": args.epochs, "patience": args.epochs,
                                             "users_per_epoch": args.users_per_epoch, "valid_users": 500},
            "ray": {"store": f"{tmp}/store", "storage_path": f"{tmp}/runs"}})
        ray.init(address="local", num_cpus=2, log_to_driver=False)
        try:
            featurize_domains([DomainSpec(dataset=s) for s in sources], cfg.features, cfg.ray.store, 0.8)
            store = FeatureStore(cfg.ray.store)
            rows = []
            t0 = time.perf_counter()
            prepared = [prepare_source(domain_split(cfg, s), cfg.features, cfg.pairs, 0.8, 0, store.featurizer())
                        for s in sources]
            _, rep = pretrain(prepared, cfg.features, cfg.pairs, cfg.pretrain)
            rows.append(("plain loop (1 process)", rep.to_dict(), time.perf_counter() - t0))
            # the workers share the 2 cores: 1 worker x 2 CPUs, 2 workers x 1 CPU; and 1 worker x 1 CPU,
            # what one core does, for the scaling of the sharded work itself
            for w, cpus in ((1, 2.0), (2, 1.0), (1, 1.0)):
                _, rep = pretrain_distributed(cfg, sources, cfg.ray.store, cfg.ray.storage_path, f"bench-{w}-{cpus:g}",
                                              w, max_failures=0, cpus_per_worker=cpus)
                rows.append((f"Ray Train, {w} worker{'s' * (w > 1)} x {cpus:g} CPU", rep, rep["wall_s"]))
        finally:
            ray.shutdown()
    lines = [f"### Pretraining ({when}, {machine()}, load average at start "
             f"{load})", "",
             f"`python bench/pretrain.py --sources {args.sources} --epochs {args.epochs} --users-per-epoch "
             f"{args.users_per_epoch}`", "",
             "| runner | train s/epoch | of which pair features s | forward-backward s | triples/epoch | triples/s | "
             "x plain loop | best valid NDCG@20 | wall s (whole run) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    plain = None
    for name, rep, wall in rows:
        h = rep["history"]
        triples = sum(x["triples"] for x in h) / len(h)
        spe = rep["seconds_per_epoch"]
        plain = plain or triples / spe
        split = [sum(x[k] for x in h) / len(h) for k in ("pairs_s", "fwd_bwd_s")]
        lines.append(f"| {name} | {spe:.2f} | {split[0]:.2f} | {split[1]:.2f} | {triples:,.0f} | {triples / spe:,.0f} "
                     f"| {triples / spe / plain:.2f} | {rep['best_valid_ndcg20']:.4f} | {wall:.1f} |")
    lines += ["", "Pair features and forward-backward are rank 0's (each rank computes its own share of the "
                  "epoch's rows)."]
    report(lines, save=not args.no_save)


if __name__ == "__main__":
    main()
