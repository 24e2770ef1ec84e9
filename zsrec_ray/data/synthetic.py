"""Synthetic power-law domains, seeded: catalogues of any size with the shape of real ones.

Item popularity and user activity both follow power laws (Zipf-like ranks; the defaults are near
what ``zsrec data stats`` measures on the bundled datasets), and items fall into communities so
neighbourhoods mean something: each interaction comes from the user's home community with
probability ``locality``, from the whole catalogue otherwise, in both cases weighted by item
popularity. Duplicate (user, item) pairs are dropped; the number of draws is scaled up once, by
the duplicate rate of a trial draw, so the count lands near ``n_interactions``.
"""

from __future__ import annotations

import numpy as np

from zsrec_ray.data.interactions import Interactions


def power_law_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """``(rank + 1) ** -exponent`` for ranks 0..n-1, in a random order, summing to one."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return rng.permutation(w / w.sum())


def synthetic_domain(n_users: int, n_items: int, n_interactions: int, *, seed: int = 0,
                     item_exponent: float = 0.9, user_exponent: float = 0.6, min_per_user: int = 5,
                     communities: int = 1000, locality: float = 0.7, name: str = "synthetic") -> Interactions:
    """A domain of about ``n_interactions`` distinct interactions (see the module docstring)."""
    if min(n_users, n_items) < 2 or n_interactions < n_users * min_per_user:
        raise ValueError("need at least 2 users and items, and n_interactions >= n_users * min_per_user")
    rng = np.random.default_rng(seed)
    pop = power_law_weights(n_items, item_exponent, rng)
    activity = power_law_weights(n_users, user_exponent, rng)
    k = max(1, min(communities, n_items))
    community = rng.integers(0, k, n_items)
    home = rng.integers(0, k, n_users)
    # items sorted by community: one cumulative popularity array serves every community
    order = np.argsort(community, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(pop[order])])
    bounds = np.searchsorted(community[order], np.arange(k + 1))
    cap = max(min_per_user, n_items // 10)

    def draw(draws: int, rng: np.random.Generator) -> np.ndarray:
        degree = np.minimum(min_per_user + np.floor(activity * max(draws - n_users * min_per_user, 0)), cap)
        users = np.repeat(np.arange(n_users, dtype=np.int64), degree.astype(np.int64))
        h = home[users]
        local = rng.random(len(users)) < locality
        lo = np.where(local, cum[bounds[h]], 0.0)
        hi = np.where(local, cum[bounds[h + 1]], cum[-1])
        pick = np.searchsorted(cum, lo + rng.random(len(users)) * (hi - lo), side="right") - 1
        return np.unique(users * n_items + order[np.clip(pick, 0, n_items - 1)])

    # popular items repeat within heavy users: one trial draw measures how many survive deduplication
    trial = draw(n_interactions, np.random.default_rng([seed, 1]))
    pairs = draw(int(n_interactions * n_interactions / max(len(trial), 1)), np.random.default_rng([seed, 2]))
    u, i = pairs // n_items, pairs % n_items
    return Interactions(u, i, np.array([f"u{x}" for x in range(n_users)], dtype=object),
                        np.array([f"i{x}" for x in range(n_items)], dtype=object), name=name)
