"""Benchmark: Ray Data featurization of a domain vs pecanpy node2vec alone on the same graph.

For each dataset: (1) node2vec embeddings alone (pecanpy, METHOD.md defaults) in a fresh process,
JIT warm-up included, as the featurization task pays it; (2) the whole Ray Data featurization of
the domain's training split into a fresh feature store (embeddings, k-means, all feature blocks,
Parquet) on an embedded local Ray, Ray start-up included. Same graph, same run. Peak RSS is the
summed resident memory of the benchmark's process tree (its own Python process, ~0.3 GiB,
included in both). Prints and appends a Markdown table to docs/BENCHMARKS.md.

    python bench/featurize.py --datasets ml-1m,amazon-book --backend node2vec
    python bench/featurize.py --datasets amazon-book --backend node2vec --node2vec-workers 2

``--node2vec-workers`` sets node2vec's walk and Word2Vec threads in both measurements (the config
default 1 is bit-reproducible but single-threaded); the featurization task then reserves as many CPUs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

from _common import PeakRSS, load_average, machine, report

ALONE = """
import sys, time
from zsrec_ray.config import DomainSpec, FeatureConfig
from zsrec_ray.data.registry import load_split
from zsrec_ray.features.embeddings import node_embeddings
train = load_split(DomainSpec(dataset=sys.argv[1])).train
cfg = FeatureConfig.model_validate_json(sys.argv[2])
t0 = time.perf_counter()
node_embeddings(train, cfg)
print(f"{time.perf_counter() - t0:.2f} {train.n_users + train.n_items} {len(train)}")
"""


def feature_config(backend: str, node2vec_workers: int):
    from zsrec_ray.config import FeatureConfig, Node2VecConfig

    return FeatureConfig(backend=backend, node2vec=Node2VecConfig(workers=node2vec_workers))


def embeddings_alone(dataset: str, features) -> tuple[float, float, int, int]:
    with PeakRSS() as mem:
        out = subprocess.run([sys.executable, "-c", ALONE, dataset, features.model_dump_json()],
                             capture_output=True, text=True, check=True)
    secs, nodes, edges = out.stdout.split()
    return float(secs), mem.peak_gib, int(nodes), int(edges)


def pipeline(dataset: str, features) -> tuple[float, float, dict]:
    import ray

    from zsrec_ray.config import DomainSpec
    from zsrec_ray.distributed.featurize import featurize_domains

    with tempfile.TemporaryDirectory() as store, PeakRSS() as mem:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            t0 = time.perf_counter()
            rows = featurize_domains([DomainSpec(dataset=dataset)], features, store, graph_frac=1.0,
                                     cpus_per_domain=features.node2vec.workers)
            wall = time.perf_counter() - t0
        finally:
            ray.shutdown()
    if rows[0]["status"] != "ok":
        raise RuntimeError(rows[0]["error"])
    return wall, mem.peak_gib, rows[0]["manifest"]["timings"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="ml-1m,amazon-book")
    ap.add_argument("--backend", default="node2vec", choices=["node2vec", "spectral"])
    ap.add_argument("--node2vec-workers", type=int, default=1, choices=[1, 2],
                    help="node2vec threads (walks and Word2Vec); 1 = the reproducible config default")
    ap.add_argument("--no-save", action="store_true", help="print only; do not append to docs/BENCHMARKS.md")
    args = ap.parse_args()
    features = feature_config(args.backend, args.node2vec_workers)
    workers = f" --node2vec-workers {args.node2vec_workers}" if args.node2vec_workers != 1 else ""
    lines = [f"### Featurization, backend {args.backend}{workers} ({time.strftime('%Y-%m-%d %H:%M')}, {machine()}, "
             f"load average at start {load_average()})", "",
             f"`python bench/featurize.py --datasets {args.datasets} --backend {args.backend}{workers}`", "",
             "| dataset | nodes | train edges | embeddings alone (s) | peak RSS (GiB) | Ray Data featurization (s) "
             "| pipeline / alone | peak RSS, Ray included (GiB) | stages inside the task (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for d in args.datasets.split(","):
        alone, alone_mem, nodes, edges = embeddings_alone(d, features)
        wall, peak, timings = pipeline(d, features)
        stages = ", ".join(f"{k} {v:.1f}" for k, v in timings.get("full_stages", {}).items() if k != "total")
        lines.append(f"| {d} | {nodes:,} | {edges:,} | {alone:.1f} | {alone_mem:.2f} | {wall:.1f} | {wall / alone:.2f} "
                     f"| {peak:.2f} | {stages} |")
        print(lines[-1], flush=True)
    report(lines, save=not args.no_save)


if __name__ == "__main__":
    main()
