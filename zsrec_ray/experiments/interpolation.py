"""Post-hoc interpolation (paper eq. 11): score = alpha * s_pretrained + (1 - alpha) * s_base."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from zsrec_ray.data.splits import Split
from zsrec_ray.ranking.evaluator import ScoreFn, rank_metrics_many, split_masks

ALPHAS = tuple(round(a, 1) for a in np.linspace(0, 1, 11))


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


def choose_alpha(pretrained: ScoreFn, base: ScoreFn, split: Split, alphas: Iterable[float] = ALPHAS,
                 metric: str = "ndcg@20") -> tuple[float, dict[float, float]]:
    """The alpha with the best validation ``metric`` (z-normalised scores); ties go to the smaller
    alpha. Each model scores the validation users once, whatever the number of alphas."""
    k = int(metric.split("@")[1])
    res = rank_metrics_many(_mixes(pretrained, base, [float(a) for a in alphas]), *split_masks(split, "valid"),
                            ks=(k,))
    curve = {a: r[metric] for a, r in res.items()}
    best = max(curve, key=lambda a: (curve[a], -a))
    return best, curve


def interpolation_report(pretrained: ScoreFn, base: ScoreFn, split: Split, base_name: str,
                         ks: Iterable[int] = (10, 20)) -> dict:
    """Test metrics of the base, the pretrained model, the validation-chosen mix and the raw 0.5 mix
    (one test pass: each model scores every test user once)."""
    alpha, curve = choose_alpha(pretrained, base, split)
    res = rank_metrics_many(_mixes(pretrained, base, sorted({0.0, 1.0, alpha}), raw_half=True),
                            *split_masks(split, "test"), ks=ks)
    base_m, mixed, raw_half = res[0.0].metrics, res[alpha].metrics, res["raw_half"].metrics
    rel = lambda m: {f"rel_{k}": (m[k] - base_m[k]) / base_m[k] if base_m[k] else float("nan") for k in m}  # noqa: E731
    return {"base": base_name, "alpha": alpha, "valid_curve": curve, "base_test": base_m,
            "pretrained_test": res[1.0].metrics, "interpolated_test": {**mixed, **rel(mixed)},
            "raw_half_test": {**raw_half, **rel(raw_half)}}
