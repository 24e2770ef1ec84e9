"""MostPop: every user gets the items ranked by training popularity."""

from __future__ import annotations

import numpy as np

from zsrec_ray.data.interactions import Interactions
from zsrec_ray.models.base import Recommender


class MostPop(Recommender):
    name = "mostpop"

    def fit(self, train: Interactions, valid: Interactions | None = None) -> "MostPop":
        self.train_ = train
        self.popularity_ = np.diff(train.to_csr().tocsc().indptr).astype(np.float32)
        return self

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (len(users), len(self.popularity_)))
