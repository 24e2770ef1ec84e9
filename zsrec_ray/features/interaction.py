"""Interaction features: k-means clusters of edge (Hadamard) embeddings, binned by size and density."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from zsrec_ray.config import FeatureConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.features.activity import Blocks, row_normalise
from zsrec_ray.features.cooccurrence import cluster_value_bins, fit_kmeans

#: Edges embedded and assigned per chunk (bounds memory to CHUNK x dim floats).
CHUNK = 65_536


#: Assigns every edge (user[e], item[e]) to a cluster of a fitted k-means: (model, user, item,
#: user_emb, item_emb) -> labels. Distributed runners substitute a sharded version.
EdgeAssigner = Callable[[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def assign_edges(model: Any, user: np.ndarray, item: np.ndarray, user_emb: np.ndarray,
                 item_emb: np.ndarray) -> np.ndarray:
    """Nearest-centroid label (``model.predict``, a fitted scikit-learn k-means) of each edge's Hadamard embedding, in chunks of :data:`CHUNK` edges."""
    labels = np.empty(len(user), dtype=np.int64)
    for start in range(0, len(user), CHUNK):
        sl = slice(start, start + CHUNK)
        emb = (user_emb[user[sl]] * item_emb[item[sl]]).astype(np.float32)
        labels[sl] = model.predict(emb)
    return labels


def edge_clusters(user: np.ndarray, item: np.ndarray, user_emb: np.ndarray, item_emb: np.ndarray,
                  k: int, sample: int, seed: int, assign: EdgeAssigner = assign_edges) -> np.ndarray:
    """Cluster label of every edge: k-means fitted on a seeded sample of at most ``sample`` edges
    (Hadamard products of endpoint embeddings), then applied to all edges by ``assign``."""
    n = len(user)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    fit_idx = np.sort(rng.choice(n, sample, replace=False)) if n > sample else np.arange(n)
    model, _ = fit_kmeans(user_emb[user[fit_idx]] * item_emb[item[fit_idx]], k, seed)
    return assign(model, user, item, user_emb, item_emb)


def _distinct_per_cluster(labels: np.ndarray, nodes: np.ndarray, k: int) -> np.ndarray:
    """Number of distinct ``nodes`` among the edges of each cluster."""
    if len(nodes) == 0:
        return np.zeros(k, dtype=np.int64)
    base = int(nodes.max()) + 1
    keys = np.unique(labels * base + nodes)  # one key per distinct (cluster, node)
    return np.bincount(keys // base, minlength=k)


def interaction_blocks(train: Interactions, user_emb: np.ndarray, item_emb: np.ndarray,
                       config: FeatureConfig, assign: EdgeAssigner = assign_edges) -> tuple[Blocks, Blocks]:
    """``inter_size`` and ``inter_density``: a node's incident edges as a normalised histogram over
    the B_c quantile bins of their clusters' size (edges) and density (edges / (distinct users x
    distinct items)). Each block sums to 1; isolated nodes get all-zero blocks.
    """
    x = train.to_csr().tocoo()
    user, item = x.row.astype(np.int64), x.col.astype(np.int64)
    labels = edge_clusters(user, item, user_emb, item_emb, config.edge_clusters, config.edge_sample, config.seed,
                           assign)
    k = int(labels.max()) + 1 if len(labels) else 0
    size = np.bincount(labels, minlength=k).astype(np.float64)
    pairs = (_distinct_per_cluster(labels, user, k) * _distinct_per_cluster(labels, item, k)).astype(np.float64)
    density = np.divide(size, pairs, out=np.zeros(k), where=pairs > 0)
    b = config.cluster_bins
    present = size > 0
    size_bin, dens_bin = cluster_value_bins(size, present, b), cluster_value_bins(density, present, b)

    def histogram(nodes: np.ndarray, n: int, edge_bin: np.ndarray) -> np.ndarray:
        # Count incident edges per (node, bin), then normalise each node's row.
        counts = np.bincount(nodes * b + edge_bin, minlength=n * b).reshape(n, b)
        return row_normalise(counts)

    eu_size, eu_dens = size_bin[labels], dens_bin[labels]
    user_blocks = [("inter_size", histogram(user, train.n_users, eu_size)),
                   ("inter_density", histogram(user, train.n_users, eu_dens))]
    item_blocks = [("inter_size", histogram(item, train.n_items, eu_size)),
                   ("inter_density", histogram(item, train.n_items, eu_dens))]
    return user_blocks, item_blocks
