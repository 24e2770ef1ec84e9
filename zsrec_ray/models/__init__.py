"""Recommenders behind one interface (``Recommender``), and a registry to build them by name."""

from __future__ import annotations

from zsrec_ray.config import ModelsConfig
from zsrec_ray.errors import ConfigError
from zsrec_ray.models.base import NotFittedError, Recommender
from zsrec_ray.models.bpr_mf import BPRMF
from zsrec_ray.models.itemknn import ItemKNN
from zsrec_ray.models.lightgcn import LightGCN
from zsrec_ray.models.mostpop import MostPop

BASELINES = ("mostpop", "itemknn", "bpr_mf", "lightgcn")


def build_model(name: str, config: ModelsConfig | None = None, progress: bool = False) -> Recommender:
    """A fresh, unfitted recommender by registry name."""
    config = config or ModelsConfig()
    if name == "mostpop":
        return MostPop()
    if name == "itemknn":
        return ItemKNN(k=config.itemknn.k, shrink=config.itemknn.shrink)
    if name == "bpr_mf":
        return BPRMF(config.bpr_mf, progress=progress)
    if name == "lightgcn":
        return LightGCN(config.lightgcn, progress=progress)
    raise ConfigError(f"unknown model {name!r}; known: {', '.join(BASELINES)}")


__all__ = ["BASELINES", "BPRMF", "ItemKNN", "LightGCN", "MostPop", "NotFittedError", "Recommender", "build_model"]
