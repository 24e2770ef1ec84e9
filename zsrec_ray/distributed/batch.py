"""Ray Data batch inference: blocks of users over an actor pool that fits the domain once per actor.

The plan (checks, manifest, which blocks are missing) and the block writer are plain Python in
:mod:`zsrec_ray.experiments.batch`; this module only spreads the missing blocks over actors.
"""

from __future__ import annotations

import time

import numpy as np
import ray

from zsrec_ray.experiments.batch import BatchJob, BlockWriter, plan


class _PoolWriter:
    """A Ray Data actor: one fitted domain, many blocks."""

    def __init__(self, job: BatchJob):
        self.writer = BlockWriter(job)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [self.writer.write(int(b)) for b in batch["block"]]
        node = ray.get_runtime_context().get_node_id()
        return {"block": np.asarray(batch["block"]), "rows": np.asarray(rows, dtype=np.int64),
                "node": np.asarray([node] * len(rows))}


def batch_recommend(job: BatchJob, overwrite: bool = False, actors: int = 1, cpus_per_actor: float = 1.0,
                    planned: tuple[dict, list[int]] | None = None) -> dict:
    """Write every user's top k under ``job.output`` (resuming a killed run); needs Ray initialised.
    ``planned`` is :func:`plan`'s answer for this (resolved) job when the caller already checked it."""
    job = job.resolved()
    t0 = time.perf_counter()
    manifest, todo = planned if planned is not None else plan(job, overwrite)
    rows, nodes = 0, set()
    if todo:
        ds = ray.data.from_items([{"block": b} for b in todo], override_num_blocks=len(todo))
        out = ds.map_batches(_PoolWriter, fn_constructor_kwargs={"job": job}, batch_size=1,
                             compute=ray.data.ActorPoolStrategy(size=max(1, min(actors, len(todo)))),
                             num_cpus=cpus_per_actor).take_all()
        rows = int(sum(r["rows"] for r in out))
        nodes = {str(r["node"]) for r in out}
    return {"step": "recommend", "output": job.output, "blocks": manifest["blocks"], "written": len(todo),
            "nodes": len(nodes),
            "resumed_past": manifest["blocks"] - len(todo), "rows_written": rows, "users": manifest["users"],
            "k": job.k, "wall_s": time.perf_counter() - t0}
