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
