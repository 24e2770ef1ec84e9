"""Training: BPR triple sampling, the shared trainer (early stopping), pooled pretraining, and
the baseline registry that wires learned models to their trainer."""

from zsrec_ray.training.registry import BASELINES, build_model

__all__ = ["BASELINES", "build_model"]
