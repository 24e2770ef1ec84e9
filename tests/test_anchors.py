"""EASE and RP3beta: the closed forms against a direct dense computation, and the validation search."""

import numpy as np
import pytest

from conftest import planted_interactions
from zsrec_ray.data.splits import random_split
from zsrec_ray.errors import DataError
from zsrec_ray.models import EASE, RP3beta
from zsrec_ray.features.item_weights import rp3beta_weights


@pytest.fixture(scope="module")
def split():
    return random_split(planted_interactions(120, 40, 4, 10, seed=5), seed=0)


def test_ease_is_the_closed_form(split):
    model = EASE(l2=(30.0,)).fit(split.train)
    x = split.train.to_csr().toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + 30.0 * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(model.weights_.numpy(), b, rtol=2e-3, atol=1e-5)
    assert model.weights_.is_contiguous()  # row-major: scoring does not copy items x items floats per block
    users = np.arange(10)
    np.testing.assert_allclose(model.score(users), x[users] @ b, rtol=2e-3, atol=1e-4)


def test_ease_picks_l2_on_validation_and_refuses_large_catalogues(split):
    model = EASE(l2=(1.0, 30.0, 300.0, 3000.0)).fit(split.train, split.valid)
    rep = model.fit_report
    tried = [h["l2"] for h in rep["history"]]
    assert tried == sorted(tried) and rep["l2"] in tried
    assert rep["best_valid_ndcg20"] == max(h["valid_ndcg@20"] for h in rep["history"])
    with pytest.raises(DataError, match="exceed max_items=10"):
        EASE(max_items=10).fit(split.train)


def dense_rp3beta(x: np.ndarray, alpha: float, beta: float, k: int) -> np.ndarray:
    x = (x > 0).astype(np.float64)
    p_ui = x / np.maximum(x.sum(1, keepdims=True), 1)
    p_iu = x.T / np.maximum(x.sum(0)[:, None], 1)
    w = (p_iu ** alpha) @ (p_ui ** alpha)
    pop = x.sum(0)
    w = w * np.where(pop > 0, pop, 1.0)[None, :] ** -beta
    np.fill_diagonal(w, 0.0)
    out = np.zeros_like(w)
    for i in range(len(w)):
        top = np.argsort(-w[i], kind="stable")[:k]
        out[i, top] = w[i, top]
    return out


@pytest.mark.parametrize("alpha, beta, k", [(1.0, 0.0, 5), (0.6, 0.4, 12), (0.8, 0.7, 100)])
def test_rp3beta_matches_the_dense_walk(split, alpha, beta, k):
    x = split.train.to_csr()
    got = rp3beta_weights(x, alpha, beta, k, block_cells=400).toarray()  # several blocks
    want = dense_rp3beta(x.toarray(), alpha, beta, min(k, x.shape[1] - 1))
    # the same kept weights (ties at the k-th value may pick different items: compare the values)
    np.testing.assert_allclose(np.sort(got, axis=1), np.sort(want, axis=1), rtol=1e-4, atol=1e-7)
    assert ((got > 0).sum(1) <= k).all()


def test_rp3beta_coordinate_search_keeps_the_best_point_it_scored(split):
    model = RP3beta(alpha=(0.5, 1.0, 1.5), beta=(0.0, 0.3, 0.6), k=(5, 10, 30)).fit(split.train, split.valid)
    rep = model.fit_report
    tried = {(h["alpha"], h["beta"], h["k"]) for h in rep["history"]}
    assert len(tried) == len(rep["history"]) <= 27 and (1.0, 0.3, 10) in tried  # starts in the middle
    best = max(rep["history"], key=lambda h: h["valid_ndcg@20"])
    assert rep["best_valid_ndcg20"] == best["valid_ndcg@20"]
    # every value of every dimension was tried around the best point
    assert {b for a, b, k in tried if (a, k) == (rep["alpha"], rep["k"])} == {0.0, 0.3, 0.6}
    unsearched = RP3beta(alpha=(0.5, 1.0, 1.5), beta=(0.0, 0.3, 0.6), k=(5, 10, 30)).fit(split.train)
    assert (unsearched.fit_report["alpha"], unsearched.fit_report["beta"], unsearched.fit_report["k"]) == (1.0, 0.3, 10)
    with pytest.raises(ValueError, match="alpha > 0"):
        RP3beta(alpha=(0.0,))
