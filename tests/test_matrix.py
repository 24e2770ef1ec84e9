"""Source -> target matrix: one pretraining per source, every target evaluated, heatmap drawn."""

from conftest import planted_interactions
from test_pretrained import FEAT, PAIRS
from zsrec_ray.config import ZeroShotConfig
from zsrec_ray.data.splits import random_split
from zsrec_ray.experiments import zeroshot


def test_matrix_and_heatmap(tmp_path, monkeypatch):
    splits = {n: random_split(planted_interactions(150 + 30 * k, 80, 4, 12, seed=k, name=n), seed=0)
              for k, n in enumerate(["a", "b", "c"])}
    monkeypatch.setattr(zeroshot, "domain_split", lambda cfg, d: splits[d])
    trained = []
    real = zeroshot.pretrain_on
    monkeypatch.setattr(zeroshot, "pretrain_on", lambda cfg, s, p=False: trained.append(s) or real(cfg, s, p))
    cfg = ZeroShotConfig.model_validate({"cache_dir": str(tmp_path), "features": FEAT.model_dump(),
                                         "pairs": PAIRS.model_dump(),
                                         "pretrain": {"epochs": 2, "batch_size": 256, "lr": 3e-3}})
    m = zeroshot.run_matrix(cfg, ["a", "b", "c"])
    assert trained == [["a"], ["b"], ["c"]]
    for s in "abc":
        for t in "abc":
            cell = m["cells"][s][t]
            assert 0 < cell["ndcg@20"] <= 1
            assert cell["x_mostpop"] == cell["ndcg@20"] / m["mostpop"][t]
    png = zeroshot.plot_matrix(m, tmp_path / "m.png")
    assert png.stat().st_size > 10_000


def test_leave_one_out_resumes_finished_targets(monkeypatch):
    calls = []
    monkeypatch.setattr(zeroshot, "run_zeroshot",
                        lambda cfg, s, t, p=False: calls.append(t) or {"target": t, "sources": s, "rows": []})
    saved = []
    done = [{"target": "a", "sources": ["b", "c"], "rows": ["kept"]}]
    res = zeroshot.run_leave_one_out(ZeroShotConfig(), ["a", "b", "c"], on_result=lambda r: saved.append(len(r)),
                                     done=done)
    assert calls == ["b", "c"] and res[0]["rows"] == ["kept"] and [r["target"] for r in res] == ["a", "b", "c"]
    assert saved == [2, 3]
