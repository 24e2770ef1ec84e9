"""The validated interactions table shared by every stage: internal contiguous ids plus the mapping back."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from zsrec_ray.errors import DataError


@dataclass(frozen=True, eq=False)
class Interactions:
    """User-item interactions of one domain with contiguous internal ids.

    ``user[k]``/``item[k]`` are internal ids in ``[0, n_users)`` / ``[0, n_items)``;
    ``user_ids[u]``/``item_ids[i]`` give the external id of internal id ``u``/``i``.
    ``rating`` and ``timestamp`` are optional per-row arrays (timestamp is any order key).
    ``split_label`` carries a dataset's own train/test labels through preprocessing.
    Several tables (train/valid/test of one split) share one id space.
    """

    user: np.ndarray
    item: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    rating: np.ndarray | None = None
    timestamp: np.ndarray | None = None
    name: str = "domain"
    split_label: np.ndarray | None = None
    _csr: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "user", np.ascontiguousarray(self.user, dtype=np.int64))
        object.__setattr__(self, "item", np.ascontiguousarray(self.item, dtype=np.int64))
        n = len(self.user)
        if len(self.item) != n:
            raise DataError(f"{self.name}: user and item arrays differ in length ({n} vs {len(self.item)})")
        for col in ("rating", "timestamp"):
            arr = getattr(self, col)
            if arr is not None:
                arr = np.asarray(arr, dtype=np.float64)
                if len(arr) != n:
                    raise DataError(f"{self.name}: column '{col}' has {len(arr)} rows, expected {n}")
                if not np.all(np.isfinite(arr)):
                    raise DataError(f"{self.name}: column '{col}' holds missing or non-finite values")
                object.__setattr__(self, col, arr)
        if self.split_label is not None:
            labels = np.asarray(self.split_label).astype(str)
            if len(labels) != n:
                raise DataError(f"{self.name}: column 'split' has {len(labels)} rows, expected {n}")
            object.__setattr__(self, "split_label", labels)
        if n:
            if self.user.min() < 0 or self.user.max() >= len(self.user_ids):
                raise DataError(f"{self.name}: internal user id out of range [0, {len(self.user_ids)})")
            if self.item.min() < 0 or self.item.max() >= len(self.item_ids):
                raise DataError(f"{self.name}: internal item id out of range [0, {len(self.item_ids)})")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(cls, df: pd.DataFrame, name: str = "domain") -> "Interactions":
        """Build from a raw frame with external ids in columns ``user`` and ``item``.

        Internal ids are assigned in sorted order of the external ids, so the result does not
        depend on row order.
        """
        missing = [c for c in ("user", "item") if c not in df.columns]
        if missing:
            raise DataError(f"{name}: missing required column(s) {missing}; found {list(df.columns)}")
        for col in ("user", "item"):
            if df[col].isna().any():
                row = int(np.flatnonzero(df[col].isna().to_numpy())[0])
                raise DataError(f"{name}: column '{col}' is empty at row {row}")
        user_codes, user_ids = _factorize(df["user"])
        item_codes, item_ids = _factorize(df["item"])
        rating = _numeric(df, "rating", name)
        timestamp = _numeric(df, "timestamp", name)
        split = df["split"].astype(str).to_numpy() if "split" in df.columns else None
        return cls(user_codes, item_codes, user_ids, item_ids, rating, timestamp, name, split)

    def subset(self, mask_or_index: np.ndarray) -> "Interactions":
        """Rows selected by a boolean mask or index array, in the same id space."""
        idx = mask_or_index
        return Interactions(
            self.user[idx], self.item[idx], self.user_ids, self.item_ids,
            None if self.rating is None else self.rating[idx],
            None if self.timestamp is None else self.timestamp[idx],
            self.name,
            None if self.split_label is None else self.split_label[idx],
        )

    def reindexed(self) -> "Interactions":
        """Drop ids with no rows and renumber the rest contiguously (keeping external ids)."""
        users, u_codes = np.unique(self.user, return_inverse=True)
        items, i_codes = np.unique(self.item, return_inverse=True)
        return Interactions(u_codes, i_codes, self.user_ids[users], self.item_ids[items],
                            self.rating, self.timestamp, self.name, self.split_label)

    # ------------------------------------------------------------------ views
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.user)

    @property
    def density(self) -> float:
        return len(self) / max(1, self.n_users * self.n_items)

    def to_csr(self) -> sp.csr_matrix:
        """Binary users x items CSR matrix (cached; duplicates collapse to 1)."""
        if not self._csr:
            m = sp.csr_matrix(
                (np.ones(len(self), dtype=np.float32), (self.user, self.item)),
                shape=(self.n_users, self.n_items),
            )
            m.sum_duplicates()
            m.data[:] = 1.0
            m.sort_indices()
            self._csr.append(m)
        return self._csr[0]

    def user_degree(self) -> np.ndarray:
        return np.bincount(self.user, minlength=self.n_users)

    def item_degree(self) -> np.ndarray:
        return np.bincount(self.item, minlength=self.n_items)

    def to_frame(self, external: bool = True) -> pd.DataFrame:
        """Rows as a frame, with external ids (default) or internal ids."""
        data = {
            "user": self.user_ids[self.user] if external else self.user,
            "item": self.item_ids[self.item] if external else self.item,
        }
        if self.rating is not None:
            data["rating"] = self.rating
        if self.timestamp is not None:
            data["timestamp"] = self.timestamp
        return pd.DataFrame(data)


def _factorize(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(col, sort=True)
    return codes.astype(np.int64), np.asarray(uniques)


def _numeric(df: pd.DataFrame, col: str, name: str) -> np.ndarray | None:
    if col not in df.columns:
        return None
    values = pd.to_numeric(df[col], errors="coerce")
    bad = values.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{name}: column '{col}' has a missing or non-numeric value {df[col].iloc[row]!r} at row {row}")
    return values.to_numpy(dtype=np.float64)
