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
