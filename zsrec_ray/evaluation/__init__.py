"""Full-ranking evaluation (metrics, batched evaluator)."""

from zsrec_ray.evaluation.evaluator import EvalResult, evaluate, rank_metrics, top_k
from zsrec_ray.evaluation.metrics import ndcg_at_k, recall_at_k

__all__ = ["EvalResult", "evaluate", "rank_metrics", "top_k", "ndcg_at_k", "recall_at_k"]
