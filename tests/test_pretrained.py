"""The pretrained zero-shot ranker: pooled pretraining, zero-shot scoring, checkpoint contract."""

import numpy as np
import pytest
import torch

from conftest import planted_interactions
from zsrec_ray.config import FeatureConfig, PairConfig, PretrainConfig, SpectralConfig
from zsrec_ray.data.splits import random_split
from zsrec_ray.errors import DataError
from zsrec_ray.ranking import evaluate
from zsrec_ray.models import MostPop
from zsrec_ray.models.checkpoint import Checkpoint
from zsrec_ray.models.pretrained import PretrainedRecommender
from zsrec_ray.training.pretrain import prepare_source, pretrain

FEAT = FeatureConfig(spectral=SpectralConfig(dim=8), node_clusters=8, edge_clusters=8, cluster_bins=4,
                     activity_bins=5)
PAIRS = PairConfig(item_neighbors=20, user_neighbors=10)


def splits():
    a = random_split(planted_interactions(200, 80, 5, 14, seed=1, name="a"), seed=0)
    b = random_split(planted_interactions(150, 120, 6, 12, seed=2, name="b"), seed=0)
    target = random_split(planted_interactions(240, 100, 4, 15, seed=3, name="t"), seed=0)
    return [a, b], target


def train(model: str, graph_frac: float = 0.8, epochs: int = 8):
    sources, _ = splits()
    cfg = PretrainConfig(model=model, epochs=epochs, patience=3, batch_size=512, lr=3e-3, graph_frac=graph_frac)
    prepared = [prepare_source(s, FEAT, PAIRS if model == "pair" else None, graph_frac) for s in sources]
    return pretrain(prepared, FEAT, PAIRS, cfg)


@pytest.fixture(scope="module")
def pair_ck():
    return train("pair")


def test_zero_shot_pair_model_beats_random_and_mostpop(pair_ck):
    ck, report = pair_ck
    _, target = splits()
    assert 1 <= report.best_epoch <= report.epochs
    model = PretrainedRecommender(ck).fit(target.train)
    res = evaluate(model.score, target, "test")
    pop = evaluate(MostPop().fit(target.train).score, target, "test")
    rng = np.random.default_rng(0)
    rnd = evaluate(lambda u: rng.random((len(u), target.n_items)), target, "test")
    assert res["ndcg@20"] > 2 * rnd["ndcg@20"]
    assert res["ndcg@20"] > 1.5 * pop["ndcg@20"]


def test_scores_are_deterministic_for_a_seed(pair_ck):
    ck, _ = pair_ck
    ck2, _ = train("pair")
    _, target = splits()
    users = np.arange(target.n_users)
    a = PretrainedRecommender(ck).fit(target.train).score(users)
    b = PretrainedRecommender(ck2).fit(target.train).score(users)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_paper_model_runs_without_pair_features():
    ck, _ = train("paper", epochs=2)
    assert ck.net.n_pair == 0 and ck.pair_names == []
    _, target = splits()
    s = PretrainedRecommender(ck).fit(target.train).score(np.arange(5))
    assert s.shape == (5, target.n_items) and np.isfinite(s).all()


def test_checkpoint_round_trip(pair_ck, tmp_path):
    ck, _ = pair_ck
    _, target = splits()
    path = ck.save(tmp_path / "model.pt")
    loaded = Checkpoint.load(path)
    assert loaded.feature_schema == ck.feature_schema and loaded.pairs == ck.pairs
    users = np.arange(20)
    np.testing.assert_allclose(PretrainedRecommender(loaded).fit(target.train).score(users),
                               PretrainedRecommender(ck).fit(target.train).score(users), rtol=1e-6)
    # weights_only loading: the payload holds only tensors and strings
    payload = torch.load(path, weights_only=True)
    assert set(payload) >= {"state_dict", "feature_schema", "pretrain"}


def test_checkpoint_schema_mismatch_is_a_clear_error(pair_ck):
    ck, _ = pair_ck
    _, target = splits()
    other = FEAT.model_copy(update={"activity_bins": 7})
    bad = Checkpoint(ck.net, ck.pretrain, other, ck.pairs, ck.feature_schema, {})
    with pytest.raises(DataError, match="feature schema mismatch"):
        PretrainedRecommender(bad).fit(target.train)


def test_corrupt_or_missing_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a valid zsrec checkpoint"):
        Checkpoint.load(bad)
    with pytest.raises(DataError, match="not found"):
        Checkpoint.load(tmp_path / "missing.pt")


def test_flipped_weight_bytes_are_a_clear_error_not_wrong_weights(pair_ck, tmp_path):
    ck, _ = pair_ck
    path = ck.save(tmp_path / "ck.pt")
    raw = bytearray(path.read_bytes())
    weight = ck.net.user_tower[0].weight.detach().numpy().tobytes()
    at = bytes(raw).find(weight)
    assert at > 0, "the weight's bytes are stored verbatim in the file"
    for i in range(at + 16, at + 416):  # inside the tensor data: the zip container stays valid
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="checkpoint is corrupt"):
        Checkpoint.load(path)


def test_feature_graph_and_positives_are_disjoint():
    sources, _ = splits()
    src = prepare_source(sources[0], FEAT, PAIRS, 0.8)
    graph = src.graph.pairs.x.toarray() > 0
    assert not graph[src.pos_user, src.pos_item].any()
    assert len(src.pos_user) + graph.sum() == len(sources[0].train)
    full = prepare_source(sources[0], FEAT, PAIRS, 1.0)
    assert full.graph is full.full and len(full.pos_user) == len(sources[0].train)


def test_score_all_in_place_inference_equals_the_training_arithmetic():
    from zsrec_ray.models.zeroshot_net import ZeroShotNet

    torch.manual_seed(0)
    net = ZeroShotNet(7, 5, 6, PretrainConfig(model="pair", hidden=16, out_dim=8, pair_hidden=8))
    tu, ti, pf = torch.randn(3, 8), torch.randn(11, 8), torch.rand(3, 11, 6)
    with torch.no_grad():
        fast = net.score_all(tu, ti, pf)
        pairs = net.score_pairs(tu.repeat_interleave(11, 0), ti.repeat(3, 1), pf.reshape(33, 6)).reshape(3, 11)
    slow = net.score_all(tu, ti, pf).detach()  # grad enabled: the out-of-place path
    torch.testing.assert_close(fast, slow)
    torch.testing.assert_close(fast, pairs)


@pytest.mark.parametrize("c", [4, 1])  # 11 items: all dot products then a gather (c=4), or per candidate (c=1)
def test_score_candidates_equals_the_pair_rows(c):
    from zsrec_ray.models.zeroshot_net import ZeroShotNet

    torch.manual_seed(0)
    net = ZeroShotNet(7, 5, 6, PretrainConfig(model="pair", hidden=16, out_dim=8, pair_hidden=8))
    tu, ti, pf = torch.randn(3, 8), torch.randn(11, 8), torch.rand(3, c, 6)
    items = torch.tensor([[0, 5, 10, 2], [3, 3, 1, 0], [9, 8, 7, 6]])[:, :c]
    with torch.no_grad():
        got = net.score_candidates(tu, ti, items, pf)
        want = net.score_pairs(tu.repeat_interleave(c, 0), ti[items.reshape(-1)], pf.reshape(3 * c, 6)).reshape(3, c)
    torch.testing.assert_close(got, want)
