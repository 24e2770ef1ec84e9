"""Benchmark: /recommend under load, Ray Serve app vs the same scoring in a bare FastAPI app.

Starts the Serve app on an embedded local Ray, registers a real domain (a dataset's training
split, sent as JSON) and times registration -> ready; then sends N recommendation requests for
random known users at concurrency C and reports p50/p95/p99 latency and requests/s. The load
generator is one asyncio process (aiohttp, one keep-alive connection per concurrent client), so
it never shares an interpreter lock with what it measures. Measured in the same run:
- the same scoring (the same DomainIndex, loaded from the app's storage) behind a bare FastAPI +
  uvicorn app in its own process, without Serve;
- Serve's own ceiling here: a FastAPI ingress deployment that answers a constant, through the
  same proxy and router.
Results are appended to docs/BENCHMARKS.md.

    python bench/serve_load.py --dataset lastfm --requests 2000 --concurrency 16
"""


import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

from _common import free_port, load_average, machine, report

TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _load_worker(url: str, picks: list[str], concurrency: int, k: int, out) -> None:
    """In a child process: send ``picks`` at ``concurrency`` (after 50 warm-up requests); put the
    latencies (s) and the wall time on ``out``."""
    import asyncio

    import aiohttp

    async def run() -> tuple[list[float], float]:
        conn = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=conn, headers=AUTH) as s:
            async def one(u: str) -> float:
                t0 = time.perf_counter()
                async with s.post(url, json={"user": u, "k": k}) as r:
                    await r.read()
                    r.raise_for_status()
                return time.perf_counter() - t0

            for u in picks[:50]:
                await one(u)
            queue = list(reversed(picks))
            lat: list[float] = []

            async def client() -> None:
                while queue:
                    lat.append(await one(queue.pop()))

            t0 = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            return lat, time.perf_counter() - t0

    out.put(asyncio.run(run()))


def load(url: str, users: list[str], n: int, concurrency: int, k: int) -> dict:
    rng = np.random.default_rng(0)
    picks = [users[i] for i in rng.integers(0, len(users), n)]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_load_worker, args=(url, picks, concurrency, k, out))
    proc.start()
    lat, wall = out.get()
    proc.join()
    lat = sorted(lat)
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000  # noqa: E731
    return {"p50": q(0.50), "p95": q(0.95), "p99": q(0.99), "rps": n / wall}


def _bare_worker(storage: str, checkpoint: str, name: str, port: int, candidates: int | None) -> None:
    """In a child process: the same DomainIndex scoring behind plain FastAPI + uvicorn (no Serve,
    no batching)."""
    import uvicorn
    from fastapi import FastAPI

    from zsrec_ray.models.checkpoint import Checkpoint
    from zsrec_ray.serving.domains import DomainIndex, DomainStore
    from zsrec_ray.serving.schemas import RecommendRequest

    ck = Checkpoint.load(checkpoint)
    store = DomainStore(Path(storage))
    meta = store.meta(name)
    idx = DomainIndex.load(store, name, meta["current_version"], meta.get("generation"), ck, candidates)
    app = FastAPI()

    @app.post("/recommend")
    def recommend(req: RecommendRequest) -> dict:
        return idx.recommend([str(req.user)], req.k, req.exclude_seen)[0]

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def bare_app(storage: Path, checkpoint: str, name: str, port: int, candidates: int | None):
    proc = mp.get_context("spawn").Process(target=_bare_worker, args=(str(storage), checkpoint, name, port, candidates),
                                           daemon=True)
    proc.start()
    for _ in range(600):
        try:
            requests.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("the bare app did not start")


def echo_deployment():
    """A FastAPI ingress deployment answering a constant: what Serve's proxy and router cost alone."""
    from fastapi import FastAPI
    from ray import serve

    api = FastAPI()

    @serve.deployment(max_ongoing_requests=64)
    @serve.ingress(api)
    class Echo:
        @api.post("/recommend")
        def recommend(self, req: dict) -> dict:
            return {"user": req.get("user"), "items": []}

    return Echo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="zsrec-base")
    ap.add_argument("--dataset", default="lastfm")
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--candidates", type=int, help="two-stage ranking with this many candidates (default: every item)")
    ap.add_argument("--no-access-log", action="store_true", help="Serve's per-request access log off (proxy and replicas)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    when, load = time.strftime('%Y-%m-%d %H:%M'), load_average()
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
        ray.init(address="local", num_cpus=2, log_to_driver=False)
        port = free_port()
        logging = {"enable_access_log": False} if args.no_access_log else None
        serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config=logging)
        try:
            settings = {"checkpoint": args.checkpoint, "storage_dir": tmp, "candidates": args.candidates,
                        "token_file": f"{tmp}/token", "token_env": "ZSREC_BENCH_UNSET"}
            serve.run(ZsrecAPI.options(num_replicas=args.replicas, ray_actor_options={"num_cpus": 0.5})
                      .bind(settings), name="zsrec", route_prefix="/", logging_config=logging)
            base = f"http://127.0.0.1:{port}"
            t0 = time.perf_counter()
            r = requests.post(f"{base}/v1/domains", json={"name": "bench", "interactions": rows},
                              headers=AUTH, timeout=300)
            r.raise_for_status()
            while requests.get(f"{base}/v1/domains/bench", headers=AUTH).json()["status"] == "pending":
                time.sleep(0.2)
            ready_s = time.perf_counter() - t0
            served = load(f"{base}/v1/domains/bench/recommend", users, args.requests, args.concurrency, args.k)
            serve.run(echo_deployment().options(ray_actor_options={"num_cpus": 0.5}).bind(), name="echo",
                      route_prefix="/echo", logging_config=logging)
            echo = load(f"{base}/echo/recommend", users, args.requests, args.concurrency, args.k)
            serve.delete("echo")
            bport = free_port()
            proc = bare_app(Path(tmp), args.checkpoint, "bench", bport, args.candidates)
            bare = load(f"http://127.0.0.1:{bport}/recommend", users, args.requests, args.concurrency, args.k)
            proc.terminate()
            proc.join(10)
        finally:
            serve.shutdown()
            ray.shutdown()
    lines = [f"### Serving /recommend ({when}, {machine()}, load average at start "
             f"{load})", "",
             f"`python bench/serve_load.py --dataset {args.dataset} --requests {args.requests} --concurrency "
             f"{args.concurrency} --replicas {args.replicas}"
             f"{f' --candidates {args.candidates}' if args.candidates else ''}"
             f"{' --no-access-log' if args.no_access_log else ''}` ({len(users):,} users x {tr.n_items:,} items; "
             f"registration -> ready {ready_s:.1f} s for {len(rows):,} interactions sent as JSON)", "",
             "| app | p50 ms | p95 ms | p99 ms | requests/s |", "|---|---:|---:|---:|---:|"]
    for name, m in (("Ray Serve (FastAPI ingress, @serve.batch)", served), ("bare FastAPI + uvicorn, own process", bare),
                    ("Serve ceiling: an ingress answering a constant", echo)):
        lines.append(f"| {name} | {m['p50']:.1f} | {m['p95']:.1f} | {m['p99']:.1f} | {m['rps']:.1f} |")
    lines.append(f"\nServe / bare: p50 x{served['p50'] / bare['p50']:.2f}, throughput x{served['rps'] / bare['rps']:.2f}.")
    report(lines, save=not args.no_save)


if __name__ == "__main__":
    main()
