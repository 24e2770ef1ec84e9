"""Top-k as a table: ``user, rank, item, score`` rows with the domain's original ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from zsrec_ray.ranking.evaluator import Ranker

COLUMNS = ("user", "rank", "item", "score")


def topk_table(ranker: Ranker, users: np.ndarray, k: int, exclude: sp.csr_matrix | None,
               user_ids: np.ndarray, item_ids: np.ndarray) -> pd.DataFrame:
    """Each of ``users`` (internal ids)' top ``k`` as rows (rank 1 = best); items that could only
    be reached through ``exclude`` (score -inf) are left out."""
    idx, val = ranker.recommend(users, k, exclude)
    idx, val = np.asarray(idx), np.asarray(val, dtype=np.float32)
    keep = np.isfinite(val)
    rows = np.repeat(np.arange(len(users)), idx.shape[1]).reshape(idx.shape)
    ranks = np.tile(np.arange(1, idx.shape[1] + 1), (len(users), 1))
    return pd.DataFrame({"user": np.asarray(user_ids)[np.asarray(users)[rows[keep]]].astype(str),
                         "rank": ranks[keep].astype(np.int32), "item": np.asarray(item_ids)[idx[keep]].astype(str),
                         "score": val[keep]})
