"""The pretrained zero-shot recommender: featurize a domain, apply the frozen network, nothing trained.

This is the one scoring path of the pretrained network: evaluation, pretraining's validation,
the batch jobs and the Serve replicas all score and rank through :class:`PretrainedRecommender`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from zsrec_ray.config import FeatureConfig, PairConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.features.featureset import FeatureSet
from zsrec_ray.features.featurizer import featurize
from zsrec_ray.features.pairs import PairFeaturizer
from zsrec_ray.models.base import Recommender
from zsrec_ray.models.checkpoint import Checkpoint
from zsrec_ray.models.zeroshot_net import ZeroShotNet
from zsrec_ray.ranking.topk import masked_topk

Featurizer = Callable[[Interactions, FeatureConfig], FeatureSet]

#: Cells (users x items) scored per chunk, bounding memory of the pair scorer's hidden layer.
SCORE_CELLS = 2_000_000


@dataclass
class DomainFeatures:
    """Everything the network reads from one domain: node features and a pair featurizer."""

    features: FeatureSet
    pairs: PairFeaturizer | None

    @classmethod
    def build(cls, graph: Interactions, features: FeatureConfig, pairs: PairConfig | None,
              featurize_fn: Featurizer = featurize) -> "DomainFeatures":
        fs = featurize_fn(graph, features)
        pf = PairFeaturizer(graph, pairs, fs.user_emb, fs.item_emb) if pairs is not None else None
        return cls(fs, pf)

    def user_x(self) -> torch.Tensor:
        return torch.from_numpy(self.features.user)

    def item_x(self) -> torch.Tensor:
        return torch.from_numpy(self.features.item)


class PretrainedRecommender(Recommender):
    """Zero-shot: ``fit`` only featurizes the domain's interactions and caches the tower outputs.

    ``score`` / ``recommend`` run the pair scorer in chunks of at most :data:`SCORE_CELLS`
    (users x items) cells; ``cold_scores`` ranks for a user with no history in the domain.
    """

    name = "pretrained"

    def __init__(self, checkpoint: Checkpoint, featurize_fn: Featurizer = featurize) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.net: ZeroShotNet = checkpoint.net
        self.featurize_fn = featurize_fn

    @classmethod
    def on_domain(cls, net: ZeroShotNet, domain: DomainFeatures, train: Interactions) -> "PretrainedRecommender":
        """A fitted recommender over a network and a domain's already-built features (no checkpoint,
        no featurization): what pretraining validates with."""
        self = cls.__new__(cls)
        Recommender.__init__(self)
        self.checkpoint, self.net, self.featurize_fn = None, net, None
        self._attach(domain, train)
        return self

    @classmethod
    def from_features(cls, checkpoint: Checkpoint, train: Interactions,
                      features: FeatureSet) -> "PretrainedRecommender":
        """Fitted on ``train`` with its stored ``features`` (e.g. a served domain version)."""
        return cls(checkpoint, featurize_fn=lambda graph, config: features).fit(train)

    def fit(self, train: Interactions, valid: Interactions | None = None) -> "PretrainedRecommender":
        ck = self.checkpoint
        domain = DomainFeatures.build(train, ck.features, ck.pairs if ck.pair_names else None, self.featurize_fn)
        ck.check_schema(domain.features.schema())
        ck.net.eval()
        self._attach(domain, train)
        return self

    def _attach(self, domain: DomainFeatures, train: Interactions) -> None:
        self.domain_ = domain
        with torch.no_grad():
            self.towers_ = self.net.towers(domain.user_x(), domain.item_x())
        self.train_ = train

    def _score(self, users: np.ndarray) -> np.ndarray:
        tu_all, ti = self.towers_
        chunk = max(1, SCORE_CELLS // max(ti.shape[0], 1))
        out = np.empty((len(users), ti.shape[0]), dtype=np.float32)
        with torch.no_grad():
            for s in range(0, len(users), chunk):
                b = users[s:s + chunk]
                pf = self.domain_.pairs(b) if self.net.n_pair else None
                out[s:s + chunk] = self.net.score_all(tu_all[torch.from_numpy(b)], ti, pf).numpy()
        return out

    def cold_scores(self) -> np.ndarray:
        """Scores (n_items,) for a user unknown to the domain: zero-activity node features and the
        pair features of an empty history."""
        if self.train_ is None:
            self._check_users([])
        ti = self.towers_[1]
        with torch.no_grad():
            tu = self.net.user_tower(torch.zeros((1, self.domain_.features.user.shape[1])))
            pf = self.domain_.pairs.empty_history() if self.net.n_pair else None
            return self.net.score_all(tu, ti, pf)[0].numpy()

    def cold_recommend(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The top ``k`` (indices, scores) for a user unknown to the domain."""
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        top = masked_topk(self.cold_scores()[None, :], None, k)
        return top.indices[0].numpy(), top.values[0].numpy()
