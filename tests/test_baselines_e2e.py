"""End to end on real data: the `zsrec baselines` command, the Ray job wrapper, config errors."""

import json

import pytest

from zsrec_ray.cli import main
from zsrec_ray.config import BaselinesConfig


@pytest.mark.slow
def test_cli_baselines_on_ml100k(data_dir, tmp_path, capsys):
    out = tmp_path / "res.json"
    rc = main(["baselines", "--datasets", "ml-100k", "--models", "mostpop,itemknn",
               "--data-dir", str(data_dir), "--output", str(out), "--json"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads(out.read_text())
    assert printed["results"] == saved["results"]
    rows = {r["model"]: r for r in saved["results"]}
    stats = saved["stats"][0]
    assert stats["users"] == 943 and stats["interactions"] == 99287
    assert rows["mostpop"]["users"] == 943
    # ml-100k, 5-core, random 80/10/10: MostPop well above random, ItemKNN well above MostPop
    assert 0.05 < rows["mostpop"]["ndcg@20"] < rows["itemknn"]["ndcg@20"]


def test_cli_reports_config_errors_cleanly(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: [ml-100k]\nsplit: {kind: sideways}\n")
    assert main(["baselines", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "kind" in err
    assert main(["baselines", "--datasets", "no-such-data", "--models", "mostpop"]) == 2
    assert "no-such-data" in capsys.readouterr().err


@pytest.mark.slow
def test_ray_baselines_keeps_results_when_a_dataset_fails(ray_session, data_dir):
    from zsrec_ray.distributed.baselines import run_baselines

    cfg = BaselinesConfig(data_dir=str(data_dir), datasets=["ml-100k", "no-such-data"], models=["mostpop"])
    summary = run_baselines(cfg)
    assert [r["dataset"] for r in summary["results"]] == ["ml-100k"]
    assert summary["results"][0]["ndcg@20"] > 0.05
    assert "no-such-data" in summary["errors"] and "no-such-data" in summary["errors"]["no-such-data"]
