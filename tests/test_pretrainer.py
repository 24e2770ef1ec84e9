"""The resumable Pretrainer core: resuming from its state equals never stopping; LOSO objective."""

import numpy as np
import torch

from conftest import planted_interactions
from test_pretrained import FEAT, PAIRS, splits
from zsrec_ray.config import PretrainConfig, ZeroShotConfig
from zsrec_ray.data.splits import random_split
from zsrec_ray.experiments.loso import LeaveOneSourceOut
from zsrec_ray.features.featurizer import featurize
from zsrec_ray.training.pretrain import Pretrainer, prepare_source

CFG = PretrainConfig(model="pair", epochs=3, patience=5, batch_size=256, lr=3e-3)


def trainer() -> Pretrainer:
    sources, _ = splits()
    return Pretrainer([prepare_source(s, FEAT, PAIRS, CFG.graph_frac) for s in sources], FEAT, PAIRS, CFG)


def test_resume_from_state_equals_uninterrupted_run(tmp_path):
    straight = trainer()
    rows = [straight.step() for _ in range(3)]
    first = trainer()
    first.step()
    first.step()
    torch.save(first.state_dict(), tmp_path / "state.pt")
    resumed = trainer()
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert resumed.epoch == 2 and not resumed.done
    last = resumed.step()
    assert resumed.done
    assert last["loss"] == rows[2]["loss"]
    assert last["valid_ndcg@20"] == rows[2]["valid_ndcg@20"]
    for a, b in zip(straight.checkpoint().net.parameters(), resumed.checkpoint().net.parameters()):
        assert torch.equal(a, b)


def test_allreduce_hook_sees_every_epoch_total():
    seen = []

    def spy(values, op):
        seen.append(op)
        return values

    sources, _ = splits()
    t = Pretrainer([prepare_source(s, FEAT, PAIRS, CFG.graph_frac) for s in sources], FEAT, PAIRS, CFG, allreduce=spy)
    row = t.step()
    assert seen == ["max", "sum", "sum"]  # step count, loss totals, validation sums
    assert row["triples"] > 0


def test_leave_one_source_out_never_reads_the_target():
    a = random_split(planted_interactions(200, 80, 5, 14, seed=1, name="a"), seed=0)
    b = random_split(planted_interactions(150, 120, 6, 12, seed=2, name="b"), seed=0)
    seen_domains = []

    def fn(graph, config):
        seen_domains.append(graph.name)
        return featurize(graph, config)

    cfg = ZeroShotConfig.model_validate({"features": FEAT.model_dump(), "pairs": PAIRS.model_dump(),
                                         "pretrain": {"epochs": 2, "batch_size": 256, "lr": 3e-3}})
    loso = LeaveOneSourceOut(cfg, {"a": a, "b": b}, fn, alpha=0.5)
    rows = [loso.step() for _ in range(2)]
    assert loso.done
    assert set(seen_domains) == {"a", "b"}
    for r in rows:
        assert 0 < r["zeroshot_ndcg@20"] <= 1 and 0 < r["blend_ndcg@20"] <= 1
        assert np.isclose(r["zeroshot_ndcg@20"], np.mean([r["zeroshot_ndcg@20/a"], r["zeroshot_ndcg@20/b"]]))


def test_prepare_sources_reports_every_domain_and_stage():
    """Source preparation says which domain and stage it is on, before each starts."""
    from zsrec_ray.training.pretrain import prepare_sources

    seen = []
    train_splits, _ = splits()
    sources = prepare_sources(train_splits, FEAT, PAIRS, 0.8, on_stage=lambda what, done, total: seen.append((what, done, total)))
    names = [s.name for s in sources]
    assert [w for w, _, _ in seen] == [f"{n}: {stage}" for n in names
                                       for stage in ("features, training split", "features, 80% feature graph")]
    assert [d for _, d, _ in seen] == list(range(2 * len(names))) and {t for _, _, t in seen} == {2 * len(names)}
    assert len(prepare_sources(train_splits, FEAT, PAIRS, 1.0, progress=True)) == len(names)


def test_validation_candidates_are_computed_once_and_rank_as_without_the_memo():
    from zsrec_ray.models.pretrained import PretrainedRecommender
    from zsrec_ray.ranking.evaluator import rank_metrics
    from zsrec_ray.training.pretrain import source_ndcg20

    t = trainer()
    src, users = t.sources[0], t.valid_users[0]
    calls = []
    real = src.full.pairs.candidates
    src.full.pairs.candidates = lambda *a, **k: calls.append(1) or real(*a, **k)
    first = source_ndcg20(t.net, src, users, candidates=30)
    n_first = len(calls)
    t.step()  # the network changes; the domain, its candidates and their features do not
    again = source_ndcg20(t.net, src, users, candidates=30)
    assert n_first > 0 and len(calls) == n_first and len(src.candidate_memo) == n_first
    fresh = PretrainedRecommender.on_domain(t.net, src.full, src.split.train, candidates=30)  # no memo
    want = rank_metrics(fresh, src.split.train.to_csr(), src.split.valid.to_csr(), ks=(20,), users=users)
    assert again == want["ndcg@20"] and again != first
    # another exclusion matrix is another key, not a stale hit
    fresh_memo = PretrainedRecommender.on_domain(t.net, src.full, src.split.train, 30, src.candidate_memo)
    fresh_memo.recommend(users[:5], 10, exclude=None)
    assert len(src.candidate_memo) == n_first + 1


def test_rank_owners_partition_the_users_and_balance_their_rows():
    from zsrec_ray.training.pretrain import rank_owners

    rng = np.random.default_rng(0)
    rows = rng.zipf(1.8, 301).clip(max=500)  # heavy-tailed, as real histories
    owner = rank_owners(rows, 2)
    assert set(owner.tolist()) == {0, 1}  # every user has exactly one owner
    assert abs((owner == 0).sum() - (owner == 1).sum()) <= 1
    load = [rows[owner == r].sum() for r in range(2)]
    naive = [rows[r::2].sum() for r in range(2)]
    assert abs(load[0] - load[1]) <= rows.max()  # within one user's rows
    assert abs(load[0] - load[1]) <= abs(naive[0] - naive[1])
    assert np.array_equal(rank_owners(rows, 2), owner)  # fixed: a user stays on its rank every epoch
    assert not rank_owners(rows, 1).any()


def test_ranks_train_on_disjoint_owned_users_every_epoch(monkeypatch):
    """Two ranks split every epoch's users, and no user moves between ranks across epochs."""
    from zsrec_ray.training import pretrain as pt

    sources, _ = splits()
    prepared = [prepare_source(s, FEAT, PAIRS, CFG.graph_frac) for s in sources]
    budget = CFG.model_copy(update={"users_per_epoch": 30})
    seen: dict[int, list[np.ndarray]] = {0: [], 1: []}
    real = pt.epoch_triples
    for rank in (0, 1):
        monkeypatch.setattr(pt, "epoch_triples", lambda src, smp, wp, users, _r=rank:
                            seen[_r].append(np.asarray(users).copy()) or real(src, smp, wp, users))
        t = Pretrainer(prepared, FEAT, PAIRS, budget, rank=rank, world=2)
        t.train_epoch()
        t.train_epoch()
    n = len(prepared)
    rng = np.random.default_rng(budget.seed)  # the users every rank draws, epoch after epoch
    for k in range(2 * n):  # per (epoch, source): together the ranks take each drawn user once
        assert not np.intersect1d(seen[0][k], seen[1][k]).size
        epoch_users = pt.epoch_users(prepared[k % n], budget.users_per_epoch, rng)
        assert np.array_equal(np.sort(np.concatenate([seen[0][k], seen[1][k]])), epoch_users)
    for s in range(n):  # across epochs, no user of a source moves between ranks
        mine = [np.concatenate(seen[r][s::n]) for r in (0, 1)]
        assert not np.intersect1d(mine[0], mine[1]).size
    assert all(len(seen[r][0]) for r in (0, 1))
