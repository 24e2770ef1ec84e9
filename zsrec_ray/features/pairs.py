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

#: Up to this many items per user, a dense percentile is found by counting instead of sorting.
COMPARE_BELOW = 8


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

    def candidates(self, users: np.ndarray, size: int,
                   exclude=None) -> tuple[np.ndarray, torch.Tensor]:
        """Each user's candidate items and their pair features, without scoring every item.

        Candidates are drawn in turn from four lists, best first: the item-kNN neighbours of the
        user's history, the items of the user's nearest users, the items closest to the user in
        the co-occurrence embedding, and the most popular items; items in row ``r`` of
        ``exclude`` (len(users) x n_items) are skipped; at most ``size`` per user. Returns
        (items (len(users), size) int64, -1 where a user has fewer; features (len(users), size,
        n_features) float32, equal to :meth:`__call__`'s at those items: percentiles are exact,
        from the sorted non-zeros of the sparse scores (the zeros tie at the bottom) and one sorted
        row of the dense cosine).
        """
        users = np.asarray(users, dtype=np.int64)
        size = min(int(size), self.n_items)
        sparse, cosine = self._raw_rows(users)
        exclude = None if exclude is None else exclude.tocsr()
        items = np.full((len(users), size), -1, dtype=np.int64)
        for r in range(len(users)):
            lists = [_row_top(sparse[n], r) for n in ("itemknn", "userknn") if n in sparse]
            if cosine is not None:
                row = cosine[r]
                top = np.argpartition(-row, min(size, self.n_items - 1))[:size]
                lists.append(top[np.argsort(-row[top], kind="stable")])
            lists.append(self.popular_order[:size])
            skip = exclude.indices[exclude.indptr[r]:exclude.indptr[r + 1]] if exclude is not None else ()
            chosen = _interleave(lists, size, skip)
            items[r, :len(chosen)] = chosen
        return items, self._candidate_features(items, sparse, cosine)

    def at(self, users: np.ndarray, items: np.ndarray) -> torch.Tensor:
        """Features of the pairs (``users[r]``, ``items[r]``): (len(users), n_features) float32,
        equal to :meth:`__call__`'s at those pairs, without a row per item: each distinct user's
        sparse scores, its sorted non-zeros and one sorted cosine row give exact percentiles for
        all of its pairs at once."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = torch.empty((len(users), self.n_features))
        if not len(users):
            return out
        uniq, inv = np.unique(users, return_inverse=True)
        order = np.argsort(inv, kind="stable")
        counts = np.bincount(inv, minlength=len(uniq))
        col = np.arange(len(users)) - np.repeat(np.cumsum(counts) - counts, counts)  # position within its user
        grid = np.full((len(uniq), int(counts.max())), -1, dtype=np.int64)
        grid[inv[order], col] = items[order]
        feats = self._candidate_features(grid, *self._raw_rows(uniq))
        out[torch.from_numpy(order)] = feats[torch.from_numpy(inv[order]), torch.from_numpy(col)]
        return out

    def _raw_rows(self, users: np.ndarray) -> tuple[dict, np.ndarray | None]:
        """Raw scores of ``users``: the sparse ones (item-kNN, user-kNN) as CSR rows, the cosine as
        dense float64 rows (None when off)."""
        cfg = self.config
        sparse = {}
        if cfg.itemknn:
            sparse["itemknn"] = (self.x[users] @ self.item_sim).tocsr()
        if cfg.userknn:
            sparse["userknn"] = (self.user_sim[users] @ self.x).tocsr()
        cosine = (self.user_unit[torch.from_numpy(users)] @ self.item_unit.T).double().numpy() if cfg.cosine else None
        return sparse, cosine

    def _candidate_features(self, items: np.ndarray, sparse: dict, cosine: np.ndarray | None) -> torch.Tensor:
        valid = np.maximum(items, 0)
        cols: list[np.ndarray] = []
        if cosine is not None:
            rounded = np.round(cosine, 6)
            vals = np.take_along_axis(rounded, valid, axis=1)
            pct = np.zeros(items.shape)
            for r in range(len(items)):
                k = int((items[r] >= 0).sum())  # a user's items come first, padding (-1) after
                if k <= COMPARE_BELOW:  # a few items: counting is cheaper than sorting the row
                    pct[r, :k] = _mid_rank_by_count(rounded[r], vals[r, :k], self.n_items)
                else:
                    pct[r] = _mid_rank(np.sort(rounded[r]), vals[r], self.n_items)
            cols.append(pct)
        for name in ("itemknn", "userknn"):
            if name in sparse:
                pct, rel = _sparse_pct_rel(sparse[name], valid, self.n_items)
                cols += [pct, rel]
        if self.config.popularity:
            cols.append(self.popularity.numpy()[valid])
        out = torch.from_numpy(np.stack(cols, axis=-1).astype(np.float32))
        out[torch.from_numpy(items < 0)] = 0.0
        return out

    @property
    def popular_order(self) -> np.ndarray:
        """Item ids by training popularity, most popular first (ties by id)."""
        if not hasattr(self, "_popular_order"):
            deg = np.asarray(self.x.sum(axis=0)).ravel()
            self._popular_order = np.lexsort((np.arange(len(deg)), -deg))
        return self._popular_order

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


def _row_top(m, r: int) -> np.ndarray:
    """Column ids of row ``r``'s positive entries of CSR ``m``, highest value first (ties by id)."""
    lo, hi = m.indptr[r], m.indptr[r + 1]
    cols, vals = m.indices[lo:hi], m.data[lo:hi]
    keep = vals > 0
    cols, vals = cols[keep], vals[keep]
    return cols[np.lexsort((cols, -vals))]


def _interleave(lists: list[np.ndarray], size: int, skip) -> np.ndarray:
    """Up to ``size`` distinct ids taken from ``lists`` in turn (the first of each, then the second
    of each, ...), leaving out ``skip``."""
    depth = max((len(x) for x in lists), default=0)
    grid = np.full((len(lists), depth), -1, dtype=np.int64)
    for i, x in enumerate(lists):
        grid[i, :len(x)] = x
    order = grid.T.ravel()
    order = order[order >= 0]
    if len(skip):
        order = order[~np.isin(order, skip)]
    _, first = np.unique(order, return_index=True)
    return order[np.sort(first)][:size]


def _mid_rank(sorted_row: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Mid-rank percentile (#smaller + #smaller-or-equal) / (2 n) of ``values`` in a sorted row."""
    less = np.searchsorted(sorted_row, values, side="left")
    leq = np.searchsorted(sorted_row, values, side="right")
    return (less + leq) / (2.0 * n)


def _mid_rank_by_count(row: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """:func:`_mid_rank` of ``values`` in an unsorted ``row``, by counting (len(values) x n work)."""
    less = (row[None, :] < values[:, None]).sum(axis=1)
    leq = (row[None, :] <= values[:, None]).sum(axis=1)
    return (less + leq) / (2.0 * n)


def _sparse_pct_rel(m, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Percentile and relative-to-max of CSR rows ``m`` at ``items`` (rows x candidates), as
    :func:`percentile_rank` / :func:`relative_to_max` give over all ``n`` columns: from the
    row's non-zeros only, the zeros tying at the bottom."""
    pct = np.empty(items.shape)
    rel = np.zeros(items.shape)
    for r in range(items.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        cols, data = m.indices[lo:hi], m.data[lo:hi]
        order = np.argsort(cols)
        cols, data = cols[order], data[order]
        at = np.searchsorted(cols, items[r])
        hit = (at < len(cols)) & (cols[np.minimum(at, len(cols) - 1)] == items[r]) if len(cols) else \
            np.zeros(len(items[r]), dtype=bool)
        vals = np.where(hit, data[np.minimum(at, max(len(cols) - 1, 0))] if len(cols) else 0.0, 0.0)
        rounded = np.round(data, 6)
        nz = np.sort(rounded[rounded != 0])
        zeros = n - len(nz)
        v = np.round(vals, 6)
        less = np.searchsorted(nz, v, side="left") + zeros * (v > 0)
        leq = np.searchsorted(nz, v, side="right") + zeros * (v >= 0)
        pct[r] = (less + leq) / (2.0 * n)
        top = max(float(data.max()) if len(data) else 0.0, 0.0)
        if top > 0:
            rel[r] = vals / top
    return pct, rel


def _unit_rows(emb: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float32)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    return np.divide(emb, norm, out=np.zeros_like(emb), where=norm > 0)
