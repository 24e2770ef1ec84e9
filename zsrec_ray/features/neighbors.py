"""Cosine top-k neighbour lists over the columns of a sparse matrix, computed in bounded-memory blocks."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

SPARSE_BELOW = 0.05  # a block whose co-occurrence fill is under this picks its top k from the non-zeros


def cosine_topk(x: sp.spmatrix, k: int, shrink: float = 0.0, max_block_cells: int = 50_000_000,
                max_pairs: int | None = None, seed: int = 0) -> sp.csr_matrix:
    """Columns x columns sparse matrix holding, in column ``j``, the ``k`` columns most cosine-similar to ``j``.

    With ``max_pairs``, rows whose co-occurring pairs would sum past it are subsampled first
    (:func:`cap_rows`), so cost stays bounded on catalogues with very heavy rows; below it the
    result is exact.

    Processed in blocks of ``max_block_cells // n`` columns, so memory stays O(n * block), never
    n^2. A block's co-occurrences are ranked densely (one row-major partition) when they fill at
    least ``SPARSE_BELOW`` of the block, else from the non-zeros alone (one sort), so sparse large
    domains cost what their co-occurring pairs cost. Self-similarity is excluded; only positive
    similarities are kept.
    """
    if max_pairs is not None:
        x = cap_rows(sp.csr_matrix(x), max_pairs, seed)
    x = sp.csc_matrix(x, dtype=np.float32)
    n = x.shape[1]
    if n == 0:
        return sp.csr_matrix((0, 0), dtype=np.float32)
    norms = np.sqrt(np.asarray(x.power(2).sum(axis=0)).ravel()).astype(np.float32)
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    xt, xr = x.T.tocsr(), x.tocsr()  # CSR x CSR: a CSC operand would be converted again for every block
    k = max(1, min(k, n - 1))
    block = int(max(1, min(n, max_block_cells // n)))
    parts = []
    for start in range(0, n, block):
        co = (xt[start:min(start + block, n)] @ xr).tocsr()  # row r: co-occurrences of column start + r
        pick = _top_sparse if co.nnz < SPARSE_BELOW * co.shape[0] * n else _top_dense
        parts.append(pick(co, start, k, norms, inv, shrink))
    nb, j, v = (np.concatenate(p) for p in zip(*parts))
    return sp.csr_matrix((v, (nb, j)), shape=(n, n), dtype=np.float32)


def _cosine(co, j: np.ndarray, nb: np.ndarray, norms: np.ndarray, inv: np.ndarray, shrink: float) -> np.ndarray:
    if shrink:
        return co / (norms[j] * norms[nb] + np.float32(shrink + 1e-12))
    return co * inv[j] * inv[nb]


def _top_dense(co: sp.csr_matrix, start: int, k: int, norms, inv, shrink) -> tuple[np.ndarray, ...]:
    b, n = co.shape
    j = np.arange(start, start + b)
    sim = co.toarray()
    if shrink:
        sim /= norms[j, None] * norms[None, :] + np.float32(shrink + 1e-12)
    else:
        sim *= inv[None, :]
        sim *= inv[j, None]
    sim[np.arange(b), j] = 0.0
    if k < n:
        best = torch.topk(torch.from_numpy(sim), k, dim=1, sorted=False)
        top, v = best.indices.numpy(), best.values.numpy()
    else:
        top, v = np.broadcast_to(np.arange(n), (b, n)), sim
    keep = v > 0
    return top[keep], np.broadcast_to(j[:, None], top.shape)[keep], v[keep]


def _top_sparse(co: sp.csr_matrix, start: int, k: int, norms, inv, shrink) -> tuple[np.ndarray, ...]:
    j = np.repeat(np.arange(start, start + co.shape[0]), np.diff(co.indptr))
    nb = co.indices
    v = _cosine(co.data, j, nb, norms, inv, shrink)
    ok = (nb != j) & (v > 0)
    j, nb, v = j[ok], nb[ok], v[ok]
    order = np.lexsort((-v, j))  # by column, then similarity descending
    j, nb, v = j[order], nb[order], v[order]
    first = np.searchsorted(j, np.arange(start, start + co.shape[0]))
    keep = np.arange(len(j)) - first[j - start] < k
    return nb[keep], j[keep], v[keep]


def cap_rows(x: sp.csr_matrix, max_pairs: int, seed: int = 0) -> sp.csr_matrix:
    """``x`` with each row cut to a seeded random subset of at most ``c`` stored entries, ``c`` the
    largest with sum over rows of min(nnz, c)^2 <= ``max_pairs`` (``x`` itself when it fits)."""
    nnz = np.diff(x.indptr).astype(np.int64)
    if float((nnz.astype(np.float64) ** 2).sum()) <= max_pairs:
        return x
    lo, hi = 1, int(nnz.max())
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if float((np.minimum(nnz, mid).astype(np.float64) ** 2).sum()) <= max_pairs:
            lo = mid
        else:
            hi = mid - 1
    rows = np.repeat(np.arange(x.shape[0]), nnz)
    order = np.lexsort((np.random.default_rng(seed).random(x.nnz), rows))  # rows kept, random within a row
    rank = np.arange(x.nnz) - np.repeat(x.indptr[:-1], nnz)
    keep = np.zeros(x.nnz, dtype=bool)
    keep[order[rank < lo]] = True
    indptr = np.concatenate([[0], np.cumsum(np.minimum(nnz, lo))])
    return sp.csr_matrix((x.data[keep], x.indices[keep], indptr), shape=x.shape)
