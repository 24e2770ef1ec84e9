"""The batch steps on Ray, one function each: featurize, pretrain, tune, evaluate, and all of them.

Each takes the one :class:`~zsrec_ray.config.ZeroShotConfig` (its ``ray`` section says where and
how) and returns a JSON-ready dict; jobs and the CLI print it. They need Ray initialised
(:func:`~zsrec_ray.distributed.runtime.ensure_ray`).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from zsrec_ray.config import ZeroShotConfig, domain_label
from zsrec_ray.data.registry import load_domains
from zsrec_ray.features.store import FeatureStore
from zsrec_ray.files import absolute_uri


def _store_uri(cfg: ZeroShotConfig) -> str:
    return absolute_uri(cfg.ray.store)


def featurize_step(cfg: ZeroShotConfig, with_target: bool = True) -> dict[str, Any]:
    """Featurize the sources (training split and feature graph) and the target into the store."""
    from zsrec_ray.distributed.featurize import featurize_domains

    domains = {domain_label(d): d for d in cfg.sources + ([cfg.target] if with_target else [])}
    load_domains(cfg, list(domains.values()))  # every domain loads before any featurization starts
    specs = [cfg.domain_spec(d) for d in domains.values()]
    t0 = time.perf_counter()
    rows = featurize_domains(specs, cfg.features, _store_uri(cfg), cfg.pretrain.graph_frac, cfg.pretrain.seed,
                             cfg.resolved_data_dir(), cfg.ray.force, cfg.ray.cpus_per_domain, cfg.ray.shard_edges)
    return {"step": "featurize", "store": _store_uri(cfg), "domains": rows, "wall_s": time.perf_counter() - t0,
            "failed": [r["domain"] for r in rows if r["status"] == "failed"]}


def run_name(cfg: ZeroShotConfig) -> str:
    """``cfg.ray.run_name``, or ``pretrain-<hash>`` of everything that determines the trained network
    (so the same settings resume the same run and different ones never do)."""
    if cfg.ray.run_name:
        return cfg.ray.run_name
    key = json.dumps({k: cfg.model_dump()[k] for k in ("sources", "preprocess", "split", "features", "pairs",
                                                         "pretrain")} | {"workers": cfg.ray.num_workers},
                     sort_keys=True)
    return "pretrain-" + hashlib.sha256(key.encode()).hexdigest()[:10]


def pretrain_step(cfg: ZeroShotConfig, featurize: bool = True) -> dict[str, Any]:
    """Ray Train pretraining on the sources (with ``featurize``, featurized into the store first
    where missing); writes the final checkpoint to ``cfg.checkpoint``."""
    from zsrec_ray.distributed.train import pretrain_distributed

    if featurize:
        feat = featurize_step(cfg, with_target=False)
        if feat["failed"]:
            return {"step": "pretrain", "featurize": feat, "error": f"featurization failed for {feat['failed']}"}
    r = cfg.ray
    ck, report = pretrain_distributed(cfg, cfg.sources, _store_uri(cfg), r.storage_path, run_name(cfg), r.num_workers,
                                      r.use_gpu, r.max_failures, cpus_per_worker=r.cpus_per_worker)
    path = ck.save(cfg.checkpoint)
    return {"step": "pretrain", "checkpoint": str(path), "sources": cfg.source_labels, "report": report}


def evaluate_step(cfg: ZeroShotConfig, checkpoint: str | None = None) -> dict[str, Any]:
    """Zero-shot test metrics of a checkpoint on the target, beside the baselines fitted on the target."""
    from zsrec_ray.experiments.zeroshot import add_ratios, baseline_row, evaluate_pretrained
    from zsrec_ray.models.checkpoint import Checkpoint

    t0 = time.perf_counter()
    split = load_domains(cfg, [cfg.target])[cfg.target_label]
    ck = Checkpoint.load(checkpoint or cfg.checkpoint)
    rows = [evaluate_pretrained(cfg, ck, split, f"pretrained-{ck.pretrain.model}", FeatureStore(_store_uri(cfg)).featurizer())]
    rows += [baseline_row(cfg, split, b) for b in cfg.compare]
    sources = ck.metadata.get("sources", [])
    label = cfg.target_label
    mode = "in-domain" if sources == [label] else ("zero-shot" if label not in sources else "mixed")
    return {"step": "evaluate", "target": label, "sources": sources, "mode": mode,
            "checkpoint": str(checkpoint or cfg.checkpoint), "rows": add_ratios(rows),
            "wall_s": time.perf_counter() - t0}


def tune_step(cfg: ZeroShotConfig, out_dir: str | Path, resume: bool = True) -> dict[str, Any]:
    """Ray Tune search (leave-one-source-out, ASHA) over the sources; the target is never read."""
    from zsrec_ray.distributed.tune import run_tune

    return {"step": "tune", **run_tune(cfg, out_dir, resume)}


def pipeline(cfg: ZeroShotConfig) -> dict[str, Any]:
    """Featurize (Ray Data) -> pretrain (Ray Train) -> evaluate zero-shot on the target."""
    t0 = time.perf_counter()
    feat = featurize_step(cfg)
    if feat["failed"]:
        return {"step": "pipeline", "featurize": feat, "error": f"featurization failed for {feat['failed']}"}
    pre = pretrain_step(cfg, featurize=False)  # the step above stored every source
    ev = evaluate_step(cfg, pre["checkpoint"])
    return {"step": "pipeline", "featurize": feat, "pretrain": pre, "evaluate": ev, "wall_s": time.perf_counter() - t0}
