"""The recommender interface every model implements: fit on training interactions, score users against all items."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from zsrec_ray.data.interactions import Interactions
from zsrec_ray.errors import ZsrecError


class NotFittedError(ZsrecError):
    """A recommender was used before ``fit``."""


class Recommender(ABC):
    """Fit on a domain's training interactions; ``score`` ranks all items of that domain.

    Masking of known items and top-k belong to the evaluator, not to the model.
    """

    name: ClassVar[str]

    def __init__(self) -> None:
        self.train_: Interactions | None = None
        self.fit_report: dict = {}

    @abstractmethod
    def fit(self, train: Interactions, valid: Interactions | None = None) -> "Recommender":
        """Learn from ``train``; learned models may early-stop on ``valid`` (same id space)."""

    @abstractmethod
    def _score(self, users: np.ndarray) -> np.ndarray:
        """Scores of shape (len(users), n_items), float32."""

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of every item for each of ``users`` (internal ids), shape (len(users), n_items)."""
        if self.train_ is None:
            raise NotFittedError(f"{self.name}: call fit() before score()")
        users = np.asarray(users, dtype=np.int64)
        if users.size and (users.min() < 0 or users.max() >= self.train_.n_users):
            raise ValueError(f"{self.name}: user ids must lie in [0, {self.train_.n_users})")
        return self._score(users)

    @property
    def n_items(self) -> int:
        assert self.train_ is not None
        return self.train_.n_items


class BPRRecommender(Recommender):
    """A recommender whose torch module is trained by the shared BPR loop (early stopping on valid)."""

    def __init__(self, config, progress: bool = False) -> None:
        super().__init__()
        self.config = config
        self.progress = progress

    @abstractmethod
    def build_module(self, train: Interactions):
        """A fresh module with ``bpr_loss(u, i, j)`` and ``scorer()``."""

    def batch_size(self, train: Interactions) -> int:
        return self.config.batch_size

    def fit(self, train: Interactions, valid: Interactions | None = None) -> "BPRRecommender":
        import torch

        from zsrec_ray.training.loop import LoopConfig, train_bpr

        c = self.config
        torch.manual_seed(c.seed)
        self.train_ = train
        self.module_ = self.build_module(train)
        loop = LoopConfig(lr=c.lr, batch_size=self.batch_size(train), epochs=c.epochs, patience=c.patience,
                          eval_every=c.eval_every, weight_decay=getattr(c, "weight_decay", 0.0), seed=c.seed,
                          progress=self.progress)
        report = train_bpr(self.module_, train.user, train.item, train.to_csr(), loop,
                           valid=None if valid is None else valid.to_csr())
        self.fit_report = report.to_dict()
        self._scorer = self.module_.scorer()
        return self

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._scorer(users).numpy()
