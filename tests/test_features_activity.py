"""Activity features: equal-frequency percentile bins, mainstream histogram, isolated nodes, permutations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import planted_interactions
from zsrec_ray.config import FeatureConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.features.activity import activity_blocks, one_hot, percentile_bins, row_normalise


def staircase(n_users: int = 37, n_items: int = 40) -> Interactions:
    """User u holds items 0..u: distinct user degrees; items >= n_users are isolated."""
    u = np.concatenate([np.full(k + 1, k) for k in range(n_users)])
    i = np.concatenate([np.arange(k + 1) for k in range(n_users)])
    return Interactions(u, i, np.arange(n_users), np.arange(n_items), name="staircase")


def permuted(d: Interactions, seed: int) -> tuple[Interactions, np.ndarray, np.ndarray]:
    """``d`` with shuffled rows and ids renumbered by ``pu``/``pi`` (new id = p[old id])."""
    rng = np.random.default_rng(seed)
    pu, pi = rng.permutation(d.n_users), rng.permutation(d.n_items)
    uids, iids = np.empty_like(d.user_ids), np.empty_like(d.item_ids)
    uids[pu], iids[pi] = d.user_ids, d.item_ids
    order = rng.permutation(len(d))
    return Interactions(pu[d.user][order], pi[d.item][order], uids, iids, name=d.name), pu, pi


@pytest.mark.parametrize("n,bins", [(37, 10), (100, 10), (5, 10), (1000, 7), (20, 20)])
def test_percentile_bins_equal_frequency_for_distinct_values(n, bins):
    values = np.random.default_rng(n).permutation(n) * 3.5
    counts = np.bincount(percentile_bins(values, bins), minlength=bins)
    assert counts.sum() == n
    nonempty = counts[counts > 0]
    assert nonempty.max() - nonempty.min() <= 1
    if n >= bins:
        assert (counts > 0).all()
    # Monotone in the value.
    order = np.argsort(values)
    assert np.all(np.diff(percentile_bins(values, bins)[order]) >= 0)


def test_percentile_bins_ties_share_a_bin_and_ignore_order():
    values = np.array([5, 1, 1, 1, 9, 9, 2, 7])
    bins = percentile_bins(values, 4)
    assert bins[1] == bins[2] == bins[3] and bins[4] == bins[5]
    perm = np.random.default_rng(0).permutation(len(values))
    np.testing.assert_array_equal(percentile_bins(values[perm], 4), bins[perm])
    assert percentile_bins(np.array([]), 4).shape == (0,)


def test_helpers():
    np.testing.assert_array_equal(one_hot(np.array([2, 0, 1]), 3, np.array([True, False, True])),
                                  [[0, 0, 1], [0, 0, 0], [0, 1, 0]])
    np.testing.assert_allclose(row_normalise(np.array([[1, 3], [0, 0]])), [[0.25, 0.75], [0, 0]])


def test_activity_blocks_staircase():
    d = staircase()
    cfg = FeatureConfig(activity_bins=10)
    user, item = activity_blocks(d, cfg)
    assert [n for n, _ in user] == [n for n, _ in item] == ["activity", "mainstream"]
    ua, um = (b for _, b in user)
    ia, im = (b for _, b in item)
    assert ua.dtype == np.float32 and ua.shape == (37, 10) and ia.shape == (40, 10)
    # Every user is active: exactly one 1; equal-frequency bins over distinct degrees.
    np.testing.assert_array_equal(ua.sum(1), 1)
    counts = ua.sum(0)
    assert counts.max() - counts.min() <= 1
    # Higher degree -> same or higher bin.
    assert np.all(np.diff(ua.argmax(1)) >= 0)
    # Items 37..39 are isolated: all-zero blocks; the others one 1 and a histogram summing to 1.
    np.testing.assert_array_equal(ia[37:], 0)
    np.testing.assert_array_equal(im[37:], 0)
    np.testing.assert_array_equal(ia[:37].sum(1), 1)
    np.testing.assert_allclose(im[:37].sum(1), 1, atol=1e-6)
    np.testing.assert_allclose(um.sum(1), 1, atol=1e-6)
    # User 0 holds only item 0 (the most popular item): its mainstream mass is on the top item bin.
    assert um[0, ia[0].argmax()] == 1.0


def test_mainstream_switch():
    user, item = activity_blocks(staircase(), FeatureConfig(mainstream=False, activity_bins=5))
    assert [(n, b.shape[1]) for n, b in user] == [("activity", 5)]
    assert [(n, b.shape[1]) for n, b in item] == [("activity", 5)]


def test_mainstream_matches_a_direct_count():
    d = planted_interactions(n_users=60, n_items=30, n_groups=3, per_user=6)
    user, item = activity_blocks(d, FeatureConfig(activity_bins=4))
    ia_bin = item[0][1].argmax(1)
    for u in (0, 7, 59):
        hist = np.bincount(ia_bin[d.item[d.user == u]], minlength=4)
        np.testing.assert_allclose(user[1][1][u], hist / hist.sum(), atol=1e-6)


def test_activity_is_exactly_permutation_equivariant():
    d = planted_interactions(n_users=90, n_items=45, n_groups=3, per_user=9, noise=0.3)
    cfg = FeatureConfig(activity_bins=6)
    user, item = activity_blocks(d, cfg)
    for seed in range(3):
        p, pu, pi = permuted(d, seed)
        puser, pitem = activity_blocks(p, cfg)
        for (n, a), (_, b) in zip(user, puser):
            np.testing.assert_array_equal(b[pu], a, err_msg=n)
        for (n, a), (_, b) in zip(item, pitem):
            np.testing.assert_array_equal(b[pi], a, err_msg=n)


def test_duplicate_rows_count_once():
    df = pd.DataFrame({"user": [1, 1, 1, 2, 2, 3], "item": [1, 1, 2, 1, 3, 3]})
    d = Interactions.from_frame(df)
    user, _ = activity_blocks(d, FeatureConfig(activity_bins=3))
    # Degrees 2, 2, 1 (the duplicate (1, 1) counts once): users 1 and 2 tie.
    np.testing.assert_array_equal(user[0][1][0], user[0][1][1])
