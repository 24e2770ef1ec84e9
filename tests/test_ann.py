"""The IVF cosine index: exact when every list is probed, high recall when a few are."""

import numpy as np
import scipy.sparse as sp
import torch

from zsrec_ray.features.ann import CosineIVF


def unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True)


def clustered(n: int, d: int = 16, k: int = 40, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g)
    return unit(centres[torch.randint(0, k, (n,), generator=g)] + 0.3 * torch.randn(n, d, generator=g))


def exact_top(items: torch.Tensor, q: torch.Tensor, size: int) -> list[set]:
    return [set(r.tolist()) for r in torch.topk(q @ items.T, size, dim=1).indices]


def test_every_list_probed_is_exact_and_results_are_ranked():
    items, q = clustered(3000), clustered(20, seed=1)
    idx = CosineIVF(items, probe=10_000)
    rows, cols, depth = idx.search(q, 25)
    want = exact_top(items, q, 25)
    for r in range(20):
        got = cols[rows == r]
        assert set(got.tolist()) == want[r] and (depth[rows == r] == np.arange(25)).all()
        s = (items[torch.from_numpy(got)] @ q[r]).numpy()
        assert (np.diff(s) <= 1e-6).all()


def test_a_few_lists_give_high_recall_and_skip_excluded_items():
    items, q = clustered(20_000), clustered(50, seed=2)
    idx = CosineIVF(items, probe=16)
    assert idx.n_lists == 142 and idx.offsets[-1] == 20_000 and sorted(idx.ids) == list(range(20_000))
    rows, cols, _ = idx.search(q, 50)
    want = exact_top(items, q, 50)
    recall = np.mean([len(set(cols[rows == r].tolist()) & want[r]) / 50 for r in range(50)])
    assert recall >= 0.9
    skip = sp.csr_matrix((np.ones(50), (np.arange(50), [min(want[r]) for r in range(50)])), shape=(50, 20_000))
    rows2, cols2, _ = idx.search(q, 50, skip)
    assert not any(min(want[r]) in set(cols2[rows2 == r].tolist()) for r in range(50))
