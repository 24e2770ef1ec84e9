"""Preprocessing per METHOD.md: drop duplicate pairs, apply the implicit-feedback rule, iterative k-core."""

from __future__ import annotations

import numpy as np

from zsrec_ray.data.interactions import Interactions
from zsrec_ray.errors import DataError


def drop_duplicates(data: Interactions) -> Interactions:
    """Keep one row per (user, item): the earliest when timestamps exist, else the first seen."""
    order = np.arange(len(data))
    if data.timestamp is not None:
        order = np.lexsort((order, data.timestamp))
    key = data.user[order] * np.int64(data.n_items) + data.item[order]
    _, first = np.unique(key, return_index=True)
    keep = np.sort(order[first])
    return data.subset(keep)


def apply_implicit_rule(data: Interactions, min_rating: float | None) -> Interactions:
    """Every observed pair is positive (``min_rating=None``), or only rows with rating >= ``min_rating``."""
    if min_rating is None:
        return data
    if data.rating is None:
        raise DataError(f"{data.name}: min_rating={min_rating} was set but the data has no rating column")
    return data.subset(data.rating >= min_rating)


def k_core(data: Interactions, k: int) -> Interactions:
    """Iteratively drop users and items with fewer than ``k`` interactions until none remain."""
    if k <= 1:
        return data
    keep = np.ones(len(data), dtype=bool)
    while True:
        u_deg = np.bincount(data.user[keep], minlength=data.n_users)
        i_deg = np.bincount(data.item[keep], minlength=data.n_items)
        new_keep = keep & (u_deg[data.user] >= k) & (i_deg[data.item] >= k)
        if new_keep.sum() == keep.sum():
            break
        keep = new_keep
    return data.subset(keep)


def preprocess(data: Interactions, *, k: int = 5, min_rating: float | None = None) -> Interactions:
    """Implicit rule, dedup, k-core, then contiguous re-indexing. Raises if nothing is left."""
    out = drop_duplicates(apply_implicit_rule(data, min_rating))
    out = k_core(out, k).reindexed()
    if len(out) == 0 or out.n_users == 0 or out.n_items == 0:
        raise DataError(
            f"{data.name}: empty after filtering (min_rating={min_rating}, {k}-core): "
            f"{len(data)} rows in, {len(out)} left"
        )
    return out
