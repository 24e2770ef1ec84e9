"""Seeded train/validation/test splits that share one id space."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np

from zsrec_ray.data.interactions import Interactions
from zsrec_ray.errors import DataError

SplitKind = Literal["random", "leave_last_out", "given", "heldout_users"]


@dataclass(frozen=True, eq=False)
class Split:
    """Train/valid/test tables of one domain in one id space.

    For the held-out-users split, ``heldout_users`` never appear in ``train``/``valid``;
    ``fold_in`` holds their interactions available at inference time and ``test`` the ones to
    predict. Evaluation masks ``train``, ``fold_in`` and (for test) ``valid`` items.
    """

    train: Interactions
    valid: Interactions
    test: Interactions
    kind: str
    seed: int
    fold_in: Interactions | None = None
    heldout_users: np.ndarray | None = None

    @property
    def name(self) -> str:
        return self.train.name

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def known(self) -> Interactions:
        """Interactions available at inference time for scoring: train plus fold-in."""
        if self.fold_in is None:
            return self.train
        return _concat(self.train, self.fold_in)

    def all(self) -> Interactions:
        """Every interaction of the domain (all parts)."""
        out = _concat(_concat(self.train, self.valid), self.test)
        return out if self.fold_in is None else _concat(out, self.fold_in)


def _concat(a: Interactions, b: Interactions) -> Interactions:
    def cat(x, y):
        return None if x is None or y is None else np.concatenate([x, y])
    return Interactions(np.concatenate([a.user, b.user]), np.concatenate([a.item, b.item]),
                        a.user_ids, a.item_ids, cat(a.rating, b.rating), cat(a.timestamp, b.timestamp),
                        a.name, cat(a.split_label, b.split_label))


def _rank_within_user(user: np.ndarray, *keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each row within its user when sorted by ``keys`` (first key primary), and each row's user size."""
    order = np.lexsort(tuple(reversed(keys)) + (user,))
    sorted_users = user[order]
    counts = np.bincount(user)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(user), dtype=np.int64)
    rank[order] = np.arange(len(user)) - starts[sorted_users]
    return rank, counts[user]


def _holdout_counts(n: np.ndarray, frac: float) -> np.ndarray:
    """Rows held out per user: round(frac * n), at least 1 when frac > 0 and the user has 3 or more rows."""
    c = np.rint(frac * n).astype(np.int64)
    if frac <= 0:
        return c
    return np.where(n >= 3, np.maximum(c, 1), 0)


def _random_three_way(data: Interactions, valid_frac: float, test_frac: float, rng: np.random.Generator):
    rank, n = _rank_within_user(data.user, rng.random(len(data)))
    n_test = _holdout_counts(n, test_frac)
    n_valid = _holdout_counts(n, valid_frac)
    is_test = rank < n_test
    is_valid = ~is_test & (rank < n_test + n_valid)
    return ~(is_test | is_valid), is_valid, is_test


def feature_graph(train: Interactions, graph_frac: float, seed: int = 0) -> tuple[Interactions, Interactions]:
    """Split training interactions into a feature graph (a per-user random ``graph_frac``) and the
    held-out rest; ``graph_frac >= 1`` gives the whole training set twice."""
    if graph_frac >= 1.0:
        return train, train
    parts = random_split(train, valid_frac=0.0, test_frac=1.0 - graph_frac, seed=seed)
    return parts.train, parts.test


def random_split(data: Interactions, *, valid_frac: float = 0.1, test_frac: float = 0.1, seed: int = 0) -> Split:
    """Per-user random split (default 80/10/10), seeded."""
    _check_fracs(valid_frac, test_frac)
    rng = np.random.default_rng(seed)
    tr, va, te = _random_three_way(data, valid_frac, test_frac, rng)
    return Split(data.subset(tr), data.subset(va), data.subset(te), "random", seed)


def leave_last_out(data: Interactions, *, seed: int = 0) -> Split:
    """Per user, the last interaction is test and the second-to-last validation (needs an order)."""
    if data.timestamp is None:
        raise DataError(f"{data.name}: leave-last-out needs a timestamp/order column, and this dataset has none")
    # Latest first; ties broken by file order (a later row counts as later).
    rank, n = _rank_within_user(data.user, -data.timestamp, -np.arange(len(data)))
    is_test = (rank == 0) & (n >= 3)
    is_valid = (rank == 1) & (n >= 3)
    return Split(data.subset(~(is_test | is_valid)), data.subset(is_valid), data.subset(is_test), "leave_last_out", seed)


def given_split(data: Interactions, split_labels: np.ndarray, *, valid_frac: float = 0.1, seed: int = 0) -> Split:
    """Use the dataset's own train/test labels; validation is carved per user from its train part."""
    labels = np.asarray(split_labels).astype(str)
    if len(labels) != len(data):
        raise DataError(f"{data.name}: {len(labels)} split labels for {len(data)} rows")
    unknown = sorted(set(np.unique(labels)) - {"train", "valid", "test"})
    if unknown:
        raise DataError(f"{data.name}: unknown split label(s) {unknown}; expected train, valid or test")
    is_test = labels == "test"
    if "valid" in labels:
        is_valid = labels == "valid"
    else:
        rng = np.random.default_rng(seed)
        train_idx = np.flatnonzero(~is_test)
        sub = data.subset(train_idx)
        rank, n = _rank_within_user(sub.user, rng.random(len(sub)))
        is_valid = np.zeros(len(data), dtype=bool)
        is_valid[train_idx[rank < _holdout_counts(n, valid_frac)]] = True
    is_train = ~(is_test | is_valid)
    return Split(data.subset(is_train), data.subset(is_valid), data.subset(is_test), "given", seed)


def heldout_users_split(data: Interactions, *, user_frac: float = 0.1, valid_frac: float = 0.1,
                        test_frac: float = 0.2, seed: int = 0) -> Split:
    """Hold out ``user_frac`` of users entirely from training (inductive test).

    Training users get a per-user random train/valid split. Each held-out user's rows are split
    into ``fold_in`` (history known at inference) and ``test`` (``test_frac`` of its rows).
    """
    rng = np.random.default_rng(seed)
    n_out = max(1, int(round(user_frac * data.n_users)))
    heldout = np.sort(rng.choice(data.n_users, size=n_out, replace=False))
    is_out = np.isin(data.user, heldout)
    rank, n = _rank_within_user(data.user, rng.random(len(data)))
    n_valid = _holdout_counts(n, valid_frac)
    n_test = _holdout_counts(n, test_frac)
    test = is_out & (rank < n_test)
    fold_in = is_out & ~test
    valid = ~is_out & (rank < n_valid)
    train = ~is_out & ~valid
    return Split(data.subset(train), data.subset(valid), data.subset(test), "heldout_users", seed,
                 fold_in=data.subset(fold_in), heldout_users=heldout)


def make_split(data: Interactions, kind: SplitKind = "random", *, seed: int = 0,
               split_labels: np.ndarray | None = None, valid_frac: float = 0.1, test_frac: float = 0.1) -> Split:
    """Dispatch on ``kind``; ``given`` uses ``split_labels`` or else the data's own ``split_label``."""
    if kind == "random":
        return random_split(data, valid_frac=valid_frac, test_frac=test_frac, seed=seed)
    if kind == "leave_last_out":
        return leave_last_out(data, seed=seed)
    if kind == "given":
        split_labels = data.split_label if split_labels is None else split_labels
        if split_labels is None:
            raise DataError(f"{data.name}: this dataset ships no split of its own; use 'random' or 'leave_last_out'")
        return given_split(data, split_labels, valid_frac=valid_frac, seed=seed)
    if kind == "heldout_users":
        return heldout_users_split(data, valid_frac=valid_frac, test_frac=test_frac, seed=seed)
    raise DataError(f"unknown split kind {kind!r}")


def _check_fracs(valid_frac: float, test_frac: float) -> None:
    if not (0 <= valid_frac < 1 and 0 < test_frac < 1 and valid_frac + test_frac < 1):
        raise DataError(f"split fractions must satisfy 0<=valid, 0<test, valid+test<1; got {valid_frac}, {test_frac}")


def subsample_train(split: Split, frac: float, seed: int = 0) -> Split:
    """The few-shot version of ``split``: a seeded random ``frac`` of its training interactions (at
    least one per user that had any), the same validation and test parts and id space. The rest of
    the training interactions are gone, as if never observed."""
    if not 0 < frac <= 1:
        raise DataError(f"train fraction must be in (0, 1], got {frac}")
    if frac == 1:
        return split
    train = split.train
    rng = np.random.default_rng(seed)
    keep = rng.random(len(train)) < frac
    order = rng.permutation(len(train))  # one random interaction per user is always kept
    first = order[np.unique(train.user[order], return_index=True)[1]]
    keep[first] = True
    return dataclasses.replace(split, train=train.subset(keep))
