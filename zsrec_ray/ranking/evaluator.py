"""Full-ranking evaluation: every user with target items gets one top-k over all items, known items masked.

The evaluator owns masking and top-k. It ranks through ``recommend(users, k, exclude)``, which
every recommender implements (and may implement more cheaply than scoring every item); a plain
score function is wrapped by :func:`as_ranker`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp
import torch

from zsrec_ray.data.splits import Split
from zsrec_ray.ranking.metrics import ndcg_at_k, recall_at_k
from zsrec_ray.ranking.topk import masked_topk

ScoreFn = Callable[[np.ndarray], "np.ndarray | torch.Tensor"]


@runtime_checkable
class Ranker(Protocol):
    """Anything that returns each user's top ``k`` item indices (and scores), ``exclude``'s items left out."""

    def recommend(self, users: np.ndarray, k: int,
                  exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]: ...


class ScoreRanker:
    """A :class:`Ranker` over a score function: score the users against all items, masked top-k."""

    def __init__(self, score_fn: ScoreFn):
        self.score_fn = score_fn

    def recommend(self, users: np.ndarray, k: int,
                  exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
        top = masked_topk(self.score_fn(np.asarray(users, dtype=np.int64)), exclude, k)
        return top.indices.numpy(), top.values.numpy()


def as_ranker(model: "Ranker | ScoreFn") -> Ranker:
    """``model`` itself when it has ``recommend``, else a :class:`ScoreRanker` over it."""
    return model if isinstance(model, Ranker) else ScoreRanker(model)


@dataclass
class EvalResult:
    """Mean metrics over evaluated users, plus how many users were evaluated and skipped."""

    metrics: dict[str, float]
    n_users: int
    n_skipped: int
    per_user: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]


def rank_metrics(model: "Ranker | ScoreFn", exclude: sp.csr_matrix, target: sp.csr_matrix, *,
                 ks: Iterable[int] = (10, 20), batch_size: int = 1024,
                 users: np.ndarray | None = None, keep_per_user: bool = False) -> EvalResult:
    """Recall@K and NDCG@K for every user (of ``users``, default all) with at least one target item.

    ``exclude`` and ``target`` are users x items CSR matrices (items to mask, items to find).
    """
    ranker = as_ranker(model)
    ks = sorted(set(int(k) for k in ks))
    target = sp.csr_matrix(target)
    exclude = sp.csr_matrix(exclude)
    n_target = np.diff(target.indptr)
    candidates = np.arange(target.shape[0]) if users is None else np.asarray(users, dtype=np.int64)
    evaluated = candidates[n_target[candidates] > 0]
    n_skipped = len(candidates) - len(evaluated)
    per_user = _empty_per_user(ks, len(evaluated))
    for start in range(0, len(evaluated), batch_size):
        batch = evaluated[start:start + batch_size]
        idx, _ = ranker.recommend(batch, max(ks), exclude[batch])
        _fill(per_user, start, idx, target[batch], n_target[batch], ks)
    return _result(per_user, len(evaluated), n_skipped, keep_per_user)


def rank_metrics_many(variants: Callable[[np.ndarray], Iterable[tuple[str, "np.ndarray | torch.Tensor"]]],
                      exclude: sp.csr_matrix, target: sp.csr_matrix, *, ks: Iterable[int] = (10, 20),
                      batch_size: int = 1024) -> dict[str, EvalResult]:
    """:func:`rank_metrics` of several score variants over the same users in one pass:
    ``variants(users)`` yields (name, scores of ``users`` x all items) pairs, e.g. blends of two
    models' scores computed once per batch, each then ranked by the masked top-k. A variant may
    instead give ``(items, scores)``: each user's candidates (``users`` x c, -1 where none) and
    their scores (-inf where none), with no masked item among them and at least ``max(ks)``
    candidates per user; its top-k is taken over the candidates only."""
    ks = sorted(set(int(k) for k in ks))
    target, exclude = sp.csr_matrix(target), sp.csr_matrix(exclude)
    n_target = np.diff(target.indptr)
    evaluated = np.flatnonzero(n_target > 0)
    per_user: dict[str, dict[str, np.ndarray]] = {}
    for start in range(0, len(evaluated), batch_size):
        batch = evaluated[start:start + batch_size]
        for name, scores in variants(batch):
            if isinstance(scores, tuple):
                idx = _candidate_topk(*scores, max(ks))
            else:
                idx = masked_topk(scores, exclude[batch], max(ks)).indices.numpy()
            _fill(per_user.setdefault(name, _empty_per_user(ks, len(evaluated))), start, idx,
                  target[batch], n_target[batch], ks)
    skipped = target.shape[0] - len(evaluated)
    return {name: _result(pu, len(evaluated), skipped, False) for name, pu in per_user.items()}


def _candidate_topk(items: np.ndarray, scores: "torch.Tensor", k: int) -> np.ndarray:
    """Item ids of the top ``k`` candidates per row (rows of ``items`` with their ``scores``)."""
    short = ValueError(f"a candidate ranking holds fewer than k={k} candidates for some user")
    if scores.shape[1] < k:
        raise short
    top = torch.topk(scores, k, dim=1, sorted=True)
    if not torch.isfinite(top.values).all():
        raise short
    return np.take_along_axis(items, top.indices.numpy(), axis=1)


def _empty_per_user(ks: list[int], n: int) -> dict[str, np.ndarray]:
    return {f"{m}@{k}": np.zeros(n) for k in ks for m in ("recall", "ndcg")}


def _fill(per_user: dict[str, np.ndarray], start: int, idx, target: sp.csr_matrix, n_rel: np.ndarray,
          ks: list[int]) -> None:
    hits = np.take_along_axis(target.toarray() > 0, np.asarray(idx), axis=1)
    for k in ks:
        per_user[f"recall@{k}"][start:start + len(n_rel)] = recall_at_k(hits, n_rel, k)
        per_user[f"ndcg@{k}"][start:start + len(n_rel)] = ndcg_at_k(hits, n_rel, k)


def _result(per_user: dict[str, np.ndarray], n: int, skipped: int, keep: bool) -> EvalResult:
    metrics = {name: float(v.mean()) if len(v) else 0.0 for name, v in per_user.items()}
    return EvalResult(metrics, n, int(skipped), per_user if keep else {})


def evaluate(model: "Ranker | ScoreFn", split: Split, part: str = "test", *, ks: Iterable[int] = (10, 20),
             batch_size: int = 1024, keep_per_user: bool = False) -> EvalResult:
    """Evaluate on ``split.valid`` or ``split.test``; masks train (+fold-in) items, and valid items for test."""
    exclude, target = split_masks(split, part)
    return rank_metrics(model, exclude, target, ks=ks, batch_size=batch_size, keep_per_user=keep_per_user)


def split_masks(split: Split, part: str) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(items to mask, items to find) of ``split``'s ``part``: train (+fold-in) items are masked,
    and valid items too for test."""
    if part not in ("valid", "test"):
        raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
    exclude = split.known().to_csr()
    if part == "test":
        exclude = (exclude + split.valid.to_csr()).tocsr()
    return exclude, (split.test if part == "test" else split.valid).to_csr()
