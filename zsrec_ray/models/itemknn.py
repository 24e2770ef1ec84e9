"""ItemKNN: cosine item-item similarity over the training matrix, top-k neighbours per item."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from zsrec_ray.data.interactions import Interactions
from zsrec_ray.models.base import Recommender


def cosine_topk(x: sp.csr_matrix, k: int, shrink: float = 0.0, block: int = 2048) -> sp.csr_matrix:
    """Items x items sparse matrix holding each item's ``k`` most cosine-similar other items (column-wise).

    Computed in blocks of columns so memory stays O(n_items * block), never n_items^2.
    """
    x = sp.csc_matrix(x, dtype=np.float32)
    n = x.shape[1]
    norms = np.sqrt(np.asarray(x.power(2).sum(axis=0)).ravel()).astype(np.float32)
    xt = x.T.tocsr()
    k = min(k, max(n - 1, 1))
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        dots = (xt @ x[:, start:stop]).toarray()  # (n, b)
        denom = norms[:, None] * norms[None, start:stop] + shrink + 1e-12
        sim = dots / denom
        sim[np.arange(start, stop), np.arange(stop - start)] = 0.0
        top = np.argpartition(-sim, k - 1, axis=0)[:k] if k < n else np.tile(np.arange(n)[:, None], (1, stop - start))
        v = np.take_along_axis(sim, top, axis=0)
        keep = v > 0
        rows.append(top[keep])
        cols.append(np.broadcast_to(np.arange(start, stop), top.shape)[keep])
        vals.append(v[keep])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


class ItemKNN(Recommender):
    name = "itemknn"

    def __init__(self, k: int = 100, shrink: float = 0.0) -> None:
        super().__init__()
        self.k = k
        self.shrink = shrink

    def fit(self, train: Interactions, valid: Interactions | None = None) -> "ItemKNN":
        self.train_ = train
        self.similarity_ = cosine_topk(train.to_csr(), self.k, self.shrink)
        return self

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.train_.to_csr()[users] @ self.similarity_).toarray().astype(np.float32, copy=False)
