"""EASE (Steck, WWW 2019): a closed-form item-item model, ``B = I - P / diag(P)`` with
``P = (X^T X + l2 I)^-1`` and a zero diagonal; a user's scores are ``x_u B``.

The solve is dense in the number of items (n^2 float32 memory, about n^3 / 3 flops for the
Cholesky factor plus its inverse), so ``max_items`` refuses catalogues beyond what fits. The L2
strength is picked on the validation split among ``l2`` candidates (tried in increasing order,
stopping after two in a row score worse than the best); without validation data, the middle one.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from zsrec_ray.data.interactions import Interactions
from zsrec_ray.errors import DataError
from zsrec_ray.features.item_weights import ease_weights
from zsrec_ray.models.base import Recommender
from zsrec_ray.ranking.evaluator import rank_metrics


class EASE(Recommender):
    name = "ease"

    def __init__(self, l2: tuple[float, ...] = (500.0,), max_items: int = 30_000) -> None:
        super().__init__()
        if not l2 or min(l2) <= 0:
            raise ValueError(f"l2 candidates must be positive, got {list(l2)}")
        self.l2 = tuple(sorted(float(v) for v in l2))
        self.max_items = max_items

    def fit(self, train: Interactions, valid: Interactions | None = None) -> "EASE":
        n = train.n_items
        if n > self.max_items:
            raise DataError(f"ease: {n} items exceed max_items={self.max_items} (a dense {n}x{n} solve); "
                            f"raise model.ease.max_items if {4 * n * n * 3 / 2**30:.1f} GiB fits in memory")
        self.train_ = train
        x = train.to_csr().astype(np.float32)
        gram = torch.from_numpy((x.T @ x).toarray())
        middle = self.l2[(len(self.l2) - 1) // 2]
        candidates = self.l2 if valid is not None and len(valid) else (middle,)
        history, best, worse = [], None, 0
        t0 = time.perf_counter()
        for l2 in candidates:
            self.weights_ = ease_weights(gram, l2)
            if len(candidates) == 1:
                best = (float("nan"), l2, self.weights_)
                break
            ndcg = rank_metrics(self, x, valid.to_csr(), ks=(20,))["ndcg@20"]
            history.append({"l2": l2, "valid_ndcg@20": ndcg})
            if best is None or ndcg > best[0]:
                best, worse = (ndcg, l2, self.weights_), 0
            else:
                worse += 1
                if worse >= 2:
                    break
        self.weights_ = best[2]
        self.fit_report = {"l2": best[1], "best_valid_ndcg20": best[0], "history": history,
                           "fit_s": time.perf_counter() - t0}
        return self

    def _score(self, users: np.ndarray) -> np.ndarray:
        x = self.train_.to_csr()[users].astype(np.float32)
        return np.asarray(x @ self.weights_.numpy(), dtype=np.float32)
