"""ItemKNN: cosine item-item similarity over the training matrix, top-k neighbours per item."""

from __future__ import annotations

import numpy as np

from zsrec_ray.data.interactions import Interactions
from zsrec_ray.features.neighbors import cosine_topk
from zsrec_ray.models.base import Recommender


class ItemKNN(Recommender):
    name = "itemknn"

    def __init__(self, k: int = 100, shrink: float = 0.0) -> None:
        super().__init__()
        self.k = k
        self.shrink = shrink

    def fit(self, train: Interactions, valid: Interactions | None = None) -> "ItemKNN":
        self.train_ = train
        self.similarity_ = cosine_topk(train.to_csr(), self.k, self.shrink)
        return self

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.train_.to_csr()[users] @ self.similarity_).toarray().astype(np.float32, copy=False)
