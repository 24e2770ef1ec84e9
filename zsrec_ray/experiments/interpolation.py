"""Post-hoc interpolation (paper eq. 11): score = alpha * s_pretrained + (1 - alpha) * s_base."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from zsrec_ray.data.splits import Split
from zsrec_ray.ranking.evaluator import ScoreFn, evaluate

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


def choose_alpha(pretrained: ScoreFn, base: ScoreFn, split: Split, alphas: Iterable[float] = ALPHAS,
                 metric: str = "ndcg@20") -> tuple[float, dict[float, float]]:
    """The alpha with the best validation ``metric`` (z-normalised scores); ties go to the smaller alpha."""
    k = int(metric.split("@")[1])
    curve = {float(a): evaluate(interpolated(pretrained, base, a), split, "valid", ks=(k,))[metric] for a in alphas}
    best = max(curve, key=lambda a: (curve[a], -a))
    return best, curve


def interpolation_report(pretrained: ScoreFn, base: ScoreFn, split: Split, base_name: str,
                         ks: Iterable[int] = (10, 20)) -> dict:
    """Test metrics of the base, the pretrained model, the validation-chosen mix and the raw 0.5 mix."""
    alpha, curve = choose_alpha(pretrained, base, split)
    ev = lambda fn: evaluate(fn, split, "test", ks=ks).metrics  # noqa: E731
    base_m = ev(base)
    mixed = ev(interpolated(pretrained, base, alpha))
    raw_half = ev(interpolated(pretrained, base, 0.5, normalise=False))
    rel = lambda m: {f"rel_{k}": (m[k] - base_m[k]) / base_m[k] if base_m[k] else float("nan") for k in m}  # noqa: E731
    return {"base": base_name, "alpha": alpha, "valid_curve": curve, "base_test": base_m,
            "pretrained_test": ev(pretrained), "interpolated_test": {**mixed, **rel(mixed)},
            "raw_half_test": {**raw_half, **rel(raw_half)}}
