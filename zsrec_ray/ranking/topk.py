"""Top-k over score rows with some items masked out (a user's known items)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def masked_topk(scores: torch.Tensor | np.ndarray, exclude: sp.csr_matrix | None, k: int) -> torch.return_types.topk:
    """Top ``k`` (values, indices) per row, sorted, after setting ``exclude``'s non-zeros to -inf.

    Masked items can only appear (with value -inf) when fewer than ``k`` items are left in a row.
    """
    if isinstance(scores, np.ndarray):
        scores = torch.from_numpy(np.array(scores, dtype=np.float32))
    else:
        scores = scores.detach().float().clone()
    if exclude is not None:
        rows, cols = exclude.nonzero()
        if len(rows):
            scores[torch.from_numpy(rows), torch.from_numpy(cols)] = -torch.inf
    return torch.topk(scores, min(k, scores.shape[1]), dim=1, sorted=True)


def top_k(scores: torch.Tensor | np.ndarray, exclude: sp.csr_matrix | None, k: int) -> torch.Tensor:
    """Indices of the top ``k`` items per row after setting ``exclude``'s non-zeros to -inf."""
    return masked_topk(scores, exclude, k).indices
