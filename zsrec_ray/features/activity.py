"""Activity features: within-domain degree percentile bins, and the mainstream histogram.

Shared helpers for the other families live here too: rank-based percentile bins, one-hot and
row-normalised histograms.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from zsrec_ray.config import FeatureConfig
from zsrec_ray.data.interactions import Interactions

#: Named feature blocks of one side, in order: ``[(name, array (n, size)), ...]``.
Blocks = list[tuple[str, np.ndarray]]


def percentile_bins(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-frequency bin of each value: ``floor(pct * n_bins)`` with ``pct = (rank - 1) / n``.

    ``rank`` is the average rank (1..n) so tied values always share a bin (at their mean rank);
    with distinct values the bin counts differ by at most one. The result depends only on the
    multiset of values, not on their order. Empty input gives an empty array.
    """
    values = np.asarray(values)
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    pct = (rankdata(values, method="average") - 1.0) / n
    return np.clip(np.floor(pct * n_bins).astype(np.int64), 0, n_bins - 1)


def one_hot(bins: np.ndarray, n_bins: int, mask: np.ndarray | None = None) -> np.ndarray:
    """``(len(bins), n_bins)`` float32 one-hot; rows where ``mask`` is False stay all-zero."""
    out = np.zeros((len(bins), n_bins), dtype=np.float32)
    rows = np.arange(len(bins)) if mask is None else np.flatnonzero(mask)
    out[rows, np.asarray(bins)[rows]] = 1.0
    return out


def row_normalise(counts: np.ndarray) -> np.ndarray:
    """Rows divided by their sum (all-zero rows stay zero), float32."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0).astype(np.float32)


def degree_bins(degree: np.ndarray, n_bins: int) -> np.ndarray:
    """Percentile bin of each degree among the nodes with degree > 0; -1 for isolated nodes.

    Isolated nodes (ids that only occur outside the training interactions) are left out of the
    ranking, so the features never depend on which ids exist in held-out data.
    """
    bins = np.full(len(degree), -1, dtype=np.int64)
    active = degree > 0
    bins[active] = percentile_bins(degree[active], n_bins)
    return bins


def activity_blocks(train: Interactions, config: FeatureConfig) -> tuple[Blocks, Blocks]:
    """``activity`` (one-hot of B_a degree bins) and, if ``config.mainstream``, ``mainstream``
    (normalised histogram of a node's neighbours over the other side's activity bins) per side.

    Isolated nodes get all-zero blocks.
    """
    x = train.to_csr()
    n_bins = config.activity_bins
    du = np.diff(x.indptr)
    di = np.bincount(x.indices, minlength=x.shape[1])
    ub, ib = degree_bins(du, n_bins), degree_bins(di, n_bins)
    u_onehot, i_onehot = one_hot(ub, n_bins, ub >= 0), one_hot(ib, n_bins, ib >= 0)
    user: Blocks = [("activity", u_onehot)]
    item: Blocks = [("activity", i_onehot)]
    if config.mainstream:
        xs = sp.csr_matrix(x, dtype=np.float64)
        user.append(("mainstream", row_normalise(xs @ i_onehot.astype(np.float64))))
        item.append(("mainstream", row_normalise(xs.T @ u_onehot.astype(np.float64))))
    return user, item
