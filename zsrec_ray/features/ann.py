"""An inverted-file (IVF) index for cosine top-k over a large catalogue of unit item vectors.

Spherical k-means splits the items into lists (about sqrt(n) of them, centroids fitted on a
seeded sample); a query scores only the items of the ``probe`` lists whose centroids are
nearest, so its cost grows with ``probe * n / lists`` items, not with the catalogue. Exact when
every list is probed.
"""

from __future__ import annotations

import numpy as np
import torch


class CosineIVF:
    """Approximate top-k by cosine of unit ``items`` (n, d) float32 rows."""

    def __init__(self, items: torch.Tensor, lists: int | None = None, probe: int = 32, seed: int = 0,
                 iters: int = 8, train_size: int = 100_000, block: int = 131_072):
        n = len(items)
        self.n_lists = max(1, min(n, lists or int(np.ceil(np.sqrt(n)))))
        self.probe = max(1, min(probe, self.n_lists))
        g = torch.Generator().manual_seed(seed)
        train = items[torch.randperm(n, generator=g)[:max(train_size, self.n_lists)]]
        cent = train[torch.randperm(len(train), generator=g)[:self.n_lists]].clone()
        for _ in range(iters):
            assign = (train @ cent.T).argmax(dim=1)
            sums = torch.zeros_like(cent).index_add_(0, assign, train)
            norm = sums.norm(dim=1, keepdim=True)
            cent = torch.where(norm > 0, sums / norm.clamp_min(1e-12), cent)  # an empty list keeps its centroid
        assign = torch.cat([(items[s:s + block] @ cent.T).argmax(dim=1) for s in range(0, n, block)])
        order = torch.argsort(assign, stable=True)
        self.centroids = cent
        self.ids = order.numpy()
        self.vectors = items[order].contiguous()
        self.offsets = np.concatenate([[0], np.cumsum(np.bincount(assign.numpy(), minlength=self.n_lists))])

    def search(self, queries: torch.Tensor, size: int, exclude=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each query's ``size`` best items among its probed lists, best first, leaving out row
        ``r`` of CSR ``exclude``: (rows, item ids, depth) flat arrays."""
        near = torch.topk(queries @ self.centroids.T, self.probe, dim=1).indices.numpy()
        rows, cols, depth = [], [], []
        for r, lists in enumerate(near):
            lo, hi = self.offsets[lists], self.offsets[lists + 1]
            scores = torch.cat([self.vectors[a:b] @ queries[r] for a, b in zip(lo, hi)])  # no gather: slices
            start = np.concatenate([[0], np.cumsum(hi - lo)])
            skip = exclude.indices[exclude.indptr[r]:exclude.indptr[r + 1]] if exclude is not None else ()
            top = torch.topk(scores, min(size + len(skip), len(scores)))
            at = top.indices.numpy()
            which = np.searchsorted(start, at, side="right") - 1
            ids = self.ids[lo[which] + at - start[which]]
            keep = np.isfinite(top.values.numpy())
            if len(skip):
                keep &= ~np.isin(ids, skip)
            got = ids[keep][:size]
            rows.append(np.full(len(got), r, dtype=np.int64))
            cols.append(got.astype(np.int64))
            depth.append(np.arange(len(got), dtype=np.int64))
        if not rows:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(depth)
