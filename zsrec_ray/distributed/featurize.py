"""Ray Data featurization: many domains in parallel into one feature store.

Domains run one per task (``Dataset.map`` with ``num_cpus`` per task, so two domains share a
2-core machine side by side). A domain with more training edges than ``shard_edges`` is
featurized from the driver instead, with its edge-level work (assigning every edge embedding to
its k-means cluster) sharded over the cluster with ``map_batches``. The science lives in
:func:`zsrec_ray.features.store.featurize_domain`; this module only decides where it runs.
"""

from __future__ import annotations

import logging
import traceback
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import ray

from zsrec_ray.config import DomainSpec, FeatureConfig
from zsrec_ray.data.registry import load_split
from zsrec_ray.features.featurizer import featurize
from zsrec_ray.features.interaction import assign_edges
from zsrec_ray.features.store import FeatureStore, featurize_domain

log = logging.getLogger(__name__)

#: Edges per ``map_batches`` batch when assigning edge clusters of a large domain.
EDGE_BATCH = 131_072


def _featurize_row(row: dict[str, Any], features_json: str, store_uri: str, graph_frac: float, seed: int,
                   data_dir: str | None, force: bool) -> dict[str, Any]:
    """One domain in a Ray Data task; an error becomes a row with its reason, never lost work elsewhere."""
    spec = DomainSpec.model_validate_json(row["spec"])
    try:
        m = featurize_domain(spec, FeatureConfig.model_validate_json(features_json), FeatureStore(store_uri),
                             graph_frac, seed, data_dir, force)
        return {"domain": spec.dataset, "status": "skipped" if m["skipped"] else "ok", "error": "",
                "seconds": float(m["timings"]["total_s"]), "manifest": _json(m)}
    except Exception as e:  # reported per domain
        log.debug("featurizing %s failed:\n%s", spec.dataset, traceback.format_exc())
        return {"domain": spec.dataset, "status": "failed", "error": f"{type(e).__name__}: {e}",
                "seconds": 0.0, "manifest": "{}"}


def _json(d: dict) -> str:
    import json

    return json.dumps(d, default=float)


def _assign_batch(batch: dict[str, np.ndarray], model, user, item, user_emb, item_emb) -> dict[str, np.ndarray]:
    ids = batch["id"]
    return {"id": ids, "label": assign_edges(model, user[ids], item[ids], user_emb, item_emb)}


def ray_assign_edges(model, user: np.ndarray, item: np.ndarray, user_emb: np.ndarray,
                     item_emb: np.ndarray) -> np.ndarray:
    """:func:`assign_edges` sharded over Ray Data ``map_batches`` (same labels, any number of workers)."""
    n = len(user)
    fn = partial(_assign_batch, model=model, user=user, item=item, user_emb=user_emb, item_emb=item_emb)
    ds = ray.data.range(n, override_num_blocks=max(1, -(-n // EDGE_BATCH))).map_batches(
        fn, batch_size=EDGE_BATCH, batch_format="numpy")
    labels = np.empty(n, dtype=np.int64)
    for b in ds.iter_batches(batch_size=None, batch_format="numpy"):
        labels[b["id"]] = b["label"]
    return labels


def featurize_domains(specs: list[DomainSpec], features: FeatureConfig, store_uri: str, graph_frac: float,
                      seed: int = 0, data_dir: str | Path | None = None, force: bool = False,
                      cpus_per_domain: float = 1.0, shard_edges: int = 500_000) -> list[dict[str, Any]]:
    """Featurize every domain into the store at ``store_uri``; one result row per domain, in order.

    Rows: ``domain``, ``status`` (ok | skipped | failed), ``error`` (reason when failed),
    ``seconds`` and the domain ``manifest`` (a dict). Needs Ray initialised.
    """
    import json

    data_dir = str(data_dir) if data_dir else None
    small, large = [], []
    for spec in specs:
        (large if _train_edges(spec, data_dir) > shard_edges else small).append(spec)
    rows: list[dict[str, Any]] = []
    if small:
        fn = partial(_featurize_row, features_json=features.model_dump_json(), store_uri=store_uri,
                     graph_frac=graph_frac, seed=seed, data_dir=data_dir, force=force)
        ds = ray.data.from_items([{"spec": s.model_dump_json()} for s in small],
                                 override_num_blocks=len(small))
        rows += ds.map(fn, num_cpus=cpus_per_domain).take_all()
    store = FeatureStore(store_uri)
    for spec in large:  # edge-level work sharded over the cluster from the driver
        try:
            m = featurize_domain(spec, features, store, graph_frac, seed, data_dir, force,
                                 compute=lambda g, c: featurize(g, c, assign=ray_assign_edges))
            rows.append({"domain": spec.dataset, "status": "skipped" if m["skipped"] else "ok", "error": "",
                         "seconds": float(m["timings"]["total_s"]), "manifest": _json(m)})
        except Exception as e:
            rows.append({"domain": spec.dataset, "status": "failed", "error": f"{type(e).__name__}: {e}",
                         "seconds": 0.0, "manifest": "{}"})
    by_name = {r["domain"]: {**r, "manifest": json.loads(r["manifest"])} for r in rows}
    return [by_name[s.dataset] for s in specs]


def _train_edges(spec: DomainSpec, data_dir: str | None) -> int:
    """Training edges of a domain, or 0 when it cannot be loaded (its task then reports why)."""
    try:
        return len(load_split(spec, data_dir).train)
    except Exception:
        return 0
