"""Benchmark: what two data-parallel ranks could gain on this machine at best, without Ray or DDP.

Runs the core Pretrainer's epochs (pair features + forward-backward; no all-reduce, no
validation) in plain processes:

- one process, 1 intra-op thread;
- one process, 2 threads (the plain loop);
- two processes at once, 1 thread each, each with its rank's share of the epoch (world 2) and
  its gradients kept local: the sharded work with no communication at all, an upper bound for
  2 Ray Train workers x 1 CPU.

Triples/s over the epochs, first epoch (every sampled user's score rows sorted) and later ones
(rows from the memo) apart. If the two processes together do not reach 1.5x the plain loop,
no data-parallel runner can on this machine.

    python bench/pretrain_ceiling.py --sources ml-100k,lastfm,douban-movie --epochs 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

from _common import load_average, machine, report


def _run(sources: list[str], epochs: int, users: int, threads: int, rank: int, world: int, start, out) -> None:
    import torch

    from zsrec_ray.config import ZeroShotConfig
    from zsrec_ray.data.registry import load_domains
    from zsrec_ray.features.featurizer import caching_featurizer
    from zsrec_ray.training.pretrain import Pretrainer, prepare_sources

    torch.set_num_threads(threads)
    cfg = ZeroShotConfig()
    splits = load_domains(cfg, sources)
    budget = cfg.pretrain.model_copy(update={"users_per_epoch": users, "epochs": epochs})
    prepared = prepare_sources([splits[s] for s in sources], cfg.features, cfg.pairs, budget.graph_frac,
                               budget.seed, caching_featurizer(cfg.resolved_cache_dir() / "features"))
    trainer = Pretrainer(prepared, cfg.features, cfg.pairs, budget, rank=rank, world=world)
    start.wait()
    rows = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        _, triples = trainer.train_epoch()
        rows.append((time.perf_counter() - t0, triples))
    out.put((rank, rows))


def measure(sources: list[str], epochs: int, users: int, threads: int, world: int) -> list[tuple[float, int]]:
    """Per epoch: (seconds of the slowest rank, triples of all ranks)."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(world), ctx.Queue()
    procs = [ctx.Process(target=_run, args=(sources, epochs, users, threads, r, world, start, out))
             for r in range(world)]
    for p in procs:
        p.start()
    results = dict(out.get() for _ in procs)
    for p in procs:
        p.join()
    return [(max(results[r][e][0] for r in results), sum(results[r][e][1] for r in results))
            for e in range(epochs)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", default="ml-100k,lastfm,douban-movie")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--users-per-epoch", type=int, default=3000)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    sources = args.sources.split(",")
    load = load_average()
    runs = [("1 process x 1 thread", 1, 1), ("1 process x 2 threads (the plain loop)", 2, 1),
            ("2 processes x 1 thread, sharded, no communication", 1, 2)]
    lines = [f"### Data-parallel ceiling ({time.strftime('%Y-%m-%d %H:%M')}, {machine()}, load average at start "
             f"{load})", "",
             f"`python bench/pretrain_ceiling.py --sources {args.sources} --epochs {args.epochs} --users-per-epoch "
             f"{args.users_per_epoch}`", "",
             "| runner | first epoch s | later epochs s (mean) | triples/s, all epochs | x plain loop |",
             "|---|---:|---:|---:|---:|"]
    plain = None
    for name, threads, world in runs:
        rows = measure(sources, args.epochs, args.users_per_epoch, threads, world)
        rate = sum(t for _, t in rows) / sum(s for s, _ in rows)
        if threads == 2:
            plain = rate
        later = sum(s for s, _ in rows[1:]) / max(len(rows) - 1, 1)
        lines.append(f"| {name} | {rows[0][0]:.2f} | {later:.2f} | {rate:,.0f} | "
                     f"{'' if plain is None else f'{rate / plain:.2f}'} |")
        print(lines[-1], flush=True)
    report(lines, not args.no_save)


if __name__ == "__main__":
    main()
