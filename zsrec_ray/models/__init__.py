"""Recommenders behind one interface (``Recommender``: fit, score, recommend).

Build baselines by name with :func:`zsrec_ray.training.build_model`, which gives the learned
ones their trainer.
"""

from __future__ import annotations

from zsrec_ray.models.base import NotFittedError, Recommender
from zsrec_ray.models.bpr_mf import BPRMF
from zsrec_ray.models.ease import EASE
from zsrec_ray.models.itemknn import ItemKNN
from zsrec_ray.models.lightgcn import LightGCN
from zsrec_ray.models.mostpop import MostPop
from zsrec_ray.models.rp3beta import RP3beta

__all__ = ["BPRMF", "EASE", "ItemKNN", "LightGCN", "MostPop", "NotFittedError", "RP3beta", "Recommender"]
