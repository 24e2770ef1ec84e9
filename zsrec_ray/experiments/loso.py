"""Leave-one-source-out validation: the hyperparameter objective that never sees the target.

For every source ``h``, a ranker is pretrained on the other sources and ranks ``h``'s validation
items zero-shot (features from ``h``'s training split). Optionally its scores are blended with
ItemKNN fitted on ``h``'s training split (``alpha * z(pretrained) + (1 - alpha) * z(ItemKNN)``),
which is how the interpolation weight is searched. Folds advance one epoch at a time so a
scheduler can stop a poor configuration early.
"""

from __future__ import annotations

import numpy as np

from zsrec_ray.config import ZeroShotConfig
from zsrec_ray.experiments.interpolation import interpolated
from zsrec_ray.models.itemknn import ItemKNN
from zsrec_ray.models.pretrained import Featurizer
from zsrec_ray.ranking.evaluator import rank_metrics
from zsrec_ray.training.pretrain import (Pretrainer, SourceDomain, prepare_sources, source_ndcg20, source_ranker,
                                         validation_users)


class LeaveOneSourceOut:
    """``step()`` trains every fold one epoch and returns the held-out sources' mean validation NDCG@20."""

    def __init__(self, cfg: ZeroShotConfig, splits: dict, featurize_fn: Featurizer, alpha: float = 1.0):
        if len(splits) < 2:
            raise ValueError("leave-one-source-out needs at least two source domains")
        pairs = cfg.pairs if cfg.pretrain.model == "pair" else None
        prepared = prepare_sources(list(splits.values()), cfg.features, pairs, cfg.pretrain.graph_frac,
                                   cfg.pretrain.seed, featurize_fn)
        self.sources = dict(zip(splits, prepared))
        self.folds = {h: Pretrainer([s for n, s in self.sources.items() if n != h], cfg.features, cfg.pairs,
                                    cfg.pretrain) for h in self.sources}
        self.users = {h: validation_users(s, cfg.pretrain.valid_users, cfg.pretrain.seed)
                      for h, s in self.sources.items()}
        self.alpha = alpha
        self.candidates = cfg.pretrain.valid_candidates
        self.knn = {}
        if alpha < 1.0:
            self.knn = {h: ItemKNN(cfg.model.itemknn.k).fit(s.split.train) for h, s in self.sources.items()}

    @property
    def done(self) -> bool:
        return all(f.done for f in self.folds.values())

    def step(self) -> dict[str, float]:
        zs, blend = {}, {}
        for h, fold in self.folds.items():
            if not fold.done:
                fold.step()
            zs[h], blend[h] = self._heldout(fold, self.sources[h], self.users[h])
        row = {"zeroshot_ndcg@20": float(np.mean(list(zs.values()))),
               "blend_ndcg@20": float(np.mean(list(blend.values()))),
               **{f"zeroshot_ndcg@20/{h}": v for h, v in zs.items()}}
        return row

    def _heldout(self, fold: Pretrainer, src: SourceDomain, users: np.ndarray) -> tuple[float, float]:
        net = fold.checkpoint().net  # the fold's best epoch so far
        zs = source_ndcg20(net, src, users, self.candidates)
        if src.name not in self.knn:
            return zs, zs
        fn = interpolated(source_ranker(net, src).score, self.knn[src.name].score, self.alpha)
        seen, valid = src.split.train.to_csr(), src.split.valid.to_csr()
        return zs, rank_metrics(fn, seen, valid, ks=(20,), users=users)["ndcg@20"]
