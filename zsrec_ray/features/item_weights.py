"""Item-item weight matrices computed from a domain's interactions: RP3beta's random walk and
EASE's closed form. The in-domain RP3beta and EASE recommenders fit them; the pair features can
read them in place of cosine neighbour lists (``pairs.item_sim``)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from zsrec_ray.errors import DataError

#: Cells of one dense block of walk probabilities (bounds the memory of a fit).
BLOCK_CELLS = 20_000_000


def rp3beta_neighbours(x: sp.csr_matrix, alpha: float, betas: list[float], kmax: int,
                       block_cells: int = BLOCK_CELLS) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """For one ``alpha`` and each beta: every item's ``kmax`` strongest neighbours ``j != i`` by
    ``walk(i -> j) / pop_j^beta`` (walk probabilities raised to ``alpha``), as (items x kmax)
    index and value arrays sorted strongest first."""
    n = x.shape[1]
    x = sp.csr_matrix(x, dtype=np.float32)
    x.data[:] = 1.0
    user_deg = np.asarray(x.sum(axis=1)).ravel()
    pop = np.asarray(x.sum(axis=0)).ravel()
    p_ui = (sp.diags(_inv_pow(user_deg, alpha)) @ x).tocsc()       # user -> item, ^alpha
    p_iu = (sp.diags(_inv_pow(pop, alpha)) @ x.T.tocsr()).tocsr()  # item -> user, ^alpha
    penalty = {b: _inv_pow(pop, b) for b in betas}
    kmax = min(kmax, max(n - 1, 1))
    parts: dict[float, list] = {b: [] for b in betas}
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
            parts[b].append((np.take_along_axis(top, order, axis=1).astype(np.int32),
                             np.take_along_axis(val, order, axis=1)))
    return {b: (np.concatenate([t for t, _ in p]), np.concatenate([v for _, v in p])) for b, p in parts.items()}


def neighbour_matrix(top: np.ndarray, val: np.ndarray, k: int) -> sp.csr_matrix:
    """Item x item weights keeping each row's ``k`` first (strongest) neighbours of ``top``/``val``."""
    n = top.shape[0]
    t, v = top[:, :k], val[:, :k]
    keep = v > 0
    rows = np.broadcast_to(np.arange(n)[:, None], t.shape)[keep]
    return sp.csr_matrix((v[keep], (rows, t[keep])), shape=(n, n), dtype=np.float32)


def rp3beta_weights(x: sp.csr_matrix, alpha: float, beta: float, k: int,
                    block_cells: int = BLOCK_CELLS) -> sp.csr_matrix:
    """Item x item RP3beta weights: row ``i`` keeps its ``k`` strongest neighbours."""
    return neighbour_matrix(*rp3beta_neighbours(x, alpha, [beta], k, block_cells)[beta], k)


def _inv_pow(values: np.ndarray, power: float) -> np.ndarray:
    out = np.zeros(len(values), dtype=np.float32)
    ok = values > 0
    out[ok] = values[ok].astype(np.float64) ** -power
    return out


def ease_weights(gram: torch.Tensor, l2: float) -> torch.Tensor:
    """``B`` for one L2 strength: a Cholesky inverse of the regularised Gram matrix (float32)."""
    g = gram.clone()
    g.diagonal().add_(l2)
    chol = torch.linalg.cholesky(g)
    del g
    # the inverse is symmetric and LAPACK returns it column-major: its transpose is the same matrix,
    # row-major, so scoring (sparse rows @ B) reads it in place instead of copying n^2 floats per block
    b = torch.cholesky_inverse(chol).T
    del chol
    b.div_(-b.diagonal().clone()[None, :])  # in place: n^2 floats per copy matter at 20k+ items
    b.diagonal().zero_()
    return b


def ease_neighbours(x: sp.spmatrix, l2: float, k: int, max_items: int = 30_000) -> sp.csr_matrix:
    """EASE's weights as neighbour lists (items x items, column ``j`` = target item): column ``j``
    keeps the ``k`` history items with the largest positive weight towards ``j``."""
    x = sp.csr_matrix(x, dtype=np.float32)
    n = x.shape[1]
    if n > max_items:
        raise DataError(f"ease neighbour lists: {n} items exceed ease_max_items={max_items} (a dense {n}x{n} "
                        "solve); use another item_sim or raise ease_max_items")
    x.data[:] = 1.0
    b = ease_weights(torch.from_numpy((x.T @ x).toarray()), l2)
    k = min(k, max(n - 1, 1))
    top = torch.topk(b, k, dim=0)  # (k, n): row r holds each column's r-th strongest weight
    del b
    val, rows = top.values.numpy(), top.indices.numpy()
    keep = val > 0
    cols = np.broadcast_to(np.arange(n)[None, :], rows.shape)
    return sp.csr_matrix((val[keep], (rows[keep], cols[keep])), shape=(n, n), dtype=np.float32)
