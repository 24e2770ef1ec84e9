"""The pretrained zero-shot recommender: featurize a domain, apply the frozen network, nothing trained.

This is the one scoring path of the pretrained network: evaluation, pretraining's validation,
the batch jobs and the Serve replicas all score and rank through :class:`PretrainedRecommender`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

from zsrec_ray.config import FeatureConfig, PairConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.features.featureset import FeatureSet
from zsrec_ray.features.featurizer import featurize
from zsrec_ray.features.pairs import PairFeaturizer
from zsrec_ray.models.base import RECOMMEND_CELLS, Recommender
from zsrec_ray.models.checkpoint import Checkpoint
from zsrec_ray.models.zeroshot_net import ZeroShotNet
from zsrec_ray.ranking.topk import masked_topk

Featurizer = Callable[[Interactions, FeatureConfig], FeatureSet]

#: Cells (users x items) scored per chunk, bounding memory of the pair scorer's hidden layer.
SCORE_CELLS = 2_000_000
#: Two-stage ranking with at least this share of the catalogue as candidates scores every item instead.
EXHAUSTIVE_SHARE = 0.5
#: Fewest users ranked together by two-stage ranking.
MIN_BLOCK_USERS = 32


@dataclass
class DomainFeatures:
    """Everything the network reads from one domain: node features and a pair featurizer."""

    features: FeatureSet
    pairs: PairFeaturizer | None
    #: seconds spent building: ``node_features_s`` (featurizer or its cache), ``neighbours_s`` (pair featurizer)
    seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(cls, graph: Interactions, features: FeatureConfig, pairs: PairConfig | None,
              featurize_fn: Featurizer = featurize, neighbours: dict | None = None) -> "DomainFeatures":
        """``neighbours``: precomputed pair-feature neighbour lists (:func:`~zsrec_ray.features.pairs.neighbour_lists`)."""
        t0 = time.perf_counter()
        fs = featurize_fn(graph, features)
        t1 = time.perf_counter()
        pf = PairFeaturizer(graph, pairs, fs.user_emb, fs.item_emb, neighbours) if pairs is not None else None
        return cls(fs, pf, {"node_features_s": t1 - t0, "neighbours_s": time.perf_counter() - t1})

    def user_x(self) -> torch.Tensor:
        return torch.from_numpy(self.features.user)

    def item_x(self) -> torch.Tensor:
        return torch.from_numpy(self.features.item)


class PretrainedRecommender(Recommender):
    """Zero-shot: ``fit`` only featurizes the domain's interactions and caches the tower outputs.

    ``score`` / ``recommend`` run the pair scorer in chunks of at most :data:`SCORE_CELLS`
    (users x items) cells; ``cold_scores`` ranks for a user with no history in the domain.

    With ``candidates`` (pair model only), ``recommend`` is two-stage: each user's candidates come
    from the domain's structure (:meth:`PairFeaturizer.candidates`: item-kNN neighbours of the
    history, nearest users' items, embedding neighbours, popular items), the pair scorer ranks
    only those (with exact pair features), and items outside the candidates follow, by
    popularity. Without it, or when ``candidates`` is half the catalogue or more, every item is
    scored (the reference).

    ``timings`` adds up where the time goes: ``node_features_s`` and ``neighbours_s`` (``fit``),
    ``pair_features_s`` (candidates and their pair features, or every item's) and ``network_s``
    (the towers, the pair scorer and, two-stage, the top-k).
    """

    name = "pretrained"

    def __init__(self, checkpoint: Checkpoint, featurize_fn: Featurizer = featurize,
                 candidates: int | None = None) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.net: ZeroShotNet = checkpoint.net
        self.featurize_fn = featurize_fn
        self.candidates = candidates
        self.neighbours: dict | None = None  # precomputed pair-feature neighbour lists, used by fit
        self.candidate_memo: dict | None = None
        self.timings: dict[str, float] = {}

    @classmethod
    def on_domain(cls, net: ZeroShotNet, domain: DomainFeatures, train: Interactions,
                  candidates: int | None = None, candidate_memo: dict | None = None) -> "PretrainedRecommender":
        """A fitted recommender over a network and a domain's already-built features (no checkpoint,
        no featurization): what pretraining validates with. ``candidate_memo``: a dict kept by the
        caller across networks on the same domain; each block's candidates and their pair features
        (which depend on the domain only, not on the network) are computed once into it."""
        self = cls.__new__(cls)
        Recommender.__init__(self)
        self.checkpoint, self.net, self.featurize_fn, self.candidates = None, net, None, candidates
        self.neighbours, self.candidate_memo, self.timings = None, candidate_memo, {}
        self._attach(domain, train)
        return self

    @classmethod
    def from_features(cls, checkpoint: Checkpoint, train: Interactions, features: FeatureSet,
                      candidates: int | None = None, neighbours: dict | None = None) -> "PretrainedRecommender":
        """Fitted on ``train`` with its stored ``features`` (and pair-feature ``neighbours`` when
        stored too), e.g. a served domain version."""
        model = cls(checkpoint, featurize_fn=lambda graph, config: features, candidates=candidates)
        model.neighbours = neighbours
        return model.fit(train)

    def fit(self, train: Interactions, valid: Interactions | None = None) -> "PretrainedRecommender":
        ck = self.checkpoint
        domain = DomainFeatures.build(train, ck.features, ck.pairs if ck.pair_names else None, self.featurize_fn,
                                      self.neighbours)
        ck.check_schema(domain.features.schema())
        ck.net.eval()
        self._attach(domain, train)
        return self

    def _attach(self, domain: DomainFeatures, train: Interactions) -> None:
        self.domain_ = domain
        t0 = time.perf_counter()
        with torch.no_grad():
            self.towers_ = self.net.towers(domain.user_x(), domain.item_x())
        self.train_ = train
        self.timings = {**domain.seconds, "pair_features_s": 0.0, "network_s": time.perf_counter() - t0}

    def _add_time(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - since
        return now

    def _score(self, users: np.ndarray) -> np.ndarray:
        tu_all, ti = self.towers_
        chunk = max(1, SCORE_CELLS // max(ti.shape[0], 1))
        out = np.empty((len(users), ti.shape[0]), dtype=np.float32)
        with torch.no_grad():
            for s in range(0, len(users), chunk):
                b = users[s:s + chunk]
                t = time.perf_counter()
                pf = self.domain_.pairs(b) if self.net.n_pair else None
                t = self._add_time("pair_features_s", t)
                out[s:s + chunk] = self.net.score_all(tu_all[torch.from_numpy(b)], ti, pf).numpy()
                self._add_time("network_s", t)
        return out

    @property
    def two_stage(self) -> bool:
        """Whether ``recommend`` ranks candidates only: a pair model with ``candidates`` under
        :data:`EXHAUSTIVE_SHARE` of the catalogue (more cost more than scoring every item)."""
        return self.candidates is not None and bool(self.net.n_pair) and \
            self.candidates < EXHAUSTIVE_SHARE * self.n_items

    def _block_users(self, size: int) -> int:
        """Users per two-stage block: a block holds (users x items) rows of a few raw scores and
        (users x size) candidates; at least MIN_BLOCK_USERS users, so a large catalogue's
        per-block work is shared by many users."""
        return max(MIN_BLOCK_USERS, min(SCORE_CELLS // size, RECOMMEND_CELLS // max(self.n_items, 1)))

    def recommend(self, users: np.ndarray, k: int,
                  exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
        if not self.two_stage:
            return super().recommend(users, k, exclude)
        users, k, exclude = self._recommend_args(users, k, exclude)
        size = max(int(self.candidates), k)
        idx = np.empty((len(users), k), dtype=np.int64)
        val = np.empty((len(users), k), dtype=np.float32)
        step = self._block_users(size)
        for s in range(0, len(users), step):
            block = exclude[s:s + step] if exclude is not None else None
            idx[s:s + step], val[s:s + step] = self._two_stage(users[s:s + step], k, size, block)
        return idx, val

    def candidate_scores(self, users: np.ndarray, exclude: sp.csr_matrix | None = None,
                         extra: np.ndarray | None = None) -> tuple[np.ndarray, torch.Tensor]:
        """The two-stage ranking's candidates and their network scores, before the top-k: each
        user's ``candidates`` items (skipping row ``r`` of ``exclude``) plus the items of row
        ``r`` of ``extra`` not among them (-1 where none). Returns (items (len(users), c), -1
        where none; scores (len(users), c) float32, -inf where -1)."""
        users, _, exclude = self._recommend_args(users, 1, exclude)
        width = int(self.candidates) + (0 if extra is None else extra.shape[1])
        items = np.full((len(users), width), -1, dtype=np.int64)
        scores = torch.full((len(users), width), -torch.inf)
        tu_all, ti = self.towers_
        step = self._block_users(width)
        for s in range(0, len(users), step):
            b = users[s:s + step]
            t = time.perf_counter()
            block = None if exclude is None else exclude[s:s + step]
            got, pf = self.domain_.pairs.candidates(b, int(self.candidates), block,
                                                    None if extra is None else extra[s:s + step])
            t = self._add_time("pair_features_s", t)
            with torch.no_grad():
                sc = self.net.score_candidates(tu_all[torch.from_numpy(b)], ti,
                                               torch.from_numpy(np.maximum(got, 0)), pf)
            sc[torch.from_numpy(got < 0)] = -torch.inf
            items[s:s + step, :got.shape[1]], scores[s:s + step, :got.shape[1]] = got, sc
            self._add_time("network_s", t)
        return items, scores

    def _two_stage(self, users: np.ndarray, k: int, size: int,
                   exclude: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
        t = time.perf_counter()
        items, pf = self._candidates(users, size, exclude)
        t = self._add_time("pair_features_s", t)
        tu_all, ti = self.towers_
        b, c = items.shape
        with torch.no_grad():
            scores = self.net.score_candidates(tu_all[torch.from_numpy(users)], ti,
                                               torch.from_numpy(np.maximum(items, 0)), pf)
        scores[torch.from_numpy(items < 0)] = -torch.inf
        top = torch.topk(scores, min(k, c), dim=1, sorted=True)
        idx = np.take_along_axis(items, top.indices.numpy(), axis=1)
        val = top.values.numpy().astype(np.float32)
        self._add_time("network_s", t)
        short = np.flatnonzero(~np.isfinite(val).all(axis=1)) if k <= c else np.arange(b)
        if not len(short):
            return idx, val
        full_idx = np.empty((b, k), dtype=np.int64)
        full_val = np.empty((b, k), dtype=np.float32)
        full_idx[:, :idx.shape[1]], full_val[:, :idx.shape[1]] = idx, val
        for r in short:  # fewer than k candidates: the rest by popularity, below every candidate
            have = idx[r][np.isfinite(val[r])]
            skip = exclude.indices[exclude.indptr[r]:exclude.indptr[r + 1]] if exclude is not None else []
            order = self.domain_.pairs.popular_order
            rest = order[~np.isin(order, have)]
            masked = np.isin(rest, skip)
            rest = np.concatenate([rest[~masked], rest[masked]])[:k - len(have)]
            low = float(val[r][np.isfinite(val[r])].min()) if len(have) else 0.0
            fill = (low - 1.0 - np.arange(len(rest)) / max(len(rest), 1)).astype(np.float32)
            fill[np.isin(rest, skip)] = -np.inf
            full_idx[r] = np.concatenate([have, rest])
            full_val[r] = np.concatenate([val[r][np.isfinite(val[r])], fill])
        return full_idx, full_val

    def _candidates(self, users: np.ndarray, size: int, exclude: sp.csr_matrix | None) -> tuple[np.ndarray, torch.Tensor]:
        """:meth:`PairFeaturizer.candidates`, through ``candidate_memo`` when there is one."""
        if self.candidate_memo is None:
            return self.domain_.pairs.candidates(users, size, exclude)
        key = (size, users.tobytes(), None if exclude is None else (exclude.indptr.tobytes(), exclude.indices.tobytes()))
        if key not in self.candidate_memo:
            self.candidate_memo[key] = self.domain_.pairs.candidates(users, size, exclude)
        return self.candidate_memo[key]

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
