"""Full-ranking evaluation: score users in batches against all items, mask known items, one top-k."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import scipy.sparse as sp
import torch

from zsrec_ray.data.splits import Split
from zsrec_ray.evaluation.metrics import ndcg_at_k, recall_at_k

ScoreFn = Callable[[np.ndarray], "np.ndarray | torch.Tensor"]


@dataclass
class EvalResult:
    """Mean metrics over evaluated users, plus how many users were evaluated and skipped."""

    metrics: dict[str, float]
    n_users: int
    n_skipped: int
    per_user: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]


def masked_topk(scores: torch.Tensor, exclude: sp.csr_matrix, k: int) -> torch.return_types.topk:
    """Top ``k`` (values, indices) per row, sorted, after setting ``exclude``'s non-zeros to -inf."""
    scores = scores.detach().clone()
    rows, cols = exclude.nonzero()
    if len(rows):
        scores[torch.from_numpy(rows), torch.from_numpy(cols)] = -torch.inf
    return torch.topk(scores, min(k, scores.shape[1]), dim=1, sorted=True)


def top_k(scores: torch.Tensor, exclude: sp.csr_matrix, k: int) -> torch.Tensor:
    """Indices of the top ``k`` items per row after setting ``exclude``'s non-zeros to -inf."""
    return masked_topk(scores, exclude, k).indices


def rank_metrics(score_fn: ScoreFn, exclude: sp.csr_matrix, target: sp.csr_matrix, *,
                 ks: Iterable[int] = (10, 20), batch_size: int = 1024,
                 users: np.ndarray | None = None, keep_per_user: bool = False) -> EvalResult:
    """Recall@K and NDCG@K for every user with at least one target item.

    ``score_fn(users)`` returns a (len(users), n_items) score matrix; ``exclude`` and ``target``
    are users x items CSR matrices (items to mask, items to find).
    """
    ks = sorted(set(int(k) for k in ks))
    target = sp.csr_matrix(target)
    exclude = sp.csr_matrix(exclude)
    n_target = np.diff(target.indptr)
    candidates = np.arange(target.shape[0]) if users is None else np.asarray(users, dtype=np.int64)
    evaluated = candidates[n_target[candidates] > 0]
    n_skipped = len(candidates) - len(evaluated)
    per_user = {f"{m}@{k}": np.zeros(len(evaluated)) for k in ks for m in ("recall", "ndcg")}
    kmax = max(ks)
    for start in range(0, len(evaluated), batch_size):
        batch = evaluated[start:start + batch_size]
        scores = score_fn(batch)
        if isinstance(scores, np.ndarray):
            scores = torch.from_numpy(np.require(scores, dtype=np.float32, requirements="W"))
        idx = top_k(scores, exclude[batch], kmax).numpy()
        hits = np.take_along_axis(target[batch].toarray() > 0, idx, axis=1)
        n_rel = n_target[batch]
        for k in ks:
            per_user[f"recall@{k}"][start:start + len(batch)] = recall_at_k(hits, n_rel, k)
            per_user[f"ndcg@{k}"][start:start + len(batch)] = ndcg_at_k(hits, n_rel, k)
    metrics = {name: float(v.mean()) if len(v) else 0.0 for name, v in per_user.items()}
    return EvalResult(metrics, len(evaluated), int(n_skipped), per_user if keep_per_user else {})


def evaluate(score_fn: ScoreFn, split: Split, part: str = "test", *, ks: Iterable[int] = (10, 20),
             batch_size: int = 1024, keep_per_user: bool = False) -> EvalResult:
    """Evaluate on ``split.valid`` or ``split.test``; masks train (+fold-in) items, and valid items for test."""
    if part not in ("valid", "test"):
        raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
    exclude = split.known().to_csr()
    if part == "test":
        exclude = (exclude + split.valid.to_csr()).tocsr()
    target = (split.test if part == "test" else split.valid).to_csr()
    return rank_metrics(score_fn, exclude, target, ks=ks, batch_size=batch_size, keep_per_user=keep_per_user)
