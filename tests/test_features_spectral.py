"""Spectral embeddings, co-occurrence and interaction blocks, and featurize (spectral backend)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from conftest import planted_interactions
from zsrec_ray.config import DomainSpec, FeatureConfig, SpectralConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.errors import ConfigError
from zsrec_ray.features import FeatureSet, featurize, spectral_embeddings
from zsrec_ray.features.cooccurrence import fit_kmeans
from zsrec_ray.features.interaction import assign_edges

ONE_HOT = ("activity", "cooc_size", "cooc_density")
HISTOGRAMS = ("mainstream", "inter_size", "inter_density")
#: A small config whose clusters match the planted structure (6 groups).
PLANTED_CFG = FeatureConfig(spectral=SpectralConfig(dim=6, n_iter=10), node_clusters=6, edge_clusters=6,
                            cluster_bins=3, activity_bins=5)
SMALL_CFG = FeatureConfig(spectral=SpectralConfig(dim=16), node_clusters=12, edge_clusters=12, cluster_bins=4)


@pytest.fixture(scope="module")
def planted() -> Interactions:
    return planted_interactions()


def groups(d: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """Planted group of each internal user / item id (users u<k>: k % 6, items i<j>: j // 20)."""
    ug = np.array([int(str(x)[1:]) % 6 for x in d.user_ids])
    ig = np.array([int(str(x)[1:]) // 20 for x in d.item_ids])
    return ug, ig


def with_isolated(d: Interactions, extra_users: int = 3, extra_items: int = 4) -> Interactions:
    """``d`` with ids that have no interactions appended to both sides."""
    uids = np.concatenate([d.user_ids.astype(str), [f"lonely_u{k}" for k in range(extra_users)]])
    iids = np.concatenate([d.item_ids.astype(str), [f"lonely_i{k}" for k in range(extra_items)]])
    return Interactions(d.user, d.item, uids, iids, name=d.name)


def permuted(d: Interactions, seed: int) -> tuple[Interactions, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pu, pi = rng.permutation(d.n_users), rng.permutation(d.n_items)
    uids, iids = np.empty_like(d.user_ids), np.empty_like(d.item_ids)
    uids[pu], iids[pi] = d.user_ids, d.item_ids
    order = rng.permutation(len(d))
    return Interactions(pu[d.user][order], pi[d.item][order], uids, iids, name=d.name), pu, pi


def assert_same(a: FeatureSet, b: FeatureSet) -> None:
    assert a.schema() == b.schema()
    np.testing.assert_array_equal(a.user, b.user)
    np.testing.assert_array_equal(a.item, b.item)
    np.testing.assert_array_equal(a.user_emb, b.user_emb)
    np.testing.assert_array_equal(a.item_emb, b.item_emb)


# ------------------------------------------------------------------------------------ embeddings
def test_spectral_embedding_separates_planted_blocks(planted):
    u, i = spectral_embeddings(planted, SpectralConfig(dim=8), seed=0)
    assert u.shape == (300, 8) and i.shape == (120, 8) and u.dtype == np.float32
    ug, ig = groups(planted)
    labels = KMeans(6, n_init=4, random_state=0).fit_predict(np.concatenate([u, i]))
    assert adjusted_rand_score(ug, labels[:300]) > 0.9
    assert adjusted_rand_score(ig, labels[300:]) > 0.9


def test_spectral_is_deterministic_with_fixed_sign(planted):
    cfg = SpectralConfig(dim=10)
    u1, i1 = spectral_embeddings(planted, cfg, seed=3)
    u2, i2 = spectral_embeddings(planted, cfg, seed=3)
    np.testing.assert_array_equal(u1, u2)
    np.testing.assert_array_equal(i1, i2)
    # Sign convention: the largest-|.| user entry of each component is positive.
    assert (u1[np.abs(u1).argmax(0), np.arange(10)] > 0).all()


def test_spectral_dim_capped_padded_and_isolated_zero(planted):
    tiny = Interactions(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), np.arange(4), np.arange(4))
    u, i = spectral_embeddings(tiny, SpectralConfig(dim=8), seed=0)
    assert u.shape == (4, 8) and i.shape == (4, 8)
    assert np.abs(u[:, 3:]).max() == 0  # rank capped at min(4, 4) - 1 = 3, padded with zeros
    np.testing.assert_array_equal(u[3], 0)  # isolated user
    np.testing.assert_array_equal(i[3], 0)  # isolated item
    u, i = spectral_embeddings(with_isolated(planted), SpectralConfig(dim=8), seed=0)
    np.testing.assert_array_equal(u[-3:], 0)
    np.testing.assert_array_equal(i[-4:], 0)


def test_spectral_embedding_is_permutation_equivariant(planted):
    # With a spectral gap at the chosen rank the embedding is unique (up to the fixed sign).
    cfg = SpectralConfig(dim=6, n_iter=10)
    u, i = spectral_embeddings(planted, cfg, seed=0)
    p, pu, pi = permuted(planted, 1)
    pu_emb, pi_emb = spectral_embeddings(p, cfg, seed=0)
    np.testing.assert_allclose(pu_emb[pu], u, atol=1e-5)
    np.testing.assert_allclose(pi_emb[pi], i, atol=1e-5)


def test_kmeans_ignores_row_order():
    x = np.random.default_rng(0).standard_normal((500, 5)).astype(np.float32)
    _, labels = fit_kmeans(x, 7, seed=1)
    perm = np.random.default_rng(1).permutation(500)
    _, plabels = fit_kmeans(x[perm], 7, seed=1)
    np.testing.assert_array_equal(plabels, labels[perm])


# ------------------------------------------------------------------------------------ featurize
def check_blocks(fs: FeatureSet, isolated_users=(), isolated_items=()) -> None:
    for side, isolated in (("user", isolated_users), ("item", isolated_items)):
        active = np.setdiff1d(np.arange(getattr(fs, side).shape[0]), isolated)
        for name, size in fs._blocks(side):
            b = fs.block(side, name)
            assert b.shape[1] == size
            np.testing.assert_array_equal(b[list(isolated)], 0, err_msg=f"{side} {name}")
            if name in ONE_HOT:
                assert set(np.unique(b)) <= {0.0, 1.0}
                np.testing.assert_array_equal(b[active].sum(1), 1, err_msg=f"{side} {name}")
            else:
                assert name in HISTOGRAMS and (b >= 0).all()
                np.testing.assert_allclose(b[active].sum(1), 1, atol=1e-5, err_msg=f"{side} {name}")


def test_featurize_blocks_are_one_hot_or_histograms(planted):
    d = with_isolated(planted)
    fs = featurize(d, SMALL_CFG)
    assert fs.user.shape == (303, 36) and fs.item.shape == (124, 36) and fs.user.dtype == np.float32
    assert [n for n, _ in fs.user_blocks] == ["activity", "mainstream", "cooc_size", "cooc_density",
                                              "inter_size", "inter_density"]
    check_blocks(fs, isolated_users=[300, 301, 302], isolated_items=[120, 121, 122, 123])
    assert set(fs.timings) == {"activity", "embeddings_spectral", "cooccurrence", "interaction", "total"}
    assert fs.domain == "planted" and fs.config == SMALL_CFG.model_dump()


def test_featurize_is_deterministic(planted):
    assert_same(featurize(planted, SMALL_CFG), featurize(planted, SMALL_CFG))
    other = featurize(planted, SMALL_CFG.model_copy(update={"seed": 1}))
    assert other.config_hash != featurize(planted, SMALL_CFG).config_hash


def test_features_are_permutation_equivariant(planted):
    fs = featurize(planted, PLANTED_CFG)
    for seed in range(2):
        p, pu, pi = permuted(planted, seed)
        pfs = featurize(p, PLANTED_CFG)
        np.testing.assert_array_equal(pfs.user[pu], fs.user)
        np.testing.assert_array_equal(pfs.item[pi], fs.item)


def test_cooccurrence_clusters_follow_planted_groups(planted):
    fs = featurize(planted, PLANTED_CFG.model_copy(update={"interaction": False}))
    ug, _ = groups(planted)
    # Same group -> same cluster -> same size/density bins.
    size = fs.block("user", "cooc_size").argmax(1)
    for g in range(6):
        assert len(np.unique(size[ug == g])) == 1


def test_one_domain_never_depends_on_another(planted):
    # A domain's features are a function of its own interactions and the config (seeded there), and
    # the edge-assignment hook sees nothing but that domain: no state is carried between domains,
    # the global RNGs play no part, and the ids' names do not matter.
    a = planted_interactions(n_users=120, n_items=60, n_groups=3, per_user=10, seed=1, name="a")
    first = featurize(a, SMALL_CFG)
    featurize(planted, SMALL_CFG)
    featurize(planted, SMALL_CFG.model_copy(update={"seed": 7}))
    np.random.seed(12345)
    random.seed(12345)
    np.random.random(1000)
    assert_same(first, featurize(a, SMALL_CFG))
    renamed = Interactions(a.user, a.item, np.array([f"x{k}" for k in range(a.n_users)]),
                           np.array([f"y{k}" for k in range(a.n_items)]), name="other-name")
    assert_same(first, featurize(renamed, SMALL_CFG))

    seen = []

    def recording(model, user, item, user_emb, item_emb):
        seen.append((user.copy(), item.copy(), user_emb.shape, item_emb.shape))
        return assign_edges(model, user, item, user_emb, item_emb)

    assert_same(first, featurize(a, SMALL_CFG, assign=recording))
    x = a.to_csr().tocoo()
    assert len(seen) == 1  # one call, with exactly this domain's distinct edges and embeddings
    user, item, ushape, ishape = seen[0]
    assert sorted(zip(user.tolist(), item.tolist())) == sorted(zip(x.row.tolist(), x.col.tolist()))
    assert ushape == (a.n_users, SMALL_CFG.spectral.dim) and ishape == (a.n_items, SMALL_CFG.spectral.dim)


def test_layout_depends_only_on_config(planted):
    tiny = planted_interactions(n_users=12, n_items=8, n_groups=2, per_user=3, name="tiny")  # < clusters/bins
    a, b = featurize(planted, SMALL_CFG), featurize(tiny, SMALL_CFG)
    assert a.schema() == b.schema()
    assert a.user.shape[1] == b.user.shape[1] and a.item.shape[1] == b.item.shape[1]
    check_blocks(b)
    assert featurize(tiny, FeatureConfig(cluster_bins=3)).schema() == featurize(
        planted, FeatureConfig(cluster_bins=3)).schema()


def test_ablation_switches(planted):
    act = featurize(planted, FeatureConfig(cooccurrence=False, interaction=False))
    assert act.schema()["user"] == [["activity", 10], ["mainstream", 10]]
    assert act.user_emb is None and "embeddings_spectral" not in act.timings
    inter = featurize(planted, SMALL_CFG.model_copy(update={"activity": False, "cooccurrence": False}))
    assert inter.schema()["item"] == [["inter_size", 4], ["inter_density", 4]]
    assert inter.user_emb.shape == (300, 16)
    with pytest.raises(ConfigError):
        featurize(planted, FeatureConfig(activity=False, cooccurrence=False, interaction=False))


def test_edge_sample_bounds_the_fit(planted):
    # Fewer sampled edges than edges: the fitted model still labels every edge.
    fs = featurize(planted, SMALL_CFG.model_copy(update={"edge_sample": 1000, "activity": False}))
    check_blocks(fs)


@pytest.mark.slow
def test_real_domain_ml100k(data_dir):
    from zsrec_ray.data.registry import load_split

    train = load_split(DomainSpec(dataset="ml-100k"), data_dir).train
    fs = featurize(train, FeatureConfig(spectral=SpectralConfig(dim=32), edge_sample=20_000))
    assert fs.user.shape == (train.n_users, 60)
    deg = train.item_degree()
    check_blocks(fs, isolated_items=np.flatnonzero(deg == 0))
    # Activity bins are equal-frequency among the items of this domain (ties share a bin).
    counts = fs.block("user", "activity").sum(0)
    assert counts.min() > 0
