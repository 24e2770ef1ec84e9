"""Co-occurrence features: k-means clusters of node embeddings, binned by size and density.

Shared helpers for the interaction family live here too: seeded k-means and cluster binning.
"""

from __future__ import annotations

import warnings

import numpy as np

from zsrec_ray.config import FeatureConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.features.activity import Blocks, one_hot, percentile_bins

#: Above this many points k-means switches to MiniBatchKMeans.
MINIBATCH_ABOVE = 100_000


def fit_kmeans(x: np.ndarray, k: int, seed: int):
    """Seeded k-means with ``min(k, len(x))`` clusters (MiniBatchKMeans for large inputs).

    Returns ``(model, labels of x)``. The points are fitted in a canonical order (sorted by their
    projection on a seeded random direction), so the result does not depend on the order of the
    rows, i.e. on the domain's id numbering.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning

    x = np.ascontiguousarray(x, dtype=np.float32)
    k = max(1, min(k, len(x)))
    direction = np.random.default_rng(seed).standard_normal(x.shape[1]).astype(np.float32)
    order = np.argsort(x @ direction, kind="stable")
    if len(x) > MINIBATCH_ABOVE:
        model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
    else:
        model = KMeans(n_clusters=k, random_state=seed, n_init=1)
    with warnings.catch_warnings():
        # Fewer distinct points than clusters: some clusters stay empty, which binning allows.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x[order])
    labels = np.empty(len(x), dtype=np.int64)
    labels[order] = model.labels_
    return model, labels


def cluster_value_bins(values: np.ndarray, present: np.ndarray, n_bins: int) -> np.ndarray:
    """Quantile bin of each cluster's value among the ``present`` (non-empty) clusters; -1 otherwise."""
    bins = np.full(len(values), -1, dtype=np.int64)
    bins[present] = percentile_bins(values[present], n_bins)
    return bins


def node_clusters(train: Interactions, user_emb: np.ndarray, item_emb: np.ndarray,
                  k: int, seed: int) -> np.ndarray:
    """Cluster label of each node (users then items) from k-means on all non-isolated nodes; -1 for isolated ones."""
    x = train.to_csr()
    degree = np.concatenate([np.diff(x.indptr), np.bincount(x.indices, minlength=x.shape[1])])
    labels = np.full(len(degree), -1, dtype=np.int64)
    active = np.flatnonzero(degree > 0)
    if len(active):
        emb = np.concatenate([user_emb, item_emb])[active]
        labels[active] = fit_kmeans(emb, k, seed)[1]
    return labels


def cooccurrence_blocks(train: Interactions, user_emb: np.ndarray, item_emb: np.ndarray,
                        config: FeatureConfig) -> tuple[Blocks, Blocks]:
    """``cooc_size`` and ``cooc_density``: one-hot quantile bin (B_c) of the node's cluster.

    Cluster size = members (users and items); density = training edges with both ends in the
    cluster / (its users x its items), 0 when either is 0. Bins are over non-empty clusters.
    Isolated nodes get all-zero blocks.
    """
    x = train.to_csr().tocoo()
    n_users = train.n_users
    labels = node_clusters(train, user_emb, item_emb, config.node_clusters, config.seed)
    k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    ul, il = labels[:n_users], labels[n_users:]
    users_in = np.bincount(ul[ul >= 0], minlength=k)
    items_in = np.bincount(il[il >= 0], minlength=k)
    same = ul[x.row] == il[x.col]
    inside = np.bincount(ul[x.row][same], minlength=k)
    size = (users_in + items_in).astype(np.float64)
    pairs = (users_in * items_in).astype(np.float64)
    density = np.divide(inside, pairs, out=np.zeros(k), where=pairs > 0)
    b = config.cluster_bins
    present = size > 0
    size_bin, dens_bin = cluster_value_bins(size, present, b), cluster_value_bins(density, present, b)

    def blocks(lab: np.ndarray) -> Blocks:
        mask = lab >= 0
        safe = np.where(mask, lab, 0)
        if k == 0:  # no edges at all: every node is isolated
            return [("cooc_size", np.zeros((len(lab), b), np.float32)),
                    ("cooc_density", np.zeros((len(lab), b), np.float32))]
        return [("cooc_size", one_hot(size_bin[safe], b, mask)),
                ("cooc_density", one_hot(dens_bin[safe], b, mask))]

    return blocks(ul), blocks(il)
