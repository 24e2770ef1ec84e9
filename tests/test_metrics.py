"""Metrics and the batched full-ranking evaluator against hand-computed and brute-force references."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from zsrec_ray.ranking import ndcg_at_k, rank_metrics, recall_at_k


def brute_force(scores, exclude, target, k):
    """One user at a time, plain Python: the reference the vectorised evaluator must match."""
    recalls, ndcgs = [], []
    for u in range(scores.shape[0]):
        rel = set(np.flatnonzero(target[u]))
        if not rel:
            continue
        masked = set(np.flatnonzero(exclude[u]))
        ranked = [i for i in sorted(range(scores.shape[1]), key=lambda i: (-scores[u, i], i)) if i not in masked][:k]
        hits = [1.0 if i in rel else 0.0 for i in ranked]
        recalls.append(sum(hits) / len(rel))
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(rel), k)))
        ndcgs.append(dcg / idcg)
    return float(np.mean(recalls)), float(np.mean(ndcgs)), len(recalls)


def test_hand_computed_tiny_example():
    # one user, items 0..4; scores rank 4,3,2,1,0; item 4 is masked; relevant: {3, 0}
    scores = np.array([[0.0, 1.0, 2.0, 3.0, 4.0]])
    exclude = sp.csr_matrix(np.array([[0, 0, 0, 0, 1]]))
    target = sp.csr_matrix(np.array([[1, 0, 0, 1, 0]]))
    res = rank_metrics(lambda u: scores[u], exclude, target, ks=(2, 4))
    # ranking after masking: 3, 2, 1, 0 -> hits at ranks 1 and 4
    assert res["recall@2"] == pytest.approx(0.5)
    assert res["ndcg@2"] == pytest.approx(1.0 / (1.0 + 1 / math.log2(3)))
    assert res["recall@4"] == pytest.approx(1.0)
    assert res["ndcg@4"] == pytest.approx((1.0 + 1 / math.log2(5)) / (1.0 + 1 / math.log2(3)))
    assert res.n_users == 1 and res.n_skipped == 0


def test_metric_functions_ideal_uses_min_relevant_k():
    hits = np.array([[True, False, False], [True, True, True]])
    n_rel = np.array([1, 10])
    assert ndcg_at_k(hits, n_rel, 3)[0] == pytest.approx(1.0)
    assert ndcg_at_k(hits, n_rel, 3)[1] == pytest.approx(1.0)
    assert recall_at_k(hits, n_rel, 3).tolist() == pytest.approx([1.0, 0.3])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 30
    scores = rng.normal(size=(n_users, n_items)).astype(np.float32)
    exclude = (rng.random((n_users, n_items)) < 0.2).astype(np.float32)
    target = ((rng.random((n_users, n_items)) < 0.1) & (exclude == 0)).astype(np.float32)
    target[:3] = 0  # users without test items are skipped
    res = rank_metrics(lambda u: scores[u], sp.csr_matrix(exclude), sp.csr_matrix(target), ks=(5, 10), batch_size=7)
    for k in (5, 10):
        rec, ndcg, n = brute_force(scores, exclude, target, k)
        assert res[f"recall@{k}"] == pytest.approx(rec, rel=1e-6)
        assert res[f"ndcg@{k}"] == pytest.approx(ndcg, rel=1e-6)
        assert res.n_users == n
    assert res.n_skipped == n_users - res.n_users >= 3


def test_masked_item_never_in_top_k():
    rng = np.random.default_rng(5)
    n_users, n_items = 20, 15
    scores = rng.normal(size=(n_users, n_items))
    exclude = np.zeros((n_users, n_items))
    best = scores.argmax(axis=1)
    exclude[np.arange(n_users), best] = 1  # mask exactly the highest-scored item
    # make the masked item the only relevant one: it must never be counted as a hit
    target = exclude.copy()
    res = rank_metrics(lambda u: scores[u], sp.csr_matrix(exclude), sp.csr_matrix(target), ks=(1, 14))
    assert res["recall@14"] == 0.0 and res["ndcg@1"] == 0.0


def test_masked_topk_values_match_indices_and_masked_items_come_last():
    from zsrec_ray.ranking.evaluator import masked_topk
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.7], [0.2, 0.8, 0.4, 0.6]])
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 0, 0, 0]]))
    top = masked_topk(scores, exclude, 10)  # k above the item count is clipped
    assert top.indices[0, :2].tolist() == [2, 1] and set(top.indices[0, 2:].tolist()) == {0, 3}
    assert top.indices[1].tolist() == [1, 3, 2, 0]
    assert top.values[0, :2].tolist() == pytest.approx([0.5, 0.1]) and torch.isinf(top.values[0, 2:]).all()
    assert scores[0, 0] == pytest.approx(0.9)  # the caller's scores are not modified
