"""One invariant suite run against every recommender (implicit-style test mixin, as parametrised tests)."""

import numpy as np
import pytest
import torch

from zsrec_ray.config import BPRMFConfig, ItemKNNConfig, LightGCNConfig, ModelsConfig
from zsrec_ray.evaluation import evaluate, top_k
from zsrec_ray.models import BASELINES, NotFittedError, build_model

FAST = ModelsConfig(
    itemknn=ItemKNNConfig(k=30),
    bpr_mf=BPRMFConfig(dim=16, lr=0.02, batch_size=512, epochs=30, patience=5),
    lightgcn=LightGCNConfig(dim=16, lr=0.02, batch_size=1024, epochs=30, patience=5),
)
LEARNING = [m for m in BASELINES if m != "mostpop"]


@pytest.fixture(scope="module", params=BASELINES)
def fitted(request, planted_split):
    return request.param, build_model(request.param, FAST).fit(planted_split.train, planted_split.valid)


def test_output_shape_and_dtype(fitted, planted_split):
    _, model = fitted
    users = np.array([0, 5, 7, 7])
    s = model.score(users)
    assert s.shape == (4, planted_split.n_items)
    assert s.dtype == np.float32
    assert np.all(np.isfinite(s))


def test_deterministic_for_a_seed(fitted, planted_split):
    name, model = fitted
    again = build_model(name, FAST).fit(planted_split.train, planted_split.valid)
    users = np.arange(planted_split.n_users)
    np.testing.assert_allclose(model.score(users), again.score(users), rtol=1e-5, atol=1e-6)


def test_masked_items_never_recommended(fitted, planted_split):
    _, model = fitted
    users = np.arange(planted_split.n_users)
    seen = planted_split.train.to_csr()[users]
    idx = top_k(torch.from_numpy(np.array(model.score(users))), seen, 10).numpy()
    assert not (seen.toarray()[np.arange(len(users))[:, None], idx] > 0).any()


def test_rejects_bad_use(planted_split):
    for name in BASELINES:
        with pytest.raises(NotFittedError):
            build_model(name, FAST).score(np.array([0]))
    model = build_model("mostpop").fit(planted_split.train)
    with pytest.raises(ValueError, match="user ids"):
        model.score(np.array([planted_split.n_users]))


@pytest.mark.parametrize("name", LEARNING)
def test_learning_models_beat_random_on_planted_structure(name, planted_split):
    rng = np.random.default_rng(0)
    random_res = evaluate(lambda u: rng.random((len(u), planted_split.n_items)), planted_split, "test")
    model = build_model(name, FAST).fit(planted_split.train, planted_split.valid)
    res = evaluate(model.score, planted_split, "test")
    assert res["ndcg@10"] > 2 * random_res["ndcg@10"]
    assert res["ndcg@10"] > 0.3


@pytest.mark.parametrize("name", ["bpr_mf", "lightgcn"])
def test_early_stopping_reports_best_epoch(name, planted_split):
    model = build_model(name, FAST).fit(planted_split.train, planted_split.valid)
    rep = model.fit_report
    assert 1 <= rep["best_epoch"] <= rep["epochs"] <= FAST.bpr_mf.epochs
    best = max(h["valid_ndcg@20"] for h in rep["history"] if "valid_ndcg@20" in h)
    assert rep["best_valid_ndcg20"] == pytest.approx(best)
    # the kept weights are the best epoch's: re-evaluating on valid gives the best score
    res = evaluate(model.score, planted_split, "valid", ks=(20,))
    assert res["ndcg@20"] == pytest.approx(best, abs=1e-6)
