"""The recommender interface every model implements: fit on a domain's training interactions,
score users against all items, recommend each user's top k.

A model defines how it learns and how it scores; masking and top-k go through
:func:`zsrec_ray.ranking.masked_topk`, and metrics belong to the evaluator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol

import numpy as np
import scipy.sparse as sp

from zsrec_ray.data.interactions import Interactions
from zsrec_ray.errors import ZsrecError
from zsrec_ray.ranking.topk import masked_topk

#: Cells (users x items) of one scored block in :meth:`Recommender.recommend`: bounds its memory.
RECOMMEND_CELLS = 4_000_000


class NotFittedError(ZsrecError):
    """A recommender was used before ``fit``."""


class Recommender(ABC):
    """Fit on a domain's training interactions; ``score`` ranks all items of that domain and
    ``recommend`` returns each user's top k, in blocks of users whose memory is bounded."""

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

    def _check_users(self, users) -> np.ndarray:
        if self.train_ is None:
            raise NotFittedError(f"{self.name}: call fit() first")
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        if users.size and (users.min() < 0 or users.max() >= self.train_.n_users):
            raise ValueError(f"{self.name}: user ids must lie in [0, {self.train_.n_users})")
        return users

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of every item for each of ``users`` (internal ids), shape (len(users), n_items)."""
        return self._score(self._check_users(users))

    def recommend(self, users: np.ndarray, k: int,
                  exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each user's top ``k`` items: (indices int64, scores float32), both (len(users), min(k, n_items)),
        best first. Row ``r`` of ``exclude`` (len(users) x n_items) lists items user ``r`` must not get;
        they appear (score -inf) only when fewer than ``k`` items are left."""
        users, k, exclude = self._recommend_args(users, k, exclude)
        idx = np.empty((len(users), k), dtype=np.int64)
        val = np.empty((len(users), k), dtype=np.float32)
        step = max(1, RECOMMEND_CELLS // max(self.n_items, 1))
        for s in range(0, len(users), step):
            top = masked_topk(self._score(users[s:s + step]), None if exclude is None else exclude[s:s + step], k)
            idx[s:s + step], val[s:s + step] = top.indices.numpy(), top.values.numpy()
        return idx, val

    def _recommend_args(self, users, k: int, exclude) -> tuple[np.ndarray, int, sp.csr_matrix | None]:
        """Checked ``recommend`` arguments: internal user ids, k capped at n_items, exclude as CSR."""
        users = self._check_users(users)
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        k = min(int(k), self.n_items)
        if exclude is not None:
            exclude = sp.csr_matrix(exclude)
            if exclude.shape != (len(users), self.n_items):
                raise ValueError(f"exclude must be (len(users), n_items) = {(len(users), self.n_items)}, "
                                 f"got {exclude.shape}")
        return users, k, exclude

    @property
    def n_items(self) -> int:
        if self.train_ is None:
            raise NotFittedError(f"{self.name}: call fit() first")
        return self.train_.n_items


class BPRTrainer(Protocol):
    """Fits a module with ``bpr_loss(u, i, j)`` and ``scorer()`` on ``train`` (early-stopping on
    ``valid``), leaves the best weights in it and returns a report dict."""

    def __call__(self, module: Any, train: Interactions, valid: Interactions | None, config: Any,
                 batch_size: int, progress: bool) -> dict: ...


class BPRRecommender(Recommender):
    """A recommender whose torch module defines a BPR loss and a full scorer; fitting it is the
    given trainer's job (``zsrec_ray.training.build_model`` passes the shared BPR trainer)."""

    def __init__(self, config, trainer: BPRTrainer, progress: bool = False) -> None:
        super().__init__()
        self.config = config
        self.trainer = trainer
        self.progress = progress

    @abstractmethod
    def build_module(self, train: Interactions):
        """A fresh module with ``bpr_loss(u, i, j)`` and ``scorer()``."""

    def batch_size(self, train: Interactions) -> int:
        return self.config.batch_size

    def fit(self, train: Interactions, valid: Interactions | None = None) -> "BPRRecommender":
        import torch

        torch.manual_seed(self.config.seed)
        self.train_ = train
        self.module_ = self.build_module(train)
        self.fit_report = self.trainer(self.module_, train, valid, self.config, self.batch_size(train),
                                       self.progress)
        self._scorer = self.module_.scorer()
        return self

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._scorer(users).numpy()
