"""node2vec backend (pecanpy). Kept in one module: each process pays numba's JIT warm-up once.

Graphs and walks are tiny; every pecanpy graph still compiles its walk closure (a few seconds).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import planted_interactions
from zsrec_ray.config import FeatureConfig, Node2VecConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.features import featurize, node2vec_embeddings
from zsrec_ray.features.embeddings import bipartite_adjacency

N2V = Node2VecConfig(dim=8, walk_length=10, num_walks=2, window=3, workers=1)
CFG = FeatureConfig(backend="node2vec", node2vec=N2V, node_clusters=6, edge_clusters=6, cluster_bins=3)


@pytest.fixture(scope="module")
def domain() -> Interactions:
    d = planted_interactions(n_users=60, n_items=30, n_groups=3, per_user=6)
    # Two isolated users and one isolated item.
    uids = np.concatenate([d.user_ids.astype(str), ["zu0", "zu1"]])
    iids = np.concatenate([d.item_ids.astype(str), ["zi0"]])
    return Interactions(d.user, d.item, uids, iids, name="tiny")


def test_bipartite_adjacency(domain):
    adj = bipartite_adjacency(domain)
    n = domain.n_users + domain.n_items
    assert adj.shape == (n, n) and (adj != adj.T).nnz == 0
    assert adj.nnz == 2 * domain.to_csr().nnz
    assert adj[: domain.n_users, : domain.n_users].nnz == 0  # bipartite
    assert adj.has_sorted_indices


def test_first_order_features_are_deterministic(domain):
    # p = q = 1: FirstOrderUnweighted. workers=1 makes walks and Word2Vec reproducible.
    a, b = featurize(domain, CFG), featurize(domain, CFG)
    np.testing.assert_array_equal(a.user_emb, b.user_emb)
    np.testing.assert_array_equal(a.item_emb, b.item_emb)
    np.testing.assert_array_equal(a.user, b.user)
    np.testing.assert_array_equal(a.item, b.item)
    assert a.user_emb.shape == (62, 8) and a.item_emb.dtype == np.float32
    assert "embeddings_node2vec" in a.timings
    # Isolated nodes: zero embeddings and all-zero feature rows; the others are embedded.
    np.testing.assert_array_equal(a.user_emb[60:], 0)
    np.testing.assert_array_equal(a.item_emb[30:], 0)
    np.testing.assert_array_equal(a.user[60:], 0)
    assert (np.abs(a.user_emb[:60]).sum(1) > 0).all()
    np.testing.assert_array_equal(a.block("user", "cooc_size")[:60].sum(1), 1)
    np.testing.assert_allclose(a.block("item", "inter_density")[:30].sum(1), 1, atol=1e-5)
    # Same layout as the spectral backend.
    assert a.schema() == featurize(domain, CFG.model_copy(update={"backend": "spectral"})).schema()


def test_second_order_walks(domain):
    # p != q: SparseOTF.
    cfg = N2V.model_copy(update={"p": 0.5, "q": 2.0})
    u, i = node2vec_embeddings(domain, cfg, seed=0)
    assert u.shape == (62, 8) and i.shape == (31, 8)
    np.testing.assert_array_equal(u[60:], 0)
    np.testing.assert_array_equal(i[30:], 0)
    assert np.isfinite(u).all() and (np.abs(i[:30]).sum(1) > 0).all()
