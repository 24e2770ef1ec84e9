"""The pretrained zero-shot recommender: featurize a domain, apply the frozen network, nothing trained."""

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


def score_users(net: ZeroShotNet, domain: DomainFeatures, users: np.ndarray,
                towers: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Scores (len(users), n_items) of the frozen network, computed in memory-bounded chunks."""
    with torch.no_grad():
        tu_all, ti = towers if towers is not None else net.towers(domain.user_x(), domain.item_x())
        users = np.asarray(users, dtype=np.int64)
        chunk = max(1, SCORE_CELLS // max(ti.shape[0], 1))
        out = []
        for s in range(0, len(users), chunk):
            b = users[s:s + chunk]
            pf = domain.pairs(b) if net.n_pair else None
            out.append(net.score_all(tu_all[torch.from_numpy(b)], ti, pf))
        return torch.cat(out) if out else torch.zeros((0, ti.shape[0]))


class PretrainedRecommender(Recommender):
    """Zero-shot: ``fit`` only featurizes the domain's interactions and caches the tower outputs."""

    name = "pretrained"

    def __init__(self, checkpoint: Checkpoint, featurize_fn: Featurizer = featurize) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.featurize_fn = featurize_fn

    def fit(self, train: Interactions, valid: Interactions | None = None) -> "PretrainedRecommender":
        ck = self.checkpoint
        self.domain_ = DomainFeatures.build(train, ck.features, ck.pairs if ck.pair_names else None,
                                            self.featurize_fn)
        ck.check_schema(self.domain_.features.schema())
        ck.net.eval()
        with torch.no_grad():
            self.towers_ = ck.net.towers(self.domain_.user_x(), self.domain_.item_x())
        self.train_ = train
        return self

    def _score(self, users: np.ndarray) -> np.ndarray:
        return score_users(self.checkpoint.net, self.domain_, users, self.towers_).numpy()
