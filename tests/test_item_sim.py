"""The item-item weights behind the itemknn_* pair features (cosine, RP3beta, EASE), and their
pick on the target's validation split when fine-tuning."""

import json

import numpy as np
import pytest
import torch

from conftest import planted_interactions, write_csv
from zsrec_ray.config import FeatureConfig, PairConfig, SpectralConfig, ZeroShotConfig
from zsrec_ray.errors import DataError
from zsrec_ray.features.featurizer import featurize
from zsrec_ray.features.neighbors import cosine_topk
from zsrec_ray.features.pairs import (NEIGHBOUR_SETTINGS, PairFeaturizer, item_neighbours, load_neighbours,
                                      neighbour_lists, neighbour_settings, relative_to_max, save_neighbours)
from zsrec_ray.features.item_weights import rp3beta_weights


@pytest.fixture(scope="module")
def x():
    return planted_interactions(150, 60, 5, 12, seed=3).to_csr()


def test_cosine_and_rp3beta_weights_are_their_models(x):
    assert (item_neighbours(x, PairConfig(item_neighbors=7)) != cosine_topk(x, 7)).nnz == 0
    rp3 = item_neighbours(x, PairConfig(item_sim="rp3beta", rp3_alpha=0.75, rp3_beta=0.5, item_neighbors=7))
    assert (rp3 != rp3beta_weights(x, 0.75, 0.5, 7)).nnz == 0 and rp3.nnz > 0


def test_ease_weights_keep_each_target_items_strongest_positive_weights(x):
    w = item_neighbours(x, PairConfig(item_sim="ease", ease_l2=30.0, item_neighbors=7)).toarray()
    d = x.toarray().astype(np.float64)
    p = np.linalg.inv(d.T @ d + 30.0 * np.eye(d.shape[1]))
    b = -p / np.diag(p)[None, :]  # Steck's closed form, brute force
    np.fill_diagonal(b, 0.0)
    for j in range(d.shape[1]):
        want = np.argsort(-b[:, j])[:7]
        want = want[b[want, j] > 0]
        assert set(np.flatnonzero(w[:, j])) == set(want)
        np.testing.assert_allclose(w[want, j], b[want, j], rtol=2e-3, atol=1e-5)


def test_ease_weights_refuse_a_catalogue_over_their_limit(x):
    with pytest.raises(DataError, match="ease_max_items=50"):
        item_neighbours(x, PairConfig(item_sim="ease", ease_max_items=50))


@pytest.mark.parametrize("item_sim", ["rp3beta", "ease"])
def test_pair_features_read_the_configured_weights(item_sim):
    d = planted_interactions(120, 50, 5, 10, seed=5)
    fs = featurize(d, FeatureConfig(spectral=SpectralConfig(dim=6), node_clusters=6, edge_clusters=6))
    cfg = PairConfig(item_sim=item_sim, item_neighbors=15, user_neighbors=10)
    pf = PairFeaturizer(d, cfg, fs.user_emb, fs.item_emb)
    users = np.arange(40)
    w = item_neighbours(d.to_csr(), cfg).astype(np.float64)
    raw = torch.from_numpy((d.to_csr().astype(np.float64)[users] @ w).toarray())
    rel = pf(users)[:, :, cfg.names().index("itemknn_rel")]
    assert torch.allclose(rel, relative_to_max(raw).float())
    cosine = PairFeaturizer(d, cfg.model_copy(update={"item_sim": "cosine"}), fs.user_emb, fs.item_emb)
    assert not torch.equal(cosine(users), pf(users))


def test_stored_lists_are_reused_only_for_the_same_weights(tmp_path):
    d = planted_interactions(100, 50, 5, 10, seed=2)
    cosine = PairConfig(item_neighbors=10, user_neighbors=5)
    # cosine lists keep the settings they were always stored with: stores written before stay valid
    assert set(neighbour_settings(cosine)) == set(NEIGHBOUR_SETTINGS)
    save_neighbours(neighbour_lists(d, cosine), cosine, tmp_path)
    rp3 = cosine.model_copy(update={"item_sim": "rp3beta"})
    assert load_neighbours(tmp_path, cosine) is not None and load_neighbours(tmp_path, rp3) is None
    save_neighbours(neighbour_lists(d, rp3), rp3, tmp_path)
    assert load_neighbours(tmp_path, rp3) is not None
    assert load_neighbours(tmp_path, rp3.model_copy(update={"rp3_alpha": 1.0})) is None
    assert load_neighbours(tmp_path, rp3.model_copy(update={"ease_l2": 1.0})) is not None  # not an rp3 setting
    assert json.loads((tmp_path / "neighbours.json").read_text())["item_sim"] == "rp3beta"


def test_finetune_picks_the_weights_that_rank_validation_best(small_ck, tmp_path):
    from zsrec_ray.data.registry import load_domains
    from zsrec_ray.experiments.finetune import pick_item_sim, run_finetune
    from zsrec_ray.features.featurizer import caching_featurizer
    from zsrec_ray.models.checkpoint import Checkpoint
    from zsrec_ray.models.pretrained import PretrainedRecommender

    target = write_csv(tmp_path / "t.csv", planted_interactions(180, 70, 5, 14, seed=9), ("user", "item"))
    cfg = ZeroShotConfig(target=str(target), compare=["mostpop"], cache_dir=str(tmp_path / "cache"),
                         finetune={"epochs": 1, "bases": [], "valid_users": 10_000},
                         model={"rp3beta": {"alpha": [0.5, 1.0], "beta": [0.0, 0.5], "k": [20]},
                                "ease": {"l2": [10.0, 100.0]}})
    out = run_finetune(cfg, small_ck, checkpoint_path=str(tmp_path / "tuned.pt"))
    trials = out["item_sim"]
    assert [t["item_sim"] for t in trials] == ["cosine", "rp3beta", "ease"]
    assert trials[1]["rp3_alpha"] in (0.5, 1.0) and trials[2]["ease_l2"] in (10.0, 100.0)
    picked = max(trials, key=lambda t: t["valid_ndcg@20"])
    tuned = Checkpoint.load(tmp_path / "tuned.pt")
    assert tuned.pairs.item_sim == picked["item_sim"] == out["rows"][-2]["item_sim"]
    names = [r["model"] for r in out["rows"]]
    untrained = [] if picked["item_sim"] == "cosine" else [f"zero-shot, {picked['item_sim']} neighbours"]
    assert names == ["zero-shot", *untrained, "fine-tuned", "mostpop"]
    # the fine-tuned checkpoint featurizes a domain with the picked weights wherever it is loaded
    split = load_domains(cfg, [cfg.target])["t"]
    model = PretrainedRecommender(tuned).fit(split.train)
    want = item_neighbours(split.train.to_csr(), tuned.pairs)
    assert abs(model.domain_.pairs.item_sim - want).max() < 1e-12
    # a single choice is taken as it is, with the in-domain model's hyperparameters, nothing evaluated
    ck = Checkpoint.load(small_ck)
    cfg1 = cfg.model_copy(update={"finetune": cfg.finetune.model_copy(update={"item_sim": ["rp3beta"]})})
    one, [trial] = pick_item_sim(cfg1, ck, split, caching_featurizer(tmp_path / "cache" / "f"))
    assert one.pairs.item_sim == "rp3beta" and "valid_ndcg@20" not in trial  # one choice: nothing evaluated
    assert one.pairs.rp3_alpha == trials[1]["rp3_alpha"] and one.net is ck.net


def test_a_pick_with_no_applicable_choice_is_refused(small_ck):
    from zsrec_ray.data.splits import random_split
    from zsrec_ray.errors import ConfigError
    from zsrec_ray.experiments.finetune import pick_item_sim
    from zsrec_ray.models.checkpoint import Checkpoint

    split = random_split(planted_interactions(120, 50, 5, 10, seed=7), seed=0)
    cfg = ZeroShotConfig(finetune={"item_sim": ["ease"]}, model={"ease": {"max_items": 20}})
    with pytest.raises(ConfigError, match="max_items=20"):
        pick_item_sim(cfg, Checkpoint.load(small_ck), split, featurize)
