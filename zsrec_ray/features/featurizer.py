"""Compute a domain's FeatureSet from its training interactions, with an on-disk cache."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Callable

import numpy as np

from zsrec_ray.config import FeatureConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.errors import ConfigError, DataError
from zsrec_ray.features.activity import Blocks, activity_blocks
from zsrec_ray.features.cooccurrence import cooccurrence_blocks
from zsrec_ray.features.embeddings import node_embeddings
from zsrec_ray.features.featureset import FeatureSet, config_hash
from zsrec_ray.features.interaction import EdgeAssigner, assign_edges, interaction_blocks
from zsrec_ray.files import atomic_dir


def interactions_hash(train: Interactions) -> str:
    """First 16 hex of the sha256 of the distinct training edges and the id-space sizes."""
    x = train.to_csr()
    h = hashlib.sha256(np.array([x.shape[0], x.shape[1]], dtype=np.int64).tobytes())
    h.update(x.indptr.astype(np.int64).tobytes())
    h.update(x.indices.astype(np.int64).tobytes())
    return h.hexdigest()[:16]


def featurize(train: Interactions, config: FeatureConfig, assign: EdgeAssigner = assign_edges) -> FeatureSet:
    """Features of one domain from its training interactions only (the enabled families, in order
    activity, co-occurrence, interaction); ``timings`` records seconds per stage. ``assign`` labels
    the edges with their k-means cluster (distributed runners pass a sharded one)."""
    if not (config.activity or config.cooccurrence or config.interaction):
        raise ConfigError("every feature family is switched off (activity, cooccurrence, interaction)")
    timings: dict[str, float] = {}
    user: Blocks = []
    item: Blocks = []

    def stage(name: str, fn, *args):
        t0 = time.perf_counter()
        result = fn(*args)
        timings[name] = round(time.perf_counter() - t0, 4)
        return result

    if config.activity:
        u, i = stage("activity", activity_blocks, train, config)
        user += u
        item += i
    user_emb = item_emb = None
    if config.cooccurrence or config.interaction:
        # One embedding computation serves both families.
        user_emb, item_emb = stage(f"embeddings_{config.backend}", node_embeddings, train, config)
        if config.cooccurrence:
            u, i = stage("cooccurrence", cooccurrence_blocks, train, user_emb, item_emb, config)
            user += u
            item += i
        if config.interaction:
            u, i = stage("interaction", interaction_blocks, train, user_emb, item_emb, config, assign)
            user += u
            item += i
    timings["total"] = round(sum(timings.values()), 4)
    cfg = config.model_dump()
    return FeatureSet(
        domain=train.name,
        user=_concat(user, train.n_users), item=_concat(item, train.n_items),
        user_blocks=[(n, b.shape[1]) for n, b in user], item_blocks=[(n, b.shape[1]) for n, b in item],
        user_emb=user_emb, item_emb=item_emb, config=cfg, config_hash=config_hash(cfg),
        timings=timings, data_hash=interactions_hash(train))


def _concat(blocks: Blocks, n: int) -> np.ndarray:
    if not blocks:
        return np.zeros((n, 0), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate([b for _, b in blocks], axis=1), dtype=np.float32)


def feature_cache_key(dataset: str, data_key: str, config: FeatureConfig | dict) -> str:
    """Directory name for a domain's features: ``<dataset>-<data hash 8>-<config hash 16>``.

    ``data_key`` identifies the training interactions the features come from (callers pass
    :func:`interactions_hash`).
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset).strip("._") or "domain"
    data = hashlib.sha256(data_key.encode()).hexdigest()[:8]
    return f"{safe}-{data}-{config_hash(config)}"


def caching_featurizer(cache_dir: Path) -> Callable[[Interactions, FeatureConfig], FeatureSet]:
    """A featurize function that stores each (interactions, config) FeatureSet once under ``cache_dir``."""
    def fn(graph: Interactions, config: FeatureConfig) -> FeatureSet:
        key = feature_cache_key(graph.name, interactions_hash(graph), config)
        return cached_featurize(graph, config, cache_dir, key)
    return fn


def cached_featurize(train: Interactions, config: FeatureConfig, cache_dir: str | Path, key: str,
                     compute: Callable[[Interactions, FeatureConfig], FeatureSet] | None = None,
                     force: bool = False) -> FeatureSet:
    """Load ``cache_dir/key`` if it holds a valid FeatureSet with this config (and these training
    interactions) and ``force`` is off; otherwise compute it (``compute``, default :func:`featurize`)
    and save it atomically (temp dir in ``cache_dir``, then rename). Processes asking for the same
    key wait on a lock file instead of computing it twice (e.g. concurrent Tune trials)."""
    from filelock import FileLock

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_dir / f".{key}.lock")):
        return _featurize_locked(train, config, cache_dir, key, compute, force)


def _featurize_locked(train: Interactions, config: FeatureConfig, cache_dir: Path, key: str,
                      compute: Callable[[Interactions, FeatureConfig], FeatureSet] | None, force: bool) -> FeatureSet:
    target = cache_dir / key
    want_cfg, want_data = config_hash(config), interactions_hash(train)
    cached = None if force else load_valid(target, want_cfg, want_data)
    if cached is not None:
        return cached
    fs = (compute or featurize)(train, config)
    saved = False
    try:
        with atomic_dir(target) as tmp:  # replaces a stale or invalid entry
            fs.save(tmp)
            saved = True
    except OSError:
        # The final rename failed: another process won the race; keep its entry if it is valid.
        if not saved or load_valid(target, want_cfg, want_data) is None:
            raise
    return fs


def load_valid(directory: Path, cfg_hash: str, data_hash: str) -> FeatureSet | None:
    """The FeatureSet in ``directory`` if it is complete and matches both hashes, else None."""
    if not (directory / "manifest.json").is_file():
        return None
    try:
        fs = FeatureSet.load(directory)
    except DataError:
        return None
    if fs.config_hash != cfg_hash or fs.data_hash != data_hash:
        return None
    return fs
