"""Per-(user, item) features that mean the same in every domain.

For a batch of users, each feature is computed against all items of the domain with sparse
products and neighbour lists, then normalised within the user's candidate list:
``*_pct`` is the item's percentile rank among all items for that user (ties share the mid rank),
``*_rel`` the score divided by the user's best score. Memory is bounded by the batch: users x
items x features, never the whole domain.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from zsrec_ray.config import PairConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.errors import ConfigError, DataError
from zsrec_ray.features.ann import CosineIVF
from zsrec_ray.features.item_weights import ease_neighbours, rp3beta_weights
from zsrec_ray.features.neighbors import cosine_topk

#: A dense percentile is found by counting (two compares per item over the row) for rows with up to
#: ``COMPARE_BELOW + n_items // 1000`` items (at most COMPARE_MAX), by one sort of the row above
#: that: where the two cost the same on the reference machine.
COMPARE_BELOW = 8
COMPARE_MAX = 32
#: Sparse score rows with more than this fraction of cells stored are handled as dense rows.
DENSE_ABOVE = 0.25


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
                 item_emb: np.ndarray | None = None, neighbours: dict[str, sp.csr_matrix] | None = None):
        """``neighbours``: the lists :func:`neighbour_lists` computed for this graph and config
        (e.g. stored beside a served domain's features); computed here when None."""
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
        lists = neighbours if neighbours is not None else neighbour_lists(graph, config)
        for name, flag, n in (("item_sim", config.itemknn, self.n_items), ("user_sim", config.userknn, self.n_users)):
            if flag:
                if lists[name].shape != (n, n):
                    raise DataError(f"neighbour list {name} is {lists[name].shape[0]} x {lists[name].shape[1]}, "
                                    f"the domain needs {n} x {n}")
                setattr(self, name, lists[name].astype(np.float64))
        if config.popularity:
            deg = torch.from_numpy(np.asarray(self.x.sum(axis=0)).ravel())
            self.popularity = percentile_rank(deg[None, :])[0]
        # a large catalogue: the cosine percentile against a sample, its top items from an IVF index
        self.sample = self.cosine_index = None
        if config.cosine and self.n_items > config.percentile_sample:
            pick = np.random.default_rng(0).choice(self.n_items, config.percentile_sample, replace=False)
            self.sample = self.item_unit[torch.from_numpy(np.sort(pick))].contiguous()  # the sampled items' vectors
            self.cosine_index = CosineIVF(self.item_unit, probe=config.ann_probe)

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

    def candidates(self, users: np.ndarray, size: int, exclude=None,
                   extra: np.ndarray | None = None) -> tuple[np.ndarray, torch.Tensor]:
        """Each user's candidate items and their pair features, without scoring every item.

        Candidates are drawn in turn from four lists, best first: the item-kNN neighbours of the
        user's history, the items of the user's nearest users, the items closest to the user in
        the co-occurrence embedding, and the most popular items; items in row ``r`` of
        ``exclude`` (len(users) x n_items) are skipped; at most ``size`` per user. Returns
        (items (len(users), size) int64, -1 where a user has fewer; features (len(users), size,
        n_features) float32, equal to :meth:`__call__`'s at those items: percentiles are exact,
        from the sorted non-zeros of the sparse scores (the zeros tie at the bottom) and one sorted
        row of the dense cosine; over catalogues larger than ``pairs.percentile_sample`` the cosine
        percentile is estimated against that many sampled items). Every step is a whole-block
        array operation. ``extra`` (len(users), m), -1 where none: items to add to each user's
        candidates when not among them (another model's top items, say); the result then has
        ``size + m`` columns, -1 wherever an extra item was drawn already.
        """
        users = np.asarray(users, dtype=np.int64)
        n, size = self.n_items, min(int(size), self.n_items)
        sparse, cosine = self._raw_rows(users)
        exclude = None if exclude is None else exclude.tocsr()
        skip = None if exclude is None else _row_keys(exclude, n)
        lists = []
        for name in ("itemknn", "userknn"):
            if name not in sparse:
                continue
            m = sparse[name]
            if isinstance(m, np.ndarray):
                lists.append(_dense_top(m, size, exclude, positive=True))
            else:
                rows = np.repeat(np.arange(len(users)), np.diff(m.indptr))
                pos = m.data > 0
                lists.append(_ranked(rows[pos], m.indices[pos], m.data[pos], size, n, skip))
        if isinstance(cosine, _SampledCosine):
            lists.append(cosine.top(size, exclude))
        elif cosine is not None:
            lists.append(_dense_top(cosine, size, exclude, positive=False))
        popular = self.popular_order[:size]
        lists.append(_ranked(np.repeat(np.arange(len(users)), len(popular)), np.tile(popular, len(users)),
                             -np.tile(np.arange(len(popular), dtype=np.float64), len(users)), size, n, skip))
        items = _union_by_turns(lists, len(users), size, n)
        if extra is not None:
            items = _append_missing(items, np.asarray(extra, dtype=np.int64), n)
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
        feats = self._candidate_features(grid, *self._raw_rows(uniq), users=uniq)
        out[torch.from_numpy(order)] = feats[torch.from_numpy(inv[order]), torch.from_numpy(col)]
        return out

    def _raw_rows(self, users: np.ndarray) -> tuple[dict, np.ndarray | None]:
        """Raw scores of ``users``: the sparse ones (item-kNN, user-kNN) as CSR rows, or as dense
        rows where more than :data:`DENSE_ABOVE` of the cells are stored (small catalogues, long
        histories), and the cosine as dense float32 rows, or a :class:`_SampledCosine` over catalogues
        larger than ``pairs.percentile_sample`` (None when off)."""
        cfg = self.config
        sparse = {}
        if cfg.itemknn:
            sparse["itemknn"] = _dense_if_full((self.x[users] @ self.item_sim).tocsr())
        if cfg.userknn:
            sparse["userknn"] = _dense_if_full((self.user_sim[users] @ self.x).tocsr())
        if not cfg.cosine:
            return sparse, None
        if self.sample is not None:
            return sparse, _SampledCosine(self.user_unit[torch.from_numpy(users)], self.item_unit, self.sample,
                                          self.cosine_index)
        return sparse, (self.user_unit[torch.from_numpy(users)] @ self.item_unit.T).numpy()

    def keep_sorted_rows(self, budget_bytes: int) -> None:
        """Remember every user's sorted dense score rows (what a dense percentile sorts) across
        :meth:`at` calls, for each feature whose rows for all users fit in ``budget_bytes``:
        pretraining asks each epoch about new items of the same users on an unchanged graph, so
        each row is sorted once. Rows are stored as computed the first time; a cosine row computed
        again in another block can differ in its last bit, which moves a percentile only when that
        value sits within a float ulp of a 6-decimal tie boundary."""
        self._sorted: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
        self._sorted_budget = int(budget_bytes)

    def _presorted(self, name: str, users: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
        """``rows`` (those of ``users``) sorted, from the memo of :meth:`keep_sorted_rows` (None without it)."""
        memo = getattr(self, "_sorted", None)
        if memo is None or users is None:
            return None
        if name not in memo:
            fits = self.n_users * rows.shape[1] * rows.itemsize <= self._sorted_budget
            memo[name] = (np.empty((self.n_users, rows.shape[1]), rows.dtype),
                          np.zeros(self.n_users, dtype=bool)) if fits else None
        if memo[name] is None:
            return None
        store, have = memo[name]
        miss = np.flatnonzero(~have[users])
        if len(miss):
            store[users[miss]] = torch.sort(torch.from_numpy(rows[miss]), dim=1).values.numpy()
            have[users[miss]] = True
        return store[users]

    def _candidate_features(self, items: np.ndarray, sparse: dict, cosine,
                            users: np.ndarray | None = None) -> torch.Tensor:
        valid = np.maximum(items, 0)
        cols: list[np.ndarray] = []
        if isinstance(cosine, _SampledCosine):
            cols.append(cosine.pct(items))
        elif cosine is not None:
            cols.append(_dense_pct(cosine, items, self._presorted("cosine", users, cosine)))
        for name in ("itemknn", "userknn"):
            if name in sparse and isinstance(sparse[name], np.ndarray):
                rows = sparse[name]
                top = rows.max(axis=1, keepdims=True)
                vals = np.take_along_axis(rows, valid, axis=1)
                cols += [_dense_pct(rows, items, self._presorted(name, users, rows)),
                         np.divide(vals, top, out=np.zeros(items.shape), where=top > 0)]
            elif name in sparse:
                cols += list(_sparse_pct_rel(sparse[name], valid, self.n_items))
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


def _row_keys(m, n: int) -> np.ndarray:
    """Sorted ``row * n + column`` keys of the stored entries of CSR ``m``."""
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return np.sort(rows * n + m.indices)


def neighbour_lists(graph: Interactions, config: PairConfig) -> dict[str, sp.csr_matrix]:
    """The item-kNN (items x items, column = target item) and user-kNN (row u: u's nearest users)
    neighbour lists the pair features read, as float32 CSR."""
    x = graph.to_csr()
    out = {}
    if config.itemknn:
        out["item_sim"] = item_neighbours(x, config)
    if config.userknn:
        out["user_sim"] = cosine_topk(x.T, config.user_neighbors, max_pairs=config.max_cooccurrence).T.tocsr()
    return out


def item_neighbours(x: sp.csr_matrix, config: PairConfig) -> sp.csr_matrix:
    """The item-item weights of ``config.item_sim`` (items x items, a user's scores are
    ``x_u @ weights``), ``config.item_neighbors`` per item, as float32 CSR."""
    k = config.item_neighbors
    if config.item_sim == "rp3beta":
        return rp3beta_weights(x, config.rp3_alpha, config.rp3_beta, k)
    if config.item_sim == "ease":
        return ease_neighbours(x, config.ease_l2, k, config.ease_max_items)
    return cosine_topk(x, k, max_pairs=config.max_cooccurrence)


#: The pair settings a set of neighbour lists depends on (:func:`neighbour_settings`).
NEIGHBOUR_SETTINGS = ("itemknn", "userknn", "item_neighbors", "user_neighbors", "max_cooccurrence")
#: ... and, per ``item_sim`` other than cosine, the settings of its weights.
ITEM_SIM_SETTINGS = {"cosine": (), "rp3beta": ("item_sim", "rp3_alpha", "rp3_beta"), "ease": ("item_sim", "ease_l2")}


def neighbour_settings(config: PairConfig) -> dict:
    """The settings that determine :func:`neighbour_lists` (cosine lists keep the keys they always had)."""
    return {k: getattr(config, k) for k in NEIGHBOUR_SETTINGS + ITEM_SIM_SETTINGS[config.item_sim]}


def save_neighbours(lists: dict[str, sp.csr_matrix], config: PairConfig, directory: str | Path) -> None:
    """Write :func:`neighbour_lists` as ``<name>.npz`` files under ``directory``, with the
    settings they were computed with (``neighbours.json``)."""
    for name, m in lists.items():
        sp.save_npz(Path(directory) / f"{name}.npz", m.tocsr())
    (Path(directory) / "neighbours.json").write_text(
        json.dumps(neighbour_settings(config), sort_keys=True))


def load_neighbours(directory: str | Path, config: PairConfig) -> dict[str, sp.csr_matrix] | None:
    """Lists written by :func:`save_neighbours` for the same settings as ``config``; None when
    ``directory`` holds none, or lists computed with other settings (the caller computes them)."""
    meta = Path(directory) / "neighbours.json"
    try:
        saved = json.loads(meta.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        raise DataError(f"neighbour list settings are corrupt: {meta}") from None
    if saved != neighbour_settings(config):
        return None
    out = {}
    for name in ("item_sim", "user_sim"):
        if getattr(config, name.replace("_sim", "knn")):
            f = Path(directory) / f"{name}.npz"
            try:
                out[name] = sp.load_npz(f).tocsr()
            except Exception as e:  # missing, truncated or not an npz
                raise DataError(f"neighbour list file is missing or corrupt: {f} ({type(e).__name__})") from None
    return out


def cached_neighbour_lists(graph: Interactions, config: PairConfig, cache_dir: str | Path) -> dict[str, sp.csr_matrix]:
    """:func:`neighbour_lists`, stored once per (interactions, settings) under ``cache_dir`` (keyed
    like the feature cache: dataset, data hash, settings hash); processes asking for the same lists
    wait on a lock file instead of computing them twice (e.g. the actors of a batch job)."""
    from filelock import FileLock

    from zsrec_ray.features.featurizer import feature_cache_key, interactions_hash
    from zsrec_ray.files import atomic_dir

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    settings = neighbour_settings(config)
    key = feature_cache_key(graph.name, interactions_hash(graph), settings)
    with FileLock(str(cache_dir / f".{key}.lock")):
        try:
            lists = load_neighbours(cache_dir / key, config)
        except DataError:  # a corrupt entry is computed again
            lists = None
        if lists is None:
            lists = neighbour_lists(graph, config)
            with atomic_dir(cache_dir / key) as tmp:
                save_neighbours(lists, config, tmp)
        return lists


class _SampledCosine:
    """The cosine of a block of users against a large catalogue, never held as full rows: the top
    items from the IVF index, and percentiles estimated against a fixed sample of items (the share
    of the sample scoring below, ties counted half)."""

    def __init__(self, users_unit: torch.Tensor, item_unit: torch.Tensor, sample: torch.Tensor, index: CosineIVF):
        """``sample``: the sampled items' unit vectors (s, d)."""
        self.u, self.items, self.sample, self.index = users_unit, item_unit, sample, index

    def top(self, size: int, exclude) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.index.search(self.u, size, exclude)

    def pct(self, items: np.ndarray) -> np.ndarray:
        vals = (self.u[:, None, :] * self.items[torch.from_numpy(np.maximum(items, 0))]).sum(-1).double()
        ref = torch.round((self.u @ self.sample.T).double() * 1e6).numpy()  # integer keys, as floats
        keys = torch.round(vals * 1e6).numpy()
        below = _count_below(ref, np.concatenate([keys, keys + 1], axis=1))  # #smaller, #smaller-or-equal
        m = keys.shape[1]
        return (below[:, :m] + below[:, m:]) / (2.0 * len(self.sample))


def _dense_if_full(m):
    """``m`` as a dense array when more than :data:`DENSE_ABOVE` of its cells are stored."""
    return m.toarray() if m.nnz > DENSE_ABOVE * m.shape[0] * m.shape[1] else m


def _dense_top(scores: np.ndarray, size: int, exclude, positive: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's ``size`` highest scores (only the positive ones with ``positive``), leaving out
    the entries of CSR ``exclude``: (rows, cols, depth) as :func:`_ranked` gives."""
    masked = torch.from_numpy(scores).clone()
    if positive:
        masked[masked <= 0] = -torch.inf
    if exclude is not None:
        masked[torch.from_numpy(np.repeat(np.arange(scores.shape[0]), np.diff(exclude.indptr))),
               torch.from_numpy(exclude.indices.astype(np.int64))] = -torch.inf
    top = torch.topk(masked, size, dim=1)
    ok = torch.isfinite(top.values).numpy()
    rows, depth = np.nonzero(ok)
    return rows.astype(np.int64), top.indices.numpy()[ok], depth.astype(np.int64)


def _ranked(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, size: int, n: int,
            skip: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's entries by value, highest first (ties by id), leaving out the ``skip`` keys
    (``row * n + col``, sorted): the first ``size`` of each row as (rows, cols, depth). ``rows``
    is sorted (row-major entries). A row longer than ``size`` plus its skipped keys is first cut
    at that many largest values (one partition each; no skip can reach below the cut), so the
    skip lookup and the sort see only the head of each row."""
    rows, cols = rows.astype(np.int64), cols.astype(np.int64)
    if not len(rows):
        return rows, cols, rows.copy()
    count = np.bincount(rows)
    limit = np.full(len(count), size, dtype=np.int64)
    if skip is not None and len(skip):
        limit += np.bincount(skip // n, minlength=len(count))[:len(count)]
    long = np.flatnonzero(count > limit)
    if len(long):
        start = np.concatenate([[0], np.cumsum(count)])
        floor = np.full(len(count), -np.inf)
        for r in long:
            seg = vals[start[r]:start[r + 1]]
            floor[r] = np.partition(seg, len(seg) - limit[r])[len(seg) - limit[r]]
        keep = vals >= floor[rows]  # ties at the cut stay: the sort below breaks them by id
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
    if skip is not None and len(skip):
        keep = ~_contains(skip, rows * n + cols)
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((cols, -vals, rows))
    rows, cols = rows[order], cols[order]
    depth = _rank_in_run(rows)
    keep = depth < size
    return rows[keep], cols[keep], depth[keep]


def _union_by_turns(lists: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_rows: int, size: int,
                    n: int) -> np.ndarray:
    """Per row, up to ``size`` distinct ids taken from the ranked ``lists`` in turn (the first of
    each, then the second of each, ...): (n_rows, size) int64, -1 where a row has fewer."""
    rows = np.concatenate([r for r, _, _ in lists])
    turns = len(lists) * (size + 1)
    turn = np.concatenate([d * len(lists) + i for i, (_, _, d) in enumerate(lists)])
    key = (rows * n + np.concatenate([c for _, c, _ in lists])) * turns + turn
    key = np.sort(key)  # by (row, item), then turn: an item's first entry is its earliest turn
    cell = key // turns
    first = np.ones(len(key), dtype=bool)
    first[1:] = cell[1:] != cell[:-1]
    cell, turn = cell[first], key[first] % turns
    rows = cell // n
    order = np.argsort(rows * turns + turn)
    rows, cols = rows[order], (cell % n)[order]
    rank = _rank_in_run(rows)
    keep = rank < size
    out = np.full((n_rows, size), -1, dtype=np.int64)
    out[rows[keep], rank[keep]] = cols[keep]
    return out


def _append_missing(items: np.ndarray, extra: np.ndarray, n: int) -> np.ndarray:
    """``items`` (rows of distinct ids, -1 where none) followed by each row's ``extra`` ids that
    are not in it: (rows, items + extra columns), -1 where an extra id was there already (or
    earlier in its row of ``extra``)."""
    rows = np.arange(len(items))[:, None]
    have = np.sort((rows * n + items)[items >= 0])
    keys = rows * n + extra
    new = (extra >= 0) & ~_contains(have, keys)
    flat = keys.ravel()
    order = np.argsort(flat, kind="stable")
    repeat = np.zeros(flat.shape, dtype=bool)
    repeat[order[1:]] = flat[order[1:]] == flat[order[:-1]]  # a later copy of the same (row, id)
    return np.concatenate([items, np.where(new & ~repeat.reshape(keys.shape), extra, -1)], axis=1)


def _rank_in_run(keys: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal values of sorted ``keys``."""
    pos = np.arange(len(keys))
    if not len(keys):
        return pos
    start = np.ones(len(keys), dtype=bool)
    start[1:] = keys[1:] != keys[:-1]
    return pos - np.maximum.accumulate(np.where(start, pos, 0))


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Whether each of ``keys`` is in ``sorted_keys``."""
    if not len(sorted_keys):
        return np.zeros(keys.shape, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys


def _key(x: np.ndarray) -> np.ndarray:
    """A score's tie key: its value in integer millionths (what rounding to 6 decimals keeps)."""
    return np.rint(x.astype(np.float64) * 1e6)


def _first_with_key(keys: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The smallest value of ``dtype`` whose :func:`_key` is at least each of ``keys``, so that
    ``_key(x) < K`` exactly when ``x < _first_with_key(K)`` (the key never decreases with x)."""
    g = ((keys - 0.5) / 1e6).astype(dtype)
    for _ in range(64):  # the guess is within an ulp or two of the boundary
        down = np.nextafter(g, dtype.type(-np.inf))
        lower = _key(down) >= keys
        higher = _key(g) < keys
        if not lower.any() and not higher.any():
            return g
        g = np.where(lower, down, np.where(higher, np.nextafter(g, dtype.type(np.inf)), g))
    raise AssertionError("tie-key boundary search did not converge")


def _dense_pct(scores: np.ndarray, items: np.ndarray, presorted: np.ndarray | None = None) -> np.ndarray:
    """Mid-rank percentile, as :func:`percentile_rank` gives over each full row of ``scores``
    (rows x n), at ``items`` (rows x candidates, -1 padding last). Scores tie when equal in
    integer millionths (:func:`_key`): #smaller and #smaller-or-equal are counts of raw values
    below the first value of the candidate's key and of the next key, so the rows themselves are
    never converted. Rows with few items are counted (candidates x n compares, see
    :data:`COMPARE_BELOW`), the others sorted once; with ``presorted`` (``scores`` sorted along
    rows), every row is one binary search per candidate."""
    n = scores.shape[1]
    vals = np.take_along_axis(scores, np.maximum(items, 0), axis=1)
    key = _key(vals)
    lo, hi = _first_with_key(key, scores.dtype), _first_with_key(key + 1, scores.dtype)
    if presorted is not None:
        srt = torch.from_numpy(presorted)
        less = torch.searchsorted(srt, torch.from_numpy(lo), side="left")
        leq = torch.searchsorted(srt, torch.from_numpy(hi), side="left")
        return np.where(items >= 0, (less + leq).numpy() / (2.0 * n), 0.0)
    count = (items >= 0).sum(axis=1)
    pct = np.zeros(items.shape)
    limit = min(COMPARE_BELOW + n // 1000, COMPARE_MAX)
    # rows counted in groups of like width (1, 2, 4, then multiples of 4 candidates)
    width = np.where(count > 4, -(-count // 4) * 4, np.where(count > 2, 4, count))
    for c in np.unique(width[(width > 0) & (count <= limit)]):
        few = np.flatnonzero((width == c) & (count <= limit))
        step = max(1, (1 << 24) // (int(c) * n))
        for s in range(0, len(few), step):
            r = few[s:s + step]
            row = scores[r][:, None, :]
            pct[r, :c] = ((row < lo[r, :c, None]).view(np.uint8).sum(axis=2, dtype=np.int64)
                          + (row < hi[r, :c, None]).view(np.uint8).sum(axis=2, dtype=np.int64)) / (2.0 * n)
    many = np.flatnonzero(count > limit)
    if len(many):
        # torch's sort, not numpy's: numpy's SIMD quicksort slows down several-fold on the many equal
        # values (zeros) of item-kNN / user-kNN rows. (A bucket count, :func:`_count_below`, loses
        # here: a row of a few thousand items holds as many values as its candidates' thresholds.)
        srt = torch.sort(torch.from_numpy(scores[many] if len(many) < len(scores) else scores), dim=1).values
        less = torch.searchsorted(srt, torch.from_numpy(np.ascontiguousarray(lo[many])), side="left")
        leq = torch.searchsorted(srt, torch.from_numpy(np.ascontiguousarray(hi[many])), side="left")
        pct[many] = (less + leq).numpy() / (2.0 * n)
    return pct


def _count_below(rows: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How many values of each row of ``rows`` (r x n) are below each of that row's
    ``thresholds`` (r x m, same dtype), exactly, without sorting the rows: each row's range is cut
    into equal buckets (about four values each), a histogram of the buckets gives the count of
    every bucket below a threshold's, and only the values sharing a bucket with a threshold are
    sorted and compared. The bucket is a monotone function of the value, so values in lower
    buckets are lower. About twice as fast as a sort when n is many times m (the sampled cosine
    percentile: 50,000 items, a few hundred thresholds); slower when it is not. Returns (r x m)
    int64."""
    r, n = rows.shape
    buckets = int(np.clip(n // 4, 64, 16384))
    low = rows.min(axis=1, keepdims=True)
    width = rows.max(axis=1, keepdims=True) - low
    scale = np.divide(buckets - 1, width, out=np.zeros_like(width), where=width > 0).astype(rows.dtype)

    def bucket(x: np.ndarray) -> np.ndarray:
        b = (x - low) * scale  # same arithmetic for values and thresholds: monotone in the value
        return np.clip(b, 0, buckets - 1).astype(np.int64) + np.arange(r, dtype=np.int64)[:, None] * buckets

    vb, tb = bucket(rows), bucket(thresholds)
    hist = np.bincount(vb.ravel(), minlength=r * buckets)
    under = np.cumsum(hist) - hist  # values in lower buckets (of the whole block)
    first = np.arange(r, dtype=np.int64)[:, None] * n  # values of earlier rows
    out = under[tb] - first
    # values sharing a bucket with some threshold: sorted by (bucket, value), then one bisection
    # per threshold within its bucket's run
    mark = np.zeros(r * buckets, dtype=bool)
    mark[tb.ravel()] = True
    shared = np.flatnonzero(mark[vb.ravel()])
    keys, vals = vb.ravel()[shared], rows.ravel()[shared]
    order = np.lexsort((vals, keys))
    keys, vals = keys[order], vals[order]
    t = thresholds.ravel()
    lo = np.searchsorted(keys, tb.ravel(), side="left")
    hi = np.searchsorted(keys, tb.ravel(), side="right")
    while True:  # lo: first position in the run whose value is not below the threshold
        open_ = lo < hi
        if not open_.any():
            break
        mid = (lo + hi) // 2
        go = np.zeros(len(t), dtype=bool)
        go[open_] = vals[mid[open_]] < t[open_]
        lo = np.where(open_ & go, mid + 1, lo)
        hi = np.where(open_ & ~go, mid, hi)
    start = np.searchsorted(keys, tb.ravel(), side="left")
    return out + (lo - start).reshape(r, -1)


def _sparse_pct_rel(m, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Percentile and relative-to-max of CSR rows ``m`` at ``items`` (rows x candidates), as
    :func:`percentile_rank` / :func:`relative_to_max` give over all ``n`` columns: from the
    rows' non-zeros only (compared as integer millionths, what rounding to 6 decimals keeps),
    the zeros tying at the bottom. Two sorts of integer keys: (row, column) of the entries in
    candidate columns, to find the candidates' values, and (row, value) of every non-zero, to count
    the entries below them; each candidate is then one binary search."""
    m = m.tocsr()
    b = m.shape[0]
    count = np.diff(m.indptr)
    rows = np.repeat(np.arange(b, dtype=np.int64), count)
    data = m.data
    ival = _key(data).astype(np.int64)
    # the value of every (row, candidate): a search among the sorted row * n + column keys of the
    # entries in a column that is some row's candidate (a bitmap over the columns picks them)
    mark = np.zeros(n, dtype=bool)
    mark[items[items >= 0]] = True
    pick = np.flatnonzero(mark[m.indices])
    key, order = torch.sort(torch.from_numpy(rows[pick] * n + m.indices[pick]))
    key, order = key.numpy(), pick[order.numpy()]
    want = np.arange(b, dtype=np.int64)[:, None] * n + items
    at = np.minimum(np.searchsorted(key, want), max(len(key) - 1, 0))
    hit = key[at] == want if len(key) else np.zeros(items.shape, dtype=bool)
    src = order[at] if len(order) else np.zeros(items.shape, dtype=np.int64)
    vals = np.where(hit, data[src] if len(data) else 0.0, 0.0)
    v = np.where(hit, ival[src] if len(ival) else 0, 0)
    # #smaller and #smaller-or-equal among the row's non-zeros: searches among sorted (row, value) keys
    nz = ival != 0
    lo, hi = (min(int(ival[nz].min()), 0), max(int(ival[nz].max()), 0)) if nz.any() else (0, 0)
    span = hi - lo + 1
    entries = torch.sort(torch.from_numpy(rows[nz] * span + (ival[nz] - lo))).values.numpy()
    before = np.concatenate([[0], np.cumsum(np.bincount(rows[nz], minlength=b))])  # non-zeros of earlier rows
    q = np.arange(b, dtype=np.int64)[:, None] * span + (v - lo)  # v = 0: the row's zero
    less = np.searchsorted(entries, q, side="left") - before[:-1, None]
    leq = np.searchsorted(entries, q, side="right") - before[:-1, None]
    zeros = n - (before[1:] - before[:-1])[:, None]
    pct = (less + zeros * (v > 0) + leq + zeros * (v >= 0)) / (2.0 * n)
    top = np.zeros(b)
    full = count > 0
    if full.any():
        top[full] = np.maximum.reduceat(data, m.indptr[:-1][full])
    top = np.maximum(top, 0.0)
    rel = np.divide(vals, top[:, None], out=np.zeros(items.shape), where=top[:, None] > 0)
    return pct, rel


def _unit_rows(emb: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float32)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    return np.divide(emb, norm, out=np.zeros_like(emb), where=norm > 0)
