"""Benchmark: a million-item domain, from registration to batch top-k.

Generates a seeded synthetic power-law domain (``zsrec_ray.data.synthetic``: about ``--items``
items and ``--interactions`` interactions over ``--users`` users), writes it as Parquet and then
measures, with the peak RSS of this process tree (Ray's processes included) beside each step:

1. register -> ready: the Serve app imports the file (``import_dir``) and featurizes it;
2. the first ``/recommend`` (the replica builds the domain's index: towers, neighbour lists);
3. ``/recommend`` latency for one client (sequential requests for random users);
4. batch top-k for every user of the served domain through the Ray Data job (``zsrec recommend
   --store``: the stored features and neighbour lists, nothing featurized again), two-stage.

Results are appended to docs/BENCHMARKS.md.

    python bench/scale.py --users 100000 --items 1000000 --interactions 10000000 --candidates 200
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

from _common import PeakRSS, free_port, load_average, machine, report

TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--interactions", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint", default="zsrec-base")
    ap.add_argument("--candidates", type=int, default=200)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--requests", type=int, default=200, help="/recommend requests from one client")
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--actors", type=int, choices=(1, 2), default=1, help="batch job actors (sharing the 2 CPUs)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    import pandas as pd
    import ray
    from ray import serve

    from zsrec_ray.config import DomainSpec
    from zsrec_ray.data.synthetic import synthetic_domain
    from zsrec_ray.distributed.batch import batch_recommend
    from zsrec_ray.experiments.batch import BatchJob
    from zsrec_ray.models.checkpoint import checkpoint_path
    from zsrec_ray.serving.app import ZsrecAPI, featurizer_name
    from zsrec_ray.serving.domains import DomainStore, serving_version_dir

    load = load_average()
    rows: list[tuple[str, float, float, str]] = []  # step, seconds, peak RSS GiB, note
    with tempfile.TemporaryDirectory() as tmp, PeakRSS() as whole:
        tmp = Path(tmp)
        (tmp / "import").mkdir()
        (tmp / "token").write_text(TOKEN)
        t0 = time.perf_counter()
        d = synthetic_domain(args.users, args.items, args.interactions, seed=args.seed)
        file = tmp / "import" / "synthetic.parquet"
        pd.DataFrame({"user": d.user_ids[d.user], "item": d.item_ids[d.item]}).to_parquet(file, index=False)
        n_users, n_items, n_rows = d.n_users, d.n_items, len(d.user)
        del d
        rows.append(("generate + write Parquet", time.perf_counter() - t0, whole.peak_gib,
                     f"{n_users:,} users x {n_items:,} items, {n_rows:,} interactions"))
        print(rows[-1], flush=True)

        ray.init(address="local", num_cpus=2, log_to_driver=False)
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        base = f"http://127.0.0.1:{port}"
        try:
            settings = {"checkpoint": args.checkpoint, "storage_dir": str(tmp / "serve"),
                        "token_file": str(tmp / "token"), "token_env": "ZSREC_BENCH_UNSET",
                        "import_dir": str(tmp / "import"), "candidates": args.candidates}
            serve.run(ZsrecAPI.options(ray_actor_options={"num_cpus": 0.5}).bind(settings), name="zsrec",
                      route_prefix="/")
            t0 = time.perf_counter()
            r = requests.post(f"{base}/v1/domains", json={"name": "scale", "path": file.name}, headers=AUTH,
                              timeout=3600)
            r.raise_for_status()
            while (status := requests.get(f"{base}/v1/domains/scale", headers=AUTH).json())["status"] == "pending":
                time.sleep(1)
            if status["status"] != "ready":
                raise RuntimeError(f"registration failed: {status}")
            rows.append(("register -> ready (import, featurize, store)", time.perf_counter() - t0, whole.peak_gib,
                         ""))
            print(rows[-1], flush=True)
            users = [f"u{u}" for u in np.random.default_rng(0).integers(0, n_users, args.requests + 1)]
            url = f"{base}/v1/domains/scale/recommend"
            t0 = time.perf_counter()
            requests.post(url, json={"user": users[0], "k": args.k}, headers=AUTH, timeout=3600).raise_for_status()
            rows.append(("first /recommend (builds the index)", time.perf_counter() - t0, whole.peak_gib, ""))
            print(rows[-1], flush=True)
            lat = []
            with requests.Session() as s:
                for u in users[1:]:
                    t1 = time.perf_counter()
                    s.post(url, json={"user": u, "k": args.k}, headers=AUTH, timeout=60).raise_for_status()
                    lat.append(time.perf_counter() - t1)
            lat.sort()
            q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000  # noqa: E731
            rows.append((f"/recommend, one client, {len(lat)} requests", sum(lat), whole.peak_gib,
                         f"p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms"))
            print(rows[-1], flush=True)
            serve.shutdown()
            # the app's featurizer is a detached actor holding a CPU: end it before the batch job
            store = DomainStore(settings["storage_dir"])
            ray.kill(ray.get_actor(featurizer_name(str(checkpoint_path(args.checkpoint).resolve()), str(store.root))))
            if not args.skip_batch:
                # the served domain, as `zsrec recommend --store`: its stored features and lists
                job = BatchJob(checkpoint=args.checkpoint, output=str(tmp / "recs"), k=args.k,
                               candidates=args.candidates, domain=DomainSpec(dataset="scale"),
                               served=str(serving_version_dir(settings["storage_dir"], "scale"))).resolved()
                t0 = time.perf_counter()
                summary = batch_recommend(job, actors=args.actors, cpus_per_actor=2.0 / args.actors)
                rows.append((f"batch top-{args.k}, every user of the served domain (Ray Data, {args.actors} "
                             f"actor(s) x {2 / args.actors:g} CPUs)", time.perf_counter() - t0, whole.peak_gib,
                             f"{summary}"))
                print(rows[-1], flush=True)
        finally:
            serve.shutdown()
            ray.shutdown()
    lines = [f"### Scale: a synthetic {n_items:,}-item domain ({time.strftime('%Y-%m-%d %H:%M')}, {machine()}, "
             f"load average at start {load})", "",
             f"`python bench/scale.py --users {args.users} --items {args.items} --interactions {args.interactions} "
             f"--candidates {args.candidates} --actors {args.actors}` ({n_users:,} users x {n_items:,} items, "
             f"{n_rows:,} interactions; "
             "peak RSS of the whole process tree, Ray's processes included, up to the end of each step)", "",
             "| step | seconds | peak RSS so far (GiB) | notes |", "|---|---:|---:|---|"]
    for step, s, rss, note in rows:
        lines.append(f"| {step} | {s:.1f} | {rss:.1f} | {note} |")
    report(lines, save=not args.no_save)


if __name__ == "__main__":
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    main()
