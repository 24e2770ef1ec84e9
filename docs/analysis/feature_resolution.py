"""Why the paper-style model trails MostPop in-domain: how much its node features can resolve.

For each dataset: distinct item/user feature rows, items in the top activity bin, MostPop test
NDCG@20, and NDCG@20 of ranking items by their activity decile alone (random order within a
decile). Run: `.venv/bin/python docs/analysis/feature_resolution.py` (features from the cache).
"""
import numpy as np

from zsrec_ray.config import ZeroShotConfig
from zsrec_ray.ranking.evaluator import evaluate
from zsrec_ray.data.registry import domain_split
from zsrec_ray.features.featurizer import caching_featurizer
from zsrec_ray.models import MostPop

cfg = ZeroShotConfig()
for name in ["ml-1m", "douban-movie", "lastfm"]:
    split = domain_split(cfg, name)
    fs = caching_featurizer(cfg.resolved_cache_dir() / "features")(split.train, cfg.features)
    items = np.unique(fs.item, axis=0)
    users = np.unique(fs.user, axis=0)
    act = fs.block("item", "activity").argmax(1).astype(np.float32)
    rng = np.random.default_rng(0)
    jitter = rng.random(len(act)).astype(np.float32) * 1e-3
    score_bins = lambda u: np.tile(act + jitter, (len(u), 1))
    pop = MostPop().fit(split.train)
    r_bins = evaluate(score_bins, split, "test")["ndcg@20"]
    r_pop = evaluate(pop.score, split, "test")["ndcg@20"]
    top_bin = (act == act.max()).sum()
    print(f"{name}: items {fs.n_items}, distinct item feature rows {len(items)}, users {fs.n_users}, distinct user rows {len(users)}; "
          f"items in the top activity bin {top_bin}; MostPop {r_pop:.4f}; popularity decile, random within bin {r_bins:.4f}")
