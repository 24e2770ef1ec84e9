"""Per-pair features: normalisation ranges, id-permutation invariance, determinism, batch and domain independence."""

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import planted_interactions
from zsrec_ray.config import PairConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.features.embeddings import spectral_embeddings
from zsrec_ray.features.pairs import PairFeaturizer, percentile_rank
from zsrec_ray.config import SpectralConfig

CFG = PairConfig(item_neighbors=20, user_neighbors=10)


def featurizer(data: Interactions, cfg: PairConfig = CFG) -> PairFeaturizer:
    ue, ie = spectral_embeddings(data, SpectralConfig(dim=6), seed=0)
    return PairFeaturizer(data, cfg, ue, ie)


@pytest.fixture(scope="module")
def domain():
    return planted_interactions(n_users=120, n_items=60, per_user=10)


def test_shape_names_and_ranges(domain):
    pf = featurizer(domain)
    f = pf(np.arange(domain.n_users)).numpy()
    assert f.shape == (domain.n_users, domain.n_items, len(CFG.names()))
    assert pf.names == CFG.names()
    assert f.min() >= 0.0 and f.max() <= 1.0
    rel = [k for k, n in enumerate(pf.names) if n.endswith("_rel")]
    assert np.allclose(f[:, :, rel].max(axis=1), 1.0)  # every user has a best candidate


def test_percentile_rank_ties_share_mid_rank():
    p = percentile_rank(torch.tensor([[0.0, 0.0, 1.0, 2.0]]))[0].tolist()
    assert p == pytest.approx([0.25, 0.25, 0.625, 0.875])


def test_batch_independent_and_deterministic(domain):
    pf = featurizer(domain)
    all_rows = pf(np.arange(domain.n_users))
    part = pf(np.array([7, 3, 50]))
    assert torch.equal(part, all_rows[[7, 3, 50]])
    assert torch.equal(featurizer(domain)(np.arange(10)), all_rows[:10])


def test_permuting_ids_permutes_features(domain):
    rng = np.random.default_rng(0)
    up, ip = rng.permutation(domain.n_users), rng.permutation(domain.n_items)
    # relabel: new user id of old u is up[u]
    perm = Interactions(up[domain.user], ip[domain.item], domain.user_ids, domain.item_ids, name="perm")
    # all neighbours kept, so no tie at the top-k cut can depend on id order
    cfg = PairConfig(cosine=False, item_neighbors=1000, user_neighbors=1000)
    a = PairFeaturizer(domain, cfg)(np.arange(domain.n_users)).numpy()
    b = PairFeaturizer(perm, cfg)(up).numpy()  # rows of the same users, in the old order
    np.testing.assert_allclose(b[:, ip], a, atol=1e-6)


def test_no_cross_domain_dependence(domain):
    other = planted_interactions(n_users=80, n_items=40, n_groups=4, per_user=8, seed=3, name="other")
    before = featurizer(domain)(np.arange(20))
    featurizer(other)(np.arange(20))
    assert torch.equal(featurizer(domain)(np.arange(20)), before)


def test_item_knn_feature_ranks_history_neighbours_high():
    # user 0 saw item 0; items 0 and 1 co-occur for many users; item 2 never co-occurs with 0
    rows = [("u0", "i0")] + [(f"u{k}", f"i{j}") for k in range(1, 6) for j in (0, 1)] + [("u9", "i2"), ("u9", "i3")]
    data = Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item"]))
    pf = PairFeaturizer(data, PairConfig(cosine=False, userknn=False, popularity=False))
    f = pf(np.array([0]))[0].numpy()
    assert f[1, 0] > f[2, 0] and f[1, 1] == pytest.approx(1.0)


def test_cosine_needs_embeddings(domain):
    from zsrec_ray.errors import ConfigError

    with pytest.raises(ConfigError, match="embeddings"):
        PairFeaturizer(domain, CFG)


@pytest.mark.parametrize("dense_above", [0.0, 1.0])  # score rows handled densely / as sparse rows
def test_candidate_features_equal_the_full_features_at_those_items(dense_above, monkeypatch):
    from zsrec_ray.config import FeatureConfig
    from zsrec_ray.features import pairs

    monkeypatch.setattr(pairs, "DENSE_ABOVE", dense_above)
    from zsrec_ray.features.featurizer import featurize

    d = planted_interactions(200, 90, 5, 14, seed=4)
    fs = featurize(d, FeatureConfig(spectral=SpectralConfig(dim=8), node_clusters=8, edge_clusters=8))
    pf = PairFeaturizer(d, PairConfig(item_neighbors=20, user_neighbors=10), fs.user_emb, fs.item_emb)
    users = np.arange(60)
    full = pf(users)
    seen = d.to_csr()[users]
    items, feats = pf.candidates(users, 25, seen)
    assert items.shape == (60, 25) and (items >= 0).all()
    assert not (seen.toarray()[users[:, None], items] > 0).any()
    want = torch.gather(full, 1, torch.from_numpy(items)[:, :, None].expand(-1, -1, full.shape[2]))
    assert torch.equal(feats, want)
    # popular items are always in the pool (unless known)
    assert set(pf.popular_order[:3]) - set(seen.indices) <= set(items.ravel())
    everything, _ = pf.candidates(users, 90)
    assert (np.sort(everything, axis=1) == np.arange(90)).all()


@pytest.mark.parametrize("dense_above", [0.0, 1.0])
@pytest.mark.parametrize("names", [None, ("cosine",), ("itemknn", "popularity")])
def test_features_at_pairs_equal_the_full_features(names, dense_above, monkeypatch):
    """The training path: pair features of arbitrary (user, item) rows, users repeated and out of
    order, equal the full rows' values at those items."""
    from zsrec_ray.config import FeatureConfig
    from zsrec_ray.features import pairs
    from zsrec_ray.features.featurizer import featurize

    monkeypatch.setattr(pairs, "DENSE_ABOVE", dense_above)
    d = planted_interactions(150, 70, 5, 14, seed=6)
    fs = featurize(d, FeatureConfig(spectral=SpectralConfig(dim=8), node_clusters=8, edge_clusters=8))
    flags = {} if names is None else {n: n in names for n in ("cosine", "itemknn", "userknn", "popularity")}
    pf = PairFeaturizer(d, PairConfig(item_neighbors=20, user_neighbors=10, **flags), fs.user_emb, fs.item_emb)
    rng = np.random.default_rng(0)
    users = rng.integers(0, 150, 500)
    items = rng.integers(0, 70, 500)
    got = pf.at(users, items)
    full = pf(np.arange(150))
    assert torch.equal(got, full[torch.from_numpy(users), torch.from_numpy(items)])
    assert pf.at(np.array([], dtype=np.int64), np.array([], dtype=np.int64)).shape == (0, pf.n_features)


def test_sampled_cosine_percentile_on_a_large_catalogue_is_close_and_the_rest_exact():
    """Over pairs.percentile_sample items, the cosine percentile is estimated against a sample
    (close to the exact one); the candidates and every other feature stay exact."""
    from zsrec_ray.config import FeatureConfig
    from zsrec_ray.features.featurizer import featurize

    d = planted_interactions(300, 3000, 6, 40, seed=2)
    fs = featurize(d, FeatureConfig(spectral=SpectralConfig(dim=8), node_clusters=8, edge_clusters=8))
    exact = PairFeaturizer(d, PairConfig(item_neighbors=20, user_neighbors=10), fs.user_emb, fs.item_emb)
    sampled = PairFeaturizer(d, PairConfig(item_neighbors=20, user_neighbors=10, percentile_sample=1000, ann_probe=1000),
                             fs.user_emb, fs.item_emb)
    assert exact.sample is None and len(sampled.sample) == 1000
    users = np.arange(50)
    seen = d.to_csr()[users]
    items_e, feats_e = exact.candidates(users, 100, seen)
    items_s, feats_s = sampled.candidates(users, 100, seen)
    assert np.array_equal(np.sort(items_e, axis=1), np.sort(items_s, axis=1))
    order_e, order_s = np.argsort(items_e, axis=1), np.argsort(items_s, axis=1)
    fe = torch.gather(feats_e, 1, torch.from_numpy(order_e)[:, :, None].expand(-1, -1, feats_e.shape[2]))
    fsm = torch.gather(feats_s, 1, torch.from_numpy(order_s)[:, :, None].expand(-1, -1, feats_s.shape[2]))
    assert torch.equal(fe[:, :, 1:], fsm[:, :, 1:])  # every feature but cosine_pct
    err = (fe[:, :, 0] - fsm[:, :, 0]).abs()
    assert float(err.max()) < 0.06 and float(err.mean()) < 0.02


def test_stored_neighbour_lists_give_the_same_features(tmp_path):
    from zsrec_ray.errors import DataError
    from zsrec_ray.features.pairs import load_neighbours, neighbour_lists, save_neighbours

    d = planted_interactions(120, 60, 5, 10, seed=1)
    assert load_neighbours(tmp_path, CFG) is None
    save_neighbours(neighbour_lists(d, CFG), CFG, tmp_path)
    stored = featurizer(d)
    ue, ie = spectral_embeddings(d, SpectralConfig(dim=6), seed=0)
    loaded = PairFeaturizer(d, CFG, ue, ie, load_neighbours(tmp_path, CFG))
    users = np.arange(d.n_users)
    assert torch.equal(stored(users), loaded(users))
    # lists computed with other settings are not used: the caller computes the right ones
    assert load_neighbours(tmp_path, PairConfig(item_neighbors=21, user_neighbors=10)) is None
    other = planted_interactions(90, 60, 5, 10, seed=2)  # lists of another domain are refused
    with pytest.raises(DataError, match="user_sim"):
        PairFeaturizer(other, CFG, *spectral_embeddings(other, SpectralConfig(dim=6), seed=0),
                       load_neighbours(tmp_path, CFG))
    (tmp_path / "user_sim.npz").write_bytes(b"not an npz")
    with pytest.raises(DataError, match="user_sim.npz"):
        load_neighbours(tmp_path, CFG)



def test_sparse_percentiles_match_the_dense_ones_with_negative_ties_and_empty_rows():
    import scipy.sparse as sp

    from zsrec_ray.features.pairs import _sparse_pct_rel, relative_to_max

    rng = np.random.default_rng(0)
    dense = np.round(rng.normal(size=(6, 40)), 1) * (rng.random((6, 40)) < 0.3)
    dense[2] = 0.0  # an empty row
    dense[3, :5] = 0.7  # ties
    items = rng.integers(0, 40, (6, 12))
    pct, rel = _sparse_pct_rel(sp.csr_matrix(dense), items, 40)
    want = percentile_rank(torch.from_numpy(dense)).numpy()
    np.testing.assert_array_equal(pct.astype(np.float32), np.take_along_axis(want, items, 1))
    want_rel = relative_to_max(torch.from_numpy(dense)).numpy()
    np.testing.assert_allclose(rel, np.take_along_axis(want_rel, items, 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_percentiles_match_the_full_ranks_at_tie_key_boundaries(dtype):
    from zsrec_ray.features.pairs import COMPARE_BELOW, _dense_pct

    rng = np.random.default_rng(1)
    n = 300
    # values a few ulps either side of the rounding boundaries (k + 0.5) / 1e6, exact ties, negatives
    base = (rng.integers(-40, 40, (10, n)) + 0.5) / 1e6
    steps = rng.integers(-3, 4, (10, n))
    rows = np.nextafter(base.astype(dtype), np.where(steps > 0, np.inf, -np.inf).astype(dtype))
    for _ in range(2):
        rows = np.where(np.abs(steps) > 1, np.nextafter(rows, np.where(steps > 0, np.inf, -np.inf).astype(dtype)),
                        rows)
    rows = np.where(steps == 0, base.astype(dtype), rows).astype(dtype)
    rows[4] = rng.normal(size=n).astype(dtype)
    rows[5, :50] = rows[5, 0]  # ties
    counts = [1, 3, COMPARE_BELOW, COMPARE_BELOW + 1, 40, n, 2, 0, 17, 6]  # both the counting and the sorting path
    items = np.full((10, n), -1)
    for r, c in enumerate(counts):
        items[r, :c] = rng.choice(n, c, replace=False)
    want = percentile_rank(torch.from_numpy(rows.astype(np.float64))).numpy()
    got = _dense_pct(rows, items)
    for r, c in enumerate(counts):
        np.testing.assert_array_equal(got[r, :c].astype(np.float32), want[r, items[r, :c]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bucket_counts_below_equal_brute_force_counts(dtype):
    from zsrec_ray.features.pairs import _count_below

    rng = np.random.default_rng(7)
    n = 1000
    rows = rng.normal(size=(8, n)).astype(dtype)
    rows[1, :900] = 0.0  # mostly zeros (a sparse score row handled densely)
    rows[2] = 3.25  # a constant row
    rows[3] = np.round(rows[3], 1)  # many ties
    rows[4] = rng.exponential(size=n).astype(dtype) ** 6  # heavy-tailed: most values in a few buckets
    rows[5, ::2] = np.nextafter(rows[5, 1::2], dtype(np.inf))  # neighbours one ulp apart
    picks = np.take_along_axis(rows, rng.integers(0, n, (8, 60)), axis=1)
    thresholds = np.concatenate([picks, np.nextafter(picks, dtype(np.inf)), np.nextafter(picks, dtype(-np.inf)),
                                 np.full((8, 2), -1e9, dtype=dtype), np.full((8, 2), 1e9, dtype=dtype)], axis=1)
    want = (rows[:, None, :] < thresholds[:, :, None]).sum(axis=2)
    np.testing.assert_array_equal(_count_below(rows, thresholds.astype(dtype)), want)


def test_sorted_rows_kept_across_calls_give_the_same_features():
    x = planted_interactions(120, 60, 4, 15, seed=5)
    ue, ie = spectral_embeddings(x, SpectralConfig(dim=8))
    cfg = PairConfig(item_neighbors=10, user_neighbors=8)
    plain = PairFeaturizer(x, cfg, ue, ie)
    kept = PairFeaturizer(x, cfg, ue, ie)
    kept.keep_sorted_rows(1 << 30)
    rng = np.random.default_rng(0)
    for _ in range(3):  # new items of the same users every call, as pretraining's epochs
        users = rng.choice(x.n_users, 200)
        items = rng.integers(0, x.n_items, 200)
        np.testing.assert_array_equal(kept.at(users, items).numpy(), plain.at(users, items).numpy())
    assert kept._sorted and all(v is not None for v in kept._sorted.values())
    sparse, cosine = plain._raw_rows(np.arange(x.n_users))
    dense = {"cosine": cosine, **{k: v for k, v in sparse.items() if isinstance(v, np.ndarray)}}
    assert set(kept._sorted) == set(dense)
    for name, (store, have) in kept._sorted.items():  # what is kept: each seen user's row, sorted
        assert have.any()
        np.testing.assert_array_equal(store[have], np.sort(dense[name][have], axis=1))
    small = PairFeaturizer(x, cfg, ue, ie)
    small.keep_sorted_rows(100)  # nothing fits: rows are sorted per call, as without the memo
    np.testing.assert_array_equal(small.at(users, items).numpy(), plain.at(users, items).numpy())
    assert all(v is None for v in small._sorted.values())
