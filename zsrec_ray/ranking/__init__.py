"""Ranking building blocks: metrics, masked top-k, the batched full-ranking evaluator.

Knows nothing of models or training: a ranker is anything with ``recommend(users, k, exclude)``,
or a plain score function (users -> users x items scores).
"""

from zsrec_ray.ranking.evaluator import EvalResult, Ranker, ScoreFn, as_ranker, evaluate, rank_metrics
from zsrec_ray.ranking.metrics import ndcg_at_k, recall_at_k
from zsrec_ray.ranking.topk import masked_topk, top_k

__all__ = ["EvalResult", "Ranker", "ScoreFn", "as_ranker", "evaluate", "masked_topk", "ndcg_at_k", "rank_metrics",
           "recall_at_k", "top_k"]
