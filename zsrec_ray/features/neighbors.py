"""Cosine top-k neighbour lists over the columns of a sparse matrix, computed in bounded-memory blocks."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def cosine_topk(x: sp.spmatrix, k: int, shrink: float = 0.0, max_block_cells: int = 50_000_000) -> sp.csr_matrix:
    """Columns x columns sparse matrix holding, in column ``j``, the ``k`` columns most cosine-similar to ``j``.

    Processed in blocks of columns so memory stays O(n * block) with n * block <= ``max_block_cells``;
    never n^2. Self-similarity is excluded; only positive similarities are kept.
    """
    x = sp.csc_matrix(x, dtype=np.float32)
    n = x.shape[1]
    if n == 0:
        return sp.csr_matrix((0, 0), dtype=np.float32)
    norms = np.sqrt(np.asarray(x.power(2).sum(axis=0)).ravel()).astype(np.float32)
    xt = x.T.tocsr()
    k = max(1, min(k, n - 1))
    block = int(max(1, min(n, max_block_cells // n)))
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        sim = (xt @ x[:, start:stop]).toarray()  # (n, b)
        sim /= norms[:, None] * norms[None, start:stop] + shrink + 1e-12
        sim[np.arange(start, stop), np.arange(stop - start)] = 0.0
        if k < n:
            top = np.argpartition(-sim, k - 1, axis=0)[:k]
        else:
            top = np.broadcast_to(np.arange(n)[:, None], (n, stop - start))
        v = np.take_along_axis(sim, top, axis=0)
        keep = v > 0
        rows.append(top[keep])
        cols.append(np.broadcast_to(np.arange(start, stop), top.shape)[keep])
        vals.append(v[keep])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, n), dtype=np.float32)
