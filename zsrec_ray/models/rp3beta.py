"""RP3beta (Paudel et al., 2017; as tuned by Dacrema et al., RecSys 2019): a three-step random walk
user -> item -> user -> item with transition probabilities raised to ``alpha`` and the landing
item's popularity divided out to the power ``beta``; each item keeps its ``k`` strongest
neighbours, and a user's scores are ``x_u W``.

``W`` is built in blocks of items (memory O(block x items), never items^2), from one sparse
product per block; ``alpha``, ``beta`` and ``k`` are picked on the validation split when several
are given (one product per ``alpha``; each ``beta`` and ``k`` reuses it).
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import scipy.sparse as sp

from zsrec_ray.data.interactions import Interactions
from zsrec_ray.models.base import Recommender
from zsrec_ray.ranking.evaluator import rank_metrics

#: Cells of one dense block of walk probabilities (bounds the memory of a fit).
BLOCK_CELLS = 20_000_000


class RP3beta(Recommender):
    name = "rp3beta"

    def __init__(self, alpha: tuple[float, ...] = (1.0,), beta: tuple[float, ...] = (0.5,),
                 k: tuple[int, ...] = (100,)) -> None:
        super().__init__()
        if not alpha or not beta or not k or min(k) < 1 or min(alpha) <= 0 or min(beta) < 0:
            raise ValueError(f"rp3beta: need alpha > 0, beta >= 0, k >= 1 (got {alpha}, {beta}, {k})")
        self.alpha, self.beta, self.k = tuple(alpha), tuple(beta), tuple(sorted(set(k)))

    def fit(self, train: Interactions, valid: Interactions | None = None) -> "RP3beta":
        self.train_ = train
        x = train.to_csr().astype(np.float32)
        search = valid is not None and len(valid) > 0
        grid = list(itertools.product(self.alpha, self.beta, self.k)) if search else \
            [(self.alpha[0], self.beta[0], self.k[0])]
        t0 = time.perf_counter()
        history, best = [], None
        for alpha in dict.fromkeys(a for a, _, _ in grid):
            betas = list(dict.fromkeys(b for a, b, _ in grid if a == alpha))
            ks = sorted({k for a, _, k in grid if a == alpha})
            for (beta, k), w in rp3beta_weights(x, alpha, betas, ks).items():
                self.weights_ = w
                if len(grid) == 1:
                    best = (float("nan"), (alpha, beta, k), w)
                    continue
                ndcg = rank_metrics(self, x, valid.to_csr(), ks=(20,))["ndcg@20"]
                history.append({"alpha": alpha, "beta": beta, "k": k, "valid_ndcg@20": ndcg})
                if best is None or ndcg > best[0]:
                    best = (ndcg, (alpha, beta, k), w)
        self.weights_ = best[2]
        self.fit_report = {"alpha": best[1][0], "beta": best[1][1], "k": best[1][2], "best_valid_ndcg20": best[0],
                           "history": history, "fit_s": time.perf_counter() - t0}
        return self

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.train_.to_csr()[users].astype(np.float32) @ self.weights_).toarray().astype(np.float32, copy=False)


def rp3beta_weights(x: sp.csr_matrix, alpha: float, betas: list[float], ks: list[int],
                    block_cells: int = BLOCK_CELLS) -> dict[tuple[float, int], sp.csr_matrix]:
    """Item x item RP3beta weights for one ``alpha`` and every (beta, k): row ``i`` keeps the ``k``
    largest ``p(i -> j)^alpha-walk / pop_j^beta`` over ``j != i``."""
    n_users, n = x.shape
    x = sp.csr_matrix(x, dtype=np.float32)
    x.data[:] = 1.0
    user_deg = np.asarray(x.sum(axis=1)).ravel()
    pop = np.asarray(x.sum(axis=0)).ravel()
    p_ui = sp.diags(_inv_pow(user_deg, alpha)) @ x                 # user -> item, ^alpha
    p_iu = (sp.diags(_inv_pow(pop, alpha)) @ x.T.tocsr()).tocsr()  # item -> user, ^alpha
    p_ui = p_ui.tocsc()
    penalty = {b: _inv_pow(pop, b) for b in betas}
    kmax = min(max(ks), max(n - 1, 1))
    rows: dict[float, list] = {b: [] for b in betas}
    block = max(1, min(n, block_cells // max(n, 1)))
    for start in range(0, n, block):
        stop = min(start + block, n)
        walk = (p_iu[start:stop] @ p_ui).toarray()
        walk[np.arange(stop - start), np.arange(start, stop)] = 0.0
        for b in betas:
            w = walk * penalty[b][None, :]
            top = np.argpartition(-w, kmax - 1, axis=1)[:, :kmax] if kmax < n else \
                np.broadcast_to(np.arange(n), (stop - start, n)).copy()
            val = np.take_along_axis(w, top, axis=1)
            order = np.argsort(-val, axis=1, kind="stable")
            rows[b].append((np.take_along_axis(top, order, axis=1), np.take_along_axis(val, order, axis=1)))
    out = {}
    for b in betas:
        top = np.concatenate([t for t, _ in rows[b]])
        val = np.concatenate([v for _, v in rows[b]])
        for k in ks:
            kk = min(k, top.shape[1])
            t, v = top[:, :kk], val[:, :kk]
            keep = v > 0
            i = np.broadcast_to(np.arange(n)[:, None], t.shape)[keep]
            out[(b, k)] = sp.csr_matrix((v[keep], (i, t[keep])), shape=(n, n), dtype=np.float32)
    return out


def _inv_pow(values: np.ndarray, power: float) -> np.ndarray:
    out = np.zeros(len(values), dtype=np.float32)
    ok = values > 0
    out[ok] = values[ok].astype(np.float64) ** -power
    return out
