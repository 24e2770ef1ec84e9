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
