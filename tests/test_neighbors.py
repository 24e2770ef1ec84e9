"""cosine_topk against a brute-force dense computation, on both of its ranking paths."""

import numpy as np
import pytest
import scipy.sparse as sp

from zsrec_ray.features import neighbors
from zsrec_ray.features.neighbors import cosine_topk


def brute_force(x: sp.spmatrix, k: int, shrink: float) -> np.ndarray:
    d = x.toarray().astype(np.float64)
    norms = np.linalg.norm(d, axis=0)
    sim = d.T @ d / (np.outer(norms, norms) + shrink + 1e-12)
    np.fill_diagonal(sim, 0.0)
    out = np.zeros_like(sim)
    for j in range(sim.shape[1]):
        top = np.argsort(-sim[:, j])[:k]
        top = top[sim[top, j] > 0]
        out[top, j] = sim[top, j]
    return out


@pytest.mark.parametrize("sparse_below", [0.0, 1.1], ids=["dense-path", "sparse-path"])
@pytest.mark.parametrize("shrink", [0.0, 2.0])
@pytest.mark.parametrize("density", [0.02, 0.3])
def test_matches_brute_force(monkeypatch, sparse_below, shrink, density):
    monkeypatch.setattr(neighbors, "SPARSE_BELOW", sparse_below)
    rng = np.random.default_rng(7)
    x = sp.random(300, 120, density=density, random_state=rng, format="csr")  # distinct weights: no ties
    x.data = rng.uniform(0.5, 2.0, x.nnz)
    want = brute_force(x, 10, shrink)
    got = cosine_topk(x, 10, shrink=shrink, max_block_cells=300 * 37)  # several uneven blocks
    np.testing.assert_allclose(got.toarray(), want, rtol=1e-5, atol=1e-6)
    assert (np.diff(got.tocsc().indptr) <= 10).all()


def test_empty_and_isolated_columns():
    x = sp.csr_matrix(np.array([[1, 0, 0], [1, 0, 0]], dtype=np.float32))
    assert cosine_topk(x, 5).nnz == 0  # one non-empty column: no neighbour with positive similarity
    assert cosine_topk(sp.csr_matrix((4, 0)), 5).shape == (0, 0)


def test_cap_rows_bounds_cooccurring_pairs_and_keeps_light_rows():
    from zsrec_ray.features.neighbors import cap_rows

    x = sp.random(40, 300, density=0.05, random_state=4, format="csr")
    x = sp.vstack([x, sp.csr_matrix(np.ones((2, 300)))]).tocsr()  # two heavy rows
    pairs = float((np.diff(x.indptr).astype(float) ** 2).sum())
    assert cap_rows(x, int(pairs)) is x
    capped = cap_rows(x, 60_000, seed=1)
    nnz = np.diff(capped.indptr)
    assert (nnz.astype(float) ** 2).sum() <= 60_000 and nnz[-1] < 300
    light = np.diff(x.indptr) <= nnz.max()
    assert (capped[np.flatnonzero(light)] != x[np.flatnonzero(light)]).nnz == 0  # light rows untouched
    assert (capped.multiply(x != 0) != capped).nnz == 0  # a subset of x's entries, values kept
    assert (cap_rows(x, 60_000, seed=1) != capped).nnz == 0


def test_cosine_topk_with_a_pair_budget_it_fits_is_exact():
    x = sp.random(60, 80, density=0.1, random_state=5, format="csr")
    x.data[:] = 1.0
    want = cosine_topk(x, 5)
    got = cosine_topk(x, 5, max_pairs=10**9)
    assert (want != got).nnz == 0
