"""BPR triple sampling: positives from observed edges, negatives uniform over the same domain's unseen items."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class NegativeSampler:
    """Draws, for each user, items it has not interacted with, uniformly over the domain's items."""

    def __init__(self, seen: sp.csr_matrix, rng: np.random.Generator, max_rounds: int = 50):
        seen = sp.csr_matrix(seen)
        self.n_items = seen.shape[1]
        rows = np.repeat(np.arange(seen.shape[0], dtype=np.int64), np.diff(seen.indptr))
        self._keys = np.sort(rows * self.n_items + seen.indices.astype(np.int64))
        self._full = np.diff(seen.indptr) >= self.n_items
        self.rng = rng
        self.max_rounds = max_rounds

    def is_seen(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users.astype(np.int64) * self.n_items + items
        pos = np.searchsorted(self._keys, keys)
        pos = np.minimum(pos, len(self._keys) - 1)
        return self._keys[pos] == keys if len(self._keys) else np.zeros(len(keys), dtype=bool)

    def sample(self, users: np.ndarray) -> np.ndarray:
        """One negative per entry of ``users`` (rejection sampling, vectorised)."""
        if np.any(self._full[users]):
            raise ValueError("a user has interacted with every item; no negative exists")
        neg = self.rng.integers(0, self.n_items, size=len(users))
        for _ in range(self.max_rounds):
            bad = np.flatnonzero(self.is_seen(users, neg))
            if not len(bad):
                return neg
            neg[bad] = self.rng.integers(0, self.n_items, size=len(bad))
        bad = np.flatnonzero(self.is_seen(users, neg))
        for b in bad:  # pathological near-full users only
            unseen = np.setdiff1d(np.arange(self.n_items), self._keys_of(users[b]))
            neg[b] = self.rng.choice(unseen)
        return neg

    def _keys_of(self, user: int) -> np.ndarray:
        lo = np.searchsorted(self._keys, user * self.n_items)
        hi = np.searchsorted(self._keys, (user + 1) * self.n_items)
        return self._keys[lo:hi] - user * self.n_items


def bpr_epoch(users: np.ndarray, items: np.ndarray, sampler: NegativeSampler, batch_size: int,
              rng: np.random.Generator):
    """Yield (users, positives, negatives) batches covering every edge once, in a random order."""
    order = rng.permutation(len(users))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        u = users[idx]
        yield u, items[idx], sampler.sample(u)
