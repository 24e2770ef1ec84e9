"""Baseline recommenders by name, the learned ones wired to the shared BPR trainer."""

from __future__ import annotations

from zsrec_ray.config import ModelsConfig
from zsrec_ray.errors import ConfigError
from zsrec_ray.models import BPRMF, EASE, ItemKNN, LightGCN, MostPop, Recommender, RP3beta
from zsrec_ray.training.loop import fit_bpr

BASELINES = ("mostpop", "itemknn", "ease", "rp3beta", "bpr_mf", "lightgcn")


def build_model(name: str, config: ModelsConfig | None = None, progress: bool = False) -> Recommender:
    """A fresh, unfitted recommender by registry name."""
    config = config or ModelsConfig()
    if name == "mostpop":
        return MostPop()
    if name == "itemknn":
        return ItemKNN(k=config.itemknn.k, shrink=config.itemknn.shrink)
    if name == "ease":
        return EASE(l2=tuple(config.ease.l2), max_items=config.ease.max_items)
    if name == "rp3beta":
        return RP3beta(alpha=tuple(config.rp3beta.alpha), beta=tuple(config.rp3beta.beta), k=tuple(config.rp3beta.k))
    if name == "bpr_mf":
        return BPRMF(config.bpr_mf, fit_bpr, progress=progress)
    if name == "lightgcn":
        return LightGCN(config.lightgcn, fit_bpr, progress=progress)
    raise ConfigError(f"unknown model {name!r}; known: {', '.join(BASELINES)}")
