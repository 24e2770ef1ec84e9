import numpy as np
import pytest
import torch

from zsrec_ray.ranking import evaluate
from zsrec_ray.experiments.interpolation import choose_alpha, interpolated, interpolation_report, zscore_rows
from zsrec_ray.models import ItemKNN, MostPop


def test_zscore_rows():
    z = zscore_rows(torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    assert z[0].tolist() == pytest.approx([-1.0, 0.0, 1.0])
    assert z[1].tolist() == [0.0, 0.0, 0.0]


def test_alpha_endpoints_reproduce_each_model(planted_split):
    knn = ItemKNN(k=30).fit(planted_split.train)
    pop = MostPop().fit(planted_split.train)
    for alpha, ref in ((1.0, knn), (0.0, pop)):
        mixed = evaluate(interpolated(knn.score, pop.score, alpha), planted_split, "test")
        assert mixed.metrics == pytest.approx(evaluate(ref.score, planted_split, "test").metrics)


def test_alpha_chosen_on_validation_prefers_the_informative_model(planted_split):
    knn = ItemKNN(k=30).fit(planted_split.train)
    rng = np.random.default_rng(0)
    noise = rng.random((planted_split.n_users, planted_split.n_items)).astype(np.float32)
    alpha, curve = choose_alpha(knn.score, lambda u: noise[u], planted_split)
    assert alpha >= 0.5 and curve[alpha] == max(curve.values()) and len(curve) == 11
    rep = interpolation_report(knn.score, lambda u: noise[u], planted_split, "noise")
    assert rep["interpolated_test"]["ndcg@20"] > rep["base_test"]["ndcg@20"]
    assert rep["interpolated_test"]["rel_ndcg@20"] > 0


def test_one_pass_equals_evaluating_every_mix_and_scores_each_user_once(planted_split):
    knn = ItemKNN(k=30).fit(planted_split.train)
    pop = MostPop().fit(planted_split.train)
    calls = {"knn": 0, "pop": 0}

    def counted(name, fn):
        def score(users):
            calls[name] += len(users)
            return fn(users)
        return score

    alpha, curve = choose_alpha(counted("knn", knn.score), counted("pop", pop.score), planted_split)
    n_valid = int((np.diff(planted_split.valid.to_csr().indptr) > 0).sum())
    assert calls == {"knn": n_valid, "pop": n_valid}  # once per validation user, not once per alpha
    for a, got in curve.items():
        assert got == evaluate(interpolated(knn.score, pop.score, a), planted_split, "valid", ks=(20,))["ndcg@20"]
    rep = interpolation_report(knn.score, pop.score, planted_split, "pop")
    assert rep["interpolated_test"]["ndcg@20"] == evaluate(interpolated(knn.score, pop.score, alpha),
                                                           planted_split, "test")["ndcg@20"]
    assert rep["pretrained_test"] == pytest.approx(evaluate(knn.score, planted_split, "test").metrics)
    raw = evaluate(interpolated(knn.score, pop.score, 0.5, normalise=False), planted_split, "test")
    assert rep["raw_half_test"]["ndcg@20"] == raw["ndcg@20"]
