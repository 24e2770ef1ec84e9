"""Baseline recommenders by name, the learned ones wired to the shared BPR trainer."""

from __future__ import annotations

from zsrec_ray.config import ModelsConfig
from zsrec_ray.errors import ConfigError
from zsrec_ray.models import BPRMF, ItemKNN, LightGCN, MostPop, Recommender
from zsrec_ray.training.loop import fit_bpr

BASELINES = ("mostpop", "itemknn", "bpr_mf", "lightgcn")


def build_model(name: str, config: ModelsConfig | None = None, progress: bool = False) -> Recommender:
    """A fresh, unfitted recommender by registry name."""
    config = config or ModelsConfig()
    if name == "mostpop":
        return MostPop()
    if name == "itemknn":
        return ItemKNN(k=config.itemknn.k, shrink=config.itemknn.shrink)
    if name == "bpr_mf":
        return BPRMF(config.bpr_mf, fit_bpr, progress=progress)
    if name == "lightgcn":
        return LightGCN(config.lightgcn, fit_bpr, progress=progress)
    raise ConfigError(f"unknown model {name!r}; known: {', '.join(BASELINES)}")
