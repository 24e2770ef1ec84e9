"""Benchmark: /recommend under load, Ray Serve app vs the same scoring in a bare FastAPI app.

Starts the Serve app on an embedded local Ray, registers a real domain (a dataset's training
split, sent as JSON) and times registration -> ready; then sends N recommendation requests for
random known users at concurrency C and reports p50/p95/p99 latency and requests/s. The same
scoring (the same DomainIndex, loaded from the app's storage) behind a bare FastAPI + uvicorn
app without Serve is measured in the same run, and the ratio printed. Results are appended to
docs/BENCHMARKS.md.

    python bench/serve_load.py --dataset lastfm --requests 500 --concurrency 8
"""


import argparse
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

from _common import load_average, machine, report

TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(url: str, users: list[str], n: int, concurrency: int, k: int) -> dict:
    rng = np.random.default_rng(0)
    picks = [users[i] for i in rng.integers(0, len(users), n)]
    local = threading.local()

    def one(u: str) -> float:
        s = getattr(local, "s", None) or requests.Session()
        local.s = s
        t0 = time.perf_counter()
        r = s.post(url, json={"user": u, "k": k}, headers=AUTH, timeout=60)
        r.raise_for_status()
        return time.perf_counter() - t0

    for u in picks[:20]:  # warm-up
        one(u)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as ex:
        lat = sorted(ex.map(one, picks))
    wall = time.perf_counter() - t0
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000  # noqa: E731
    return {"p50": q(0.50), "p95": q(0.95), "p99": q(0.99), "rps": n / wall, "mean": statistics.mean(lat) * 1000}


def bare_app(storage: Path, checkpoint: str, name: str, port: int):
    """The same DomainIndex scoring behind plain FastAPI + uvicorn (no Serve, no batching)."""
    import uvicorn
    from fastapi import FastAPI

    from zsrec_ray.models.checkpoint import Checkpoint
    from zsrec_ray.serving.domains import DomainIndex, DomainStore
    from zsrec_ray.serving.schemas import RecommendRequest

    ck = Checkpoint.load(checkpoint)
    store = DomainStore(storage)
    meta = store.meta(name)
    idx = DomainIndex.load(store, name, meta["current_version"], meta.get("generation"), ck)
    app = FastAPI()

    @app.post("/recommend")
    def recommend(req: RecommendRequest) -> dict:
        return idx.recommend([str(req.user)], req.k, req.exclude_seen)[0]

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.1)
    return server, thread


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="runs/checkpoints/zsrec.pt")
    ap.add_argument("--dataset", default="lastfm")
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    import ray
    from ray import serve

    from zsrec_ray.config import DomainSpec
    from zsrec_ray.data.registry import load_split
    from zsrec_ray.serving.app import ZsrecAPI

    tr = load_split(DomainSpec(dataset=args.dataset)).train
    rows = [{"user": str(tr.user_ids[u]), "item": str(tr.item_ids[i])} for u, i in zip(tr.user, tr.item)]
    users = sorted({r["user"] for r in rows})
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "token").write_text(TOKEN)
        ray.init(num_cpus=2, log_to_driver=False)
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        try:
            settings = {"checkpoint": str(Path(args.checkpoint).resolve()), "storage_dir": tmp,
                        "token_file": f"{tmp}/token", "token_env": "ZSREC_BENCH_UNSET"}
            serve.run(ZsrecAPI.options(num_replicas=args.replicas, ray_actor_options={"num_cpus": 0.5})
                      .bind(settings), name="zsrec", route_prefix="/")
            base = f"http://127.0.0.1:{port}"
            t0 = time.perf_counter()
            r = requests.post(f"{base}/v1/domains", json={"name": "bench", "interactions": rows},
                              headers=AUTH, timeout=300)
            r.raise_for_status()
            while requests.get(f"{base}/v1/domains/bench", headers=AUTH).json()["status"] == "pending":
                time.sleep(0.2)
            ready_s = time.perf_counter() - t0
            served = load(f"{base}/v1/domains/bench/recommend", users, args.requests, args.concurrency, args.k)
            bport = free_port()
            server, thread = bare_app(Path(tmp), args.checkpoint, "bench", bport)
            bare = load(f"http://127.0.0.1:{bport}/recommend", users, args.requests, args.concurrency, args.k)
            server.should_exit = True
            thread.join(10)
        finally:
            serve.shutdown()
            ray.shutdown()
    lines = [f"### Serving /recommend ({time.strftime('%Y-%m-%d %H:%M')}, {machine()}, load average at start "
             f"{load_average()})", "",
             f"`python bench/serve_load.py --dataset {args.dataset} --requests {args.requests} --concurrency "
             f"{args.concurrency} --replicas {args.replicas}` ({len(users):,} users x {tr.n_items:,} items; "
             f"registration -> ready {ready_s:.1f} s for {len(rows):,} interactions sent as JSON)", "",
             "| app | p50 ms | p95 ms | p99 ms | requests/s |", "|---|---:|---:|---:|---:|"]
    for name, m in (("Ray Serve (FastAPI ingress, @serve.batch)", served), ("bare FastAPI + uvicorn", bare)):
        lines.append(f"| {name} | {m['p50']:.1f} | {m['p95']:.1f} | {m['p99']:.1f} | {m['rps']:.1f} |")
    lines.append(f"\nServe / bare: p50 x{served['p50'] / bare['p50']:.2f}, throughput x{served['rps'] / bare['rps']:.2f}.")
    report(lines, save=not args.no_save)


if __name__ == "__main__":
    main()
