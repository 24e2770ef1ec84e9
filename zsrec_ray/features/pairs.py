"""Per-(user, item) features that mean the same in every domain.

For a batch of users, each feature is computed against all items of the domain with sparse
products and neighbour lists, then normalised within the user's candidate list:
``*_pct`` is the item's percentile rank among all items for that user (ties share the mid rank),
``*_rel`` the score divided by the user's best score. Memory is bounded by the batch: users x
items x features, never the whole domain.
"""

from __future__ import annotations

import numpy as np
import torch

from zsrec_ray.config import PairConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.errors import ConfigError
from zsrec_ray.features.neighbors import cosine_topk


def percentile_rank(scores: torch.Tensor, decimals: int = 6) -> torch.Tensor:
    """Row-wise mid-rank percentile in [0, 1]: (#smaller + #smaller-or-equal) / (2 n).

    Scores are rounded to ``decimals`` first, so equal scores summed in a different order (e.g.
    after relabelling ids) still tie; callers sum in float64 so rounding is not at a float32 edge.
    One sort per row: in sorted order, #smaller is where an element's tie group starts and
    #smaller-or-equal where it ends.
    """
    n = scores.shape[1]
    srt, order = torch.sort(torch.round(scores, decimals=decimals), dim=1)
    pos = torch.arange(n).expand_as(order)
    starts = torch.ones_like(order, dtype=torch.bool)
    starts[:, 1:] = srt[:, 1:] != srt[:, :-1]
    ends = torch.ones_like(starts)
    ends[:, :-1] = starts[:, 1:]
    less = torch.where(starts, pos, 0).cummax(dim=1).values
    leq = torch.where(ends, pos + 1, n).flip(1).cummin(dim=1).values.flip(1)
    out = torch.empty(order.shape, dtype=torch.float32)
    return out.scatter_(1, order, (less + leq).to(torch.float32) / (2.0 * n))


def relative_to_max(scores: torch.Tensor) -> torch.Tensor:
    """Each row divided by its maximum (rows with no positive score stay zero)."""
    top = scores.max(dim=1, keepdim=True).values
    return torch.where(top > 0, scores / top.clamp_min(1e-12), torch.zeros_like(scores))


class PairFeaturizer:
    """Pair features of one domain, from that domain's graph interactions (and embeddings) only."""

    def __init__(self, graph: Interactions, config: PairConfig, user_emb: np.ndarray | None = None,
                 item_emb: np.ndarray | None = None):
        self.config = config
        self.names = config.names()
        if not self.names:
            raise ConfigError("every pair feature is switched off")
        self.x = graph.to_csr().astype(np.float64)  # float64 sums: ties survive id relabelling
        self.n_users, self.n_items = self.x.shape
        if config.cosine:
            if user_emb is None or item_emb is None:
                raise ConfigError("the cosine pair feature needs co-occurrence embeddings (enable cooccurrence "
                                  "or interaction features)")
            self.user_unit = torch.from_numpy(_unit_rows(user_emb))
            self.item_unit = torch.from_numpy(_unit_rows(item_emb))
        if config.itemknn:
            # items x items, column = target item
            self.item_sim = cosine_topk(self.x, config.item_neighbors).astype(np.float64)
        if config.userknn:
            # row u: u's nearest users (cosine over their items)
            self.user_sim = cosine_topk(self.x.T, config.user_neighbors).T.tocsr().astype(np.float64)
        if config.popularity:
            deg = torch.from_numpy(np.asarray(self.x.sum(axis=0)).ravel())
            self.popularity = percentile_rank(deg[None, :])[0]

    @property
    def n_features(self) -> int:
        return len(self.names)

    def __call__(self, users: np.ndarray) -> torch.Tensor:
        """Features of ``users`` against every item: (len(users), n_items, n_features) float32."""
        users = np.asarray(users, dtype=np.int64)
        raw = {}
        if self.config.cosine:
            raw["cosine"] = (self.user_unit[torch.from_numpy(users)] @ self.item_unit.T).double()
        if self.config.itemknn:
            raw["itemknn"] = torch.from_numpy((self.x[users] @ self.item_sim).toarray())
        if self.config.userknn:
            raw["userknn"] = torch.from_numpy((self.user_sim[users] @ self.x).toarray())
        return self._normalise(raw, len(users))

    def empty_history(self) -> torch.Tensor:
        """Features of a user with no interactions (a cold-start user): every similarity is zero;
        (1, n_items, n_features)."""
        zeros = torch.zeros((1, self.n_items), dtype=torch.float64)
        return self._normalise({n: zeros for n in ("cosine", "itemknn", "userknn")}, 1)

    def _normalise(self, raw: dict[str, torch.Tensor], n_users: int) -> torch.Tensor:
        cols: list[torch.Tensor] = []
        if self.config.cosine:
            cols.append(percentile_rank(raw["cosine"]))
        for name in ("itemknn", "userknn"):
            if getattr(self.config, name):
                cols += [percentile_rank(raw[name]), relative_to_max(raw[name])]
        if self.config.popularity:
            cols.append(self.popularity.expand(n_users, -1))
        return torch.stack([c.float() for c in cols], dim=-1)


def _unit_rows(emb: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float32)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    return np.divide(emb, norm, out=np.zeros_like(emb), where=norm > 0)
