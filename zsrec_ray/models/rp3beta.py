"""RP3beta (Paudel et al., 2017; as tuned by Dacrema et al., RecSys 2019): a three-step random walk
user -> item -> user -> item with transition probabilities raised to ``alpha`` and the landing
item's popularity divided out to the power ``beta``; each item keeps its ``k`` strongest
neighbours, and a user's scores are ``x_u W``.

``W`` is built in blocks of items (memory O(block x items), never items^2), from one sparse
product per block; ``alpha``, ``beta`` and ``k`` are picked on the validation split when several
are given, by coordinate search over their candidates (one product per ``alpha``; every
``beta`` and ``k`` reuses it).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from zsrec_ray.data.interactions import Interactions
from zsrec_ray.features.item_weights import neighbour_matrix, rp3beta_neighbours
from zsrec_ray.models.base import Recommender
from zsrec_ray.ranking.evaluator import rank_metrics



class RP3beta(Recommender):
    name = "rp3beta"

    def __init__(self, alpha: tuple[float, ...] = (1.0,), beta: tuple[float, ...] = (0.5,),
                 k: tuple[int, ...] = (100,), rounds: int = 2) -> None:
        super().__init__()
        if not alpha or not beta or not k or min(k) < 1 or min(alpha) <= 0 or min(beta) < 0:
            raise ValueError(f"rp3beta: need alpha > 0, beta >= 0, k >= 1 (got {alpha}, {beta}, {k})")
        self.alpha, self.beta, self.k = tuple(sorted(set(alpha))), tuple(sorted(set(beta))), tuple(sorted(set(k)))
        self.rounds = rounds

    def fit(self, train: Interactions, valid: Interactions | None = None) -> "RP3beta":
        """Without validation data: the middle value of each candidate list. With it: coordinate
        search from there (beta, then k, then alpha, ``rounds`` times), keeping what scores best."""
        self.train_ = train
        x = train.to_csr().astype(np.float32)
        t0 = time.perf_counter()
        walks: dict[float, dict[float, tuple[np.ndarray, np.ndarray]]] = {}

        def weights(alpha: float, beta: float, k: int) -> sp.csr_matrix:
            if alpha not in walks:
                walks.clear()  # one alpha's neighbour lists in memory at a time
                walks[alpha] = rp3beta_neighbours(x, alpha, list(self.beta), max(self.k))
            return neighbour_matrix(*walks[alpha][beta], k)

        point = (_middle(self.alpha), _middle(self.beta), _middle(self.k))
        history: list[dict] = []
        if valid is None or not len(valid):
            self.weights_ = weights(*point)
            self.fit_report = {"alpha": point[0], "beta": point[1], "k": point[2], "best_valid_ndcg20": float("nan"),
                               "history": history, "fit_s": time.perf_counter() - t0}
            return self
        target = valid.to_csr()
        scored: dict[tuple, float] = {}

        def score(p: tuple) -> float:
            if p not in scored:
                self.weights_ = weights(*p)
                scored[p] = rank_metrics(self, x, target, ks=(20,))["ndcg@20"]
                history.append({"alpha": p[0], "beta": p[1], "k": p[2], "valid_ndcg@20": scored[p]})
            return scored[p]

        best = point
        for _ in range(self.rounds):
            for dim, values in ((1, self.beta), (2, self.k), (0, self.alpha)):
                for v in values:
                    cand = tuple(v if d == dim else best[d] for d in range(3))
                    if score(cand) > score(best):
                        best = cand
        self.weights_ = weights(*best)
        self.fit_report = {"alpha": best[0], "beta": best[1], "k": best[2], "best_valid_ndcg20": scored[best],
                           "history": history, "fit_s": time.perf_counter() - t0}
        return self

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.train_.to_csr()[users].astype(np.float32) @ self.weights_).toarray().astype(np.float32, copy=False)


def _middle(values: tuple) -> float | int:
    return values[(len(values) - 1) // 2]
