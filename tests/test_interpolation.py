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


# --- two-stage mixes: the pair network scores its candidates plus the base's top items only ---

def _two_stage_model(small_ck, planted_split, candidates=30):
    from zsrec_ray.models.checkpoint import Checkpoint
    from zsrec_ray.models.pretrained import PretrainedRecommender

    model = PretrainedRecommender(Checkpoint.load(small_ck), candidates=candidates).fit(planted_split.train)
    assert model.two_stage
    return model


def test_candidate_scores_add_the_extra_items_scored_as_the_network_scores_them(small_ck, planted_split):
    model = _two_stage_model(small_ck, planted_split)
    users = np.arange(planted_split.n_users)
    seen = planted_split.train.to_csr()
    plain_items, plain_scores = model.candidate_scores(users, seen)
    extra = np.random.default_rng(0).integers(0, planted_split.n_items, (len(users), 12))
    extra[:, -1] = plain_items[:, 0]  # one extra that is a candidate already: not repeated
    extra[:, -2] = -1  # no item
    items, scores = model.candidate_scores(users, seen, extra)
    assert np.array_equal(items[:, :plain_items.shape[1]], plain_items)
    torch.testing.assert_close(scores[:, :plain_items.shape[1]], plain_scores)
    full = model.score(users)
    for r in range(len(users)):
        got = items[r][items[r] >= 0]
        assert len(set(got.tolist())) == len(got)  # distinct
        assert set(extra[r][extra[r] >= 0].tolist()) <= set(got.tolist())
        assert not seen[r, plain_items[r][plain_items[r] >= 0]].toarray().any()
        np.testing.assert_allclose(scores[r][items[r] >= 0].numpy(), full[r, got], rtol=1e-4, atol=1e-4)
    assert torch.isinf(scores[torch.from_numpy(items < 0)]).all()


def test_two_stage_mix_endpoints_are_the_base_and_the_two_stage_ranking(small_ck, planted_split):
    from zsrec_ray.experiments.interpolation import _candidate_mixes
    from zsrec_ray.ranking.evaluator import rank_metrics_many, split_masks

    model = _two_stage_model(small_ck, planted_split)
    knn = ItemKNN(k=30).fit(planted_split.train)
    exclude, target = split_masks(planted_split, "valid")
    res = rank_metrics_many(_candidate_mixes(model, knn.score, exclude, [0.0, 1.0], base_top=0), exclude, target)
    assert res[0.0].metrics == evaluate(knn.score, planted_split, "valid").metrics
    assert res[1.0].metrics == pytest.approx(evaluate(model, planted_split, "valid").metrics, abs=1e-9)


def test_two_stage_interpolation_never_scores_every_item_and_ranks_the_base_top_as_candidates(
        small_ck, planted_split, monkeypatch):
    from zsrec_ray.experiments.interpolation import _candidate_mixes
    from zsrec_ray.ranking.topk import masked_topk

    model = _two_stage_model(small_ck, planted_split, candidates=10)
    knn = ItemKNN(k=30).fit(planted_split.train)
    monkeypatch.setattr(model, "score", lambda users: pytest.fail("the pair network scored every item"))
    rep = interpolation_report(model, knn.score, planted_split, "itemknn")
    assert rep["two_stage"] and set(rep["valid_curve"]) == {float(a) for a in np.linspace(0, 1, 11).round(1)}
    best_alone = max(rep["base_test"]["ndcg@20"], rep["pretrained_test"]["ndcg@20"])
    assert rep["interpolated_test"]["ndcg@20"] >= 0.9 * best_alone
    users = np.arange(planted_split.n_users)
    seen = planted_split.train.to_csr()
    base_top = masked_topk(knn.score(users), seen, 5).indices.numpy()
    (_, (items, compact)), = _candidate_mixes(model, knn.score, seen, [0.5], k=20)(users)
    (_, dense), = _candidate_mixes(model, knn.score, seen, [0.5], k=10**6)(users)  # too few: every item scored
    dense = dense.numpy()
    assert np.isfinite(dense).all()  # every item is ranked
    for r in range(len(users)):
        inside = items[r][items[r] >= 0]
        outside = np.setdiff1d(np.arange(planted_split.n_items), inside)
        assert set(base_top[r].tolist()) <= set(inside.tolist()) and len(inside) >= 20
        assert not seen[r, inside].toarray().any()
        np.testing.assert_allclose(dense[r, inside], compact[r][items[r] >= 0].numpy())
        assert torch.isinf(compact[r][items[r] < 0]).all()
        if len(outside):
            assert dense[r, inside].min() > dense[r, outside].max()  # candidates first
    # the candidates' top 20 is the full ranking's top 20
    top_compact = np.take_along_axis(items, torch.topk(compact, 20, dim=1).indices.numpy(), axis=1)
    assert np.array_equal(top_compact, masked_topk(dense, seen, 20).indices.numpy())


def test_a_candidate_ranking_with_fewer_than_k_candidates_is_refused(planted_split):
    from zsrec_ray.ranking.evaluator import rank_metrics_many, split_masks

    exclude, target = split_masks(planted_split, "valid")

    def variants(users):
        items = np.tile(np.arange(5), (len(users), 1))
        yield "five", (items, torch.zeros(items.shape))

    def padded(users):  # 30 columns, 25 of them no candidate
        items = np.tile(np.r_[np.arange(5), -np.ones(25, dtype=np.int64)], (len(users), 1))
        yield "padded", (items, torch.where(torch.from_numpy(items >= 0), 0.0, -torch.inf))

    for fn in (variants, padded):
        with pytest.raises(ValueError, match="fewer than k=20"):
            rank_metrics_many(fn, exclude, target, ks=(20,))
