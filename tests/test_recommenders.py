"""One invariant suite run against every recommender, the pretrained zero-shot one included
(implicit-style test mixin, as parametrised tests)."""

import numpy as np
import pytest
import scipy.sparse as sp

import zsrec_ray.models.base as base_mod
from conftest import planted_interactions
from zsrec_ray.config import (BPRMFConfig, EASEConfig, FeatureConfig, ItemKNNConfig, LightGCNConfig, ModelsConfig,
                              PairConfig, PretrainConfig, RP3betaConfig, SpectralConfig)
from zsrec_ray.data.splits import random_split
from zsrec_ray.models import NotFittedError
from zsrec_ray.models.checkpoint import Checkpoint
from zsrec_ray.models.pretrained import PretrainedRecommender
from zsrec_ray.ranking import evaluate
from zsrec_ray.training import BASELINES, build_model
from zsrec_ray.training.pretrain import prepare_source, pretrain

FAST = ModelsConfig(
    itemknn=ItemKNNConfig(k=30),
    ease=EASEConfig(l2=[10, 100, 1000]),
    rp3beta=RP3betaConfig(alpha=[0.5, 1.0], beta=[0.0, 0.5], k=[20, 50]),
    bpr_mf=BPRMFConfig(dim=16, lr=0.02, batch_size=512, epochs=30, patience=5),
    lightgcn=LightGCNConfig(dim=16, lr=0.02, batch_size=1024, epochs=30, patience=5),
)
MODELS = (*BASELINES, "pretrained")
LEARNING = [m for m in MODELS if m != "mostpop"]


@pytest.fixture(scope="session")
def checkpoint():
    """A small pair model pretrained on two planted domains unrelated to ``planted_split``."""
    feat = FeatureConfig(spectral=SpectralConfig(dim=8), node_clusters=8, edge_clusters=8, cluster_bins=4,
                         activity_bins=5)
    pairs = PairConfig(item_neighbors=20, user_neighbors=10)
    sources = [random_split(planted_interactions(200, 80, 5, 14, seed=s, name=f"src{s}"), seed=0) for s in (11, 12)]
    cfg = PretrainConfig(epochs=6, patience=3, batch_size=512, lr=3e-3)
    ck, _ = pretrain([prepare_source(s, feat, pairs, cfg.graph_frac) for s in sources], feat, pairs, cfg)
    return ck


@pytest.fixture(scope="session")
def make(checkpoint):
    """name -> a fresh, unfitted recommender."""
    return lambda name: PretrainedRecommender(checkpoint) if name == "pretrained" else build_model(name, FAST)


@pytest.fixture(scope="module", params=MODELS)
def fitted(request, make, planted_split):
    return request.param, make(request.param).fit(planted_split.train, planted_split.valid)


def test_output_shape_and_dtype(fitted, planted_split):
    _, model = fitted
    s = model.score(np.array([0, 5, 7, 7]))
    assert s.shape == (4, planted_split.n_items)
    assert s.dtype == np.float32
    assert np.all(np.isfinite(s))


def test_deterministic_for_a_seed(fitted, make, planted_split):
    name, model = fitted
    again = make(name).fit(planted_split.train, planted_split.valid)
    users = np.arange(planted_split.n_users)
    np.testing.assert_allclose(model.score(users), again.score(users), rtol=1e-5, atol=1e-6)


def test_scores_do_not_depend_on_the_batch(fitted, planted_split):
    _, model = fitted
    users = np.arange(planted_split.n_users)
    whole = model.score(users)
    alone = np.vstack([model.score(np.array([u])) for u in users[:20]])
    np.testing.assert_allclose(alone, whole[:20], rtol=1e-5, atol=1e-5)
    shuffled = np.random.default_rng(0).permutation(users)
    np.testing.assert_allclose(model.score(shuffled), whole[shuffled], rtol=1e-5, atol=1e-5)


def test_recommend_is_the_masked_top_k_of_score(fitted, planted_split):
    _, model = fitted
    users = np.arange(planted_split.n_users)
    seen = planted_split.train.to_csr()[users]
    idx, val = model.recommend(users, 10, seen)
    assert idx.shape == val.shape == (len(users), 10) and idx.dtype == np.int64
    # no known item is recommended, and no item twice
    assert not (seen.toarray()[users[:, None], idx] > 0).any()
    assert all(len(set(row)) == 10 for row in idx.tolist())
    # the values are the model's own scores, best first, and nothing unmasked scores higher
    scores = model.score(users)
    np.testing.assert_allclose(val, np.take_along_axis(scores, idx, 1), rtol=1e-5, atol=1e-5)
    assert np.all(np.diff(val, axis=1) <= 1e-6)
    masked = np.where(seen.toarray() > 0, -np.inf, scores)
    np.testing.assert_allclose(val[:, -1], np.sort(masked, axis=1)[:, -10], rtol=1e-5, atol=1e-5)


def test_recommend_in_memory_bounded_blocks_gives_the_same_answer(fitted, planted_split, monkeypatch):
    _, model = fitted
    users = np.arange(planted_split.n_users)
    seen = planted_split.train.to_csr()
    idx, val = model.recommend(users, 20, seen)
    monkeypatch.setattr(base_mod, "RECOMMEND_CELLS", 7 * planted_split.n_items)  # blocks of 7 users
    idx2, val2 = model.recommend(users, 20, seen)
    np.testing.assert_allclose(val2, val, rtol=1e-5, atol=1e-5)
    assert (idx2 == idx).mean() > 0.99  # equal up to the order of exact ties


def test_rejects_bad_use(fitted, make, planted_split):
    name, model = fitted
    with pytest.raises(NotFittedError):
        make(name).score(np.array([0]))
    with pytest.raises(NotFittedError):
        make(name).recommend(np.array([0]), 5)
    with pytest.raises(ValueError, match="user ids"):
        model.score(np.array([planted_split.n_users]))
    with pytest.raises(ValueError, match="k must be positive"):
        model.recommend(np.array([0]), 0)
    with pytest.raises(ValueError, match="exclude must be"):
        model.recommend(np.array([0, 1]), 5, sp.csr_matrix((1, planted_split.n_items)))
    # k above the catalogue gives every item once
    idx, _ = model.recommend(np.array([0]), planted_split.n_items + 5)
    assert sorted(idx[0].tolist()) == list(range(planted_split.n_items))


@pytest.mark.parametrize("name", LEARNING)
def test_learning_models_beat_random_on_planted_structure(name, make, planted_split):
    rng = np.random.default_rng(0)
    random_res = evaluate(lambda u: rng.random((len(u), planted_split.n_items)), planted_split, "test")
    res = evaluate(make(name).fit(planted_split.train, planted_split.valid), planted_split, "test")
    assert res["ndcg@10"] > 2 * random_res["ndcg@10"]
    assert res["ndcg@10"] > 0.3


def test_pretrained_survives_save_and_load(checkpoint, planted_split, tmp_path):
    """The one model with persistence: a checkpoint round trip scores exactly as before."""
    users = np.arange(planted_split.n_users)
    before = PretrainedRecommender(checkpoint).fit(planted_split.train).score(users)
    loaded = Checkpoint.load(checkpoint.save(tmp_path / "ck.pt"))
    after = PretrainedRecommender(loaded).fit(planted_split.train).score(users)
    np.testing.assert_array_equal(after, before)


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


def test_two_stage_with_every_item_as_candidate_is_the_exhaustive_ranking(checkpoint, planted_split, monkeypatch):
    from zsrec_ray.models import pretrained

    users = np.arange(planted_split.n_users)
    seen = planted_split.train.to_csr()
    idx, val = PretrainedRecommender(checkpoint).fit(planted_split.train).recommend(users, 20, seen)
    half = PretrainedRecommender(checkpoint, candidates=planted_split.n_items // 2).fit(planted_split.train)
    assert np.array_equal(half.recommend(users, 20, seen)[0], idx)  # half the catalogue: scored exhaustively
    monkeypatch.setattr(pretrained, "EXHAUSTIVE_SHARE", 2.0)  # the two-stage path itself, every item a candidate
    model = PretrainedRecommender(checkpoint, candidates=planted_split.n_items).fit(planted_split.train)
    idx2, val2 = model.recommend(users, 20, seen)
    np.testing.assert_allclose(val2, val, rtol=1e-5, atol=1e-5)
    assert (idx2 == idx).mean() > 0.99  # up to the order of exact ties


@pytest.mark.parametrize("candidates", [5, 30])
def test_two_stage_ranks_candidates_then_popular_items_never_a_known_one(checkpoint, planted_split, candidates):
    users = np.arange(planted_split.n_users)
    seen = planted_split.train.to_csr()
    model = PretrainedRecommender(checkpoint, candidates=candidates).fit(planted_split.train)
    idx, val = model.recommend(users, 20, seen)
    assert idx.shape == (len(users), 20)
    assert not (seen.toarray()[users[:, None], idx] > 0).any()
    assert all(len(set(row)) == 20 for row in idx.tolist())
    assert np.isfinite(val).all() and np.all(np.diff(val, axis=1) <= 1e-6)
    # the candidates' scores are the pair model's own scores of those items
    full = model.score(users)
    n_cand = min(candidates, 20)
    np.testing.assert_allclose(val[:, :n_cand], np.take_along_axis(full, idx[:, :n_cand], 1), rtol=1e-4, atol=1e-4)
    # and the ranking stays far above MostPop on planted structure
    pop = evaluate(build_model("mostpop").fit(planted_split.train), planted_split, "test")["ndcg@10"]
    assert evaluate(model, planted_split, "test")["ndcg@10"] > 1.5 * pop
