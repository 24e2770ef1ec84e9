"""Post-hoc interpolation (paper eq. 11): score = alpha * s_pretrained + (1 - alpha) * s_base.

Both models' scores are z-normalised per user first. A two-stage pair model
(:attr:`PretrainedRecommender.two_stage`) is mixed over candidates, so the pair network never
scores the whole catalogue: its own candidates plus the base model's top :data:`BASE_TOP` items;
z-statistics come from those candidates, and every other item ranks below them in the base
model's order. Otherwise every item is mixed.
"""

from __future__ import annotations

from typing import Callable, Iterable, Union

import numpy as np
import scipy.sparse as sp
import torch

from zsrec_ray.data.splits import Split
from zsrec_ray.models.pretrained import PretrainedRecommender
from zsrec_ray.ranking.evaluator import ScoreFn, rank_metrics_many, split_masks
from zsrec_ray.ranking.topk import masked_topk

ALPHAS = tuple(round(a, 1) for a in np.linspace(0, 1, 11))
#: A two-stage mix adds this many of the base model's best items to the pair model's candidates.
BASE_TOP = 100

Pretrained = Union[ScoreFn, PretrainedRecommender]


def zscore_rows(scores: torch.Tensor) -> torch.Tensor:
    """Per-user z-normalisation over all items (constant rows become zero)."""
    mean = scores.mean(dim=1, keepdim=True)
    std = scores.std(dim=1, keepdim=True)
    return torch.where(std > 0, (scores - mean) / std.clamp_min(1e-12), torch.zeros_like(scores))


def interpolated(pretrained: ScoreFn, base: ScoreFn, alpha: float, normalise: bool = True) -> ScoreFn:
    """A score function mixing two models' scores for the same users; alpha 1 (0) is the
    pretrained (base) model's own scores, so the endpoints reproduce each model exactly."""
    if alpha in (0.0, 1.0):
        only = pretrained if alpha == 1.0 else base
        return lambda users: _tensor(only(users))

    def fn(users: np.ndarray) -> torch.Tensor:
        a, b = _tensor(pretrained(users)), _tensor(base(users))
        if normalise:
            a, b = zscore_rows(a), zscore_rows(b)
        return alpha * a + (1 - alpha) * b
    return fn


def _tensor(x) -> torch.Tensor:
    return x.float() if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x, dtype=np.float32))


def _mixes(pretrained: ScoreFn, base: ScoreFn, alphas: Iterable[float], raw_half: bool = False):
    """Per batch of users, both models' scores once, then every mix: ``(alpha, scores)`` as
    :func:`interpolated` gives them (and ``("raw_half", ...)``, the unnormalised 0.5 mix)."""
    def variants(users: np.ndarray):
        a, b = _tensor(pretrained(users)), _tensor(base(users))
        za = zb = None
        for alpha in alphas:
            if alpha in (0.0, 1.0):
                yield float(alpha), (a if alpha == 1.0 else b)
                continue
            if za is None:
                za, zb = zscore_rows(a), zscore_rows(b)
            yield float(alpha), alpha * za + (1 - alpha) * zb
        if raw_half:
            yield "raw_half", 0.5 * a + 0.5 * b
    return variants


def _masked_zscore(scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """:func:`zscore_rows` over each row's ``valid`` entries only (the others become zero)."""
    n = valid.sum(dim=1, keepdim=True).clamp_min(1)
    x = torch.where(valid, scores, torch.zeros_like(scores))
    mean = x.sum(dim=1, keepdim=True) / n
    var = torch.where(valid, (x - mean) ** 2, torch.zeros_like(x)).sum(dim=1, keepdim=True) / (n - 1).clamp_min(1)
    std = var.sqrt()
    return torch.where(valid & (std > 0), (x - mean) / std.clamp_min(1e-12), torch.zeros_like(x))


def _candidates_first(mixed: torch.Tensor, valid: torch.Tensor, items: torch.Tensor,
                      base: torch.Tensor) -> torch.Tensor:
    """Scores of every item: the candidates' ``mixed`` scores, and below all of them every other
    item in ``base``'s order (a full ranking, as the two-stage ``recommend`` gives)."""
    low = torch.where(valid, mixed, torch.full_like(mixed, torch.inf)).min(dim=1, keepdim=True).values
    low = torch.where(torch.isfinite(low), low, torch.zeros_like(low))
    finite = torch.where(torch.isfinite(base), base, torch.full_like(base, float(base[torch.isfinite(base)].min())
                                                                      if torch.isfinite(base).any() else 0.0))
    top, bottom = finite.max(dim=1, keepdim=True).values, finite.min(dim=1, keepdim=True).values
    out = low - 2.0 + (finite - bottom) / (top - bottom).clamp_min(1e-12)  # in [low - 2, low - 1]
    rows, cols = valid.nonzero(as_tuple=True)
    out[rows, items[rows, cols]] = mixed[rows, cols]
    return out


def _candidate_mixes(pre: PretrainedRecommender, base: ScoreFn, exclude: sp.csr_matrix,
                     alphas: Iterable[float], raw_half: bool = False, base_top: int = BASE_TOP, k: int = 20):
    """:func:`_mixes` of a two-stage pair model: the network scores only its candidates plus
    the base's top ``base_top`` unmasked items (``exclude``: the masked items, users x items);
    alpha 0 is the base's own ranking, alpha 1 the network's over those candidates. A batch in
    which every user has ``k`` candidates or more yields ``(items, scores)`` of the candidates
    (the top ``k`` lies among them), else scores of every item (:func:`_candidates_first`)."""
    def variants(users: np.ndarray):
        b = _tensor(base(users))
        ex = exclude[users]
        top = masked_topk(b, ex, min(base_top, b.shape[1]))
        extra = np.where(torch.isfinite(top.values).numpy(), top.indices.numpy(), -1)
        got, a = pre.candidate_scores(users, ex, extra)
        items, valid = torch.from_numpy(np.maximum(got, 0)), torch.from_numpy(got >= 0)
        compact = bool((valid.sum(dim=1) >= k).all())

        def ranked(mixed: torch.Tensor):
            if compact:
                return got, torch.where(valid, mixed, torch.full_like(mixed, -torch.inf))
            return _candidates_first(mixed, valid, items, b)

        bc = b.gather(1, items)
        za = zb = None
        for alpha in alphas:
            if alpha == 0.0:
                yield 0.0, b
                continue
            if za is None:
                za, zb = _masked_zscore(a, valid), _masked_zscore(bc, valid)
            yield float(alpha), ranked(alpha * za + (1 - alpha) * zb)
        if raw_half:
            yield "raw_half", ranked(0.5 * a + 0.5 * bc)
    return variants


def _mixer(pretrained: Pretrained, base: ScoreFn, exclude: sp.csr_matrix, k: int) -> Callable:
    """``(alphas, raw_half) -> variants`` for :func:`rank_metrics_many` ranking the top ``k``:
    two-stage when the pretrained model ranks two-stage, else every item."""
    if isinstance(pretrained, PretrainedRecommender) and pretrained.two_stage:
        return lambda alphas, raw_half=False: _candidate_mixes(pretrained, base, exclude, alphas, raw_half, k=k)
    score = pretrained.score if isinstance(pretrained, PretrainedRecommender) else pretrained
    return lambda alphas, raw_half=False: _mixes(score, base, alphas, raw_half)


def choose_alpha(pretrained: Pretrained, base: ScoreFn, split: Split, alphas: Iterable[float] = ALPHAS,
                 metric: str = "ndcg@20") -> tuple[float, dict[float, float]]:
    """The alpha with the best validation ``metric`` (z-normalised scores); ties go to the smaller
    alpha. Each model scores the validation users once, whatever the number of alphas."""
    k = int(metric.split("@")[1])
    exclude, target = split_masks(split, "valid")
    res = rank_metrics_many(_mixer(pretrained, base, exclude, k)([float(a) for a in alphas]), exclude, target,
                            ks=(k,))
    curve = {a: r[metric] for a, r in res.items()}
    best = max(curve, key=lambda a: (curve[a], -a))
    return best, curve


def interpolation_report(pretrained: Pretrained, base: ScoreFn, split: Split, base_name: str,
                         ks: Iterable[int] = (10, 20)) -> dict:
    """Test metrics of the base, the pretrained model, the validation-chosen mix and the raw 0.5 mix
    (one test pass: each model scores every test user once); ``two_stage``: whether the mixes
    ranked candidates (module docstring)."""
    alpha, curve = choose_alpha(pretrained, base, split)
    exclude, target = split_masks(split, "test")
    ks = sorted(set(int(k) for k in ks))
    res = rank_metrics_many(_mixer(pretrained, base, exclude, ks[-1])(sorted({0.0, 1.0, alpha}), raw_half=True),
                            exclude, target, ks=ks)
    base_m, mixed, raw_half = res[0.0].metrics, res[alpha].metrics, res["raw_half"].metrics
    rel = lambda m: {f"rel_{k}": (m[k] - base_m[k]) / base_m[k] if base_m[k] else float("nan") for k in m}  # noqa: E731
    two_stage = isinstance(pretrained, PretrainedRecommender) and pretrained.two_stage
    return {"base": base_name, "alpha": alpha, "two_stage": two_stage, "valid_curve": curve, "base_test": base_m,
            "pretrained_test": res[1.0].metrics, "interpolated_test": {**mixed, **rel(mixed)},
            "raw_half_test": {**raw_half, **rel(raw_half)}}
