"""End to end on two small real datasets: pretrain on ml-100k, rank lastfm with nothing trained on it."""

import json

import pytest

from zsrec_ray.cli import main
from zsrec_ray.config import ZeroShotConfig
from zsrec_ray.experiments.ablation import VARIANTS, variant_config
from zsrec_ray.models.checkpoint import Checkpoint


@pytest.mark.slow
def test_zeroshot_cli_ml100k_to_lastfm(data_dir, tmp_path, capsys):
    out, ck = tmp_path / "zs.json", tmp_path / "model.pt"
    rc = main(["zeroshot", "--sources", "ml-100k", "--target", "lastfm", "--epochs", "8", "--compare", "mostpop",
               "--data-dir", str(data_dir), "--cache-dir", str(tmp_path / "cache"), "--output", str(out),
               "--checkpoint", str(ck)])
    assert rc == 0
    table = capsys.readouterr().out
    assert "pretrained-pair" in table and "mostpop" in table
    res = json.loads(out.read_text())["results"][0]
    assert res["mode"] == "zero-shot" and res["sources"] == ["ml-100k"]
    rows = {r["model"]: r for r in res["rows"]}
    assert rows["mostpop"]["users"] == rows["pretrained-pair"]["users"] == 1859
    assert rows["pretrained-pair"]["ndcg@20"] > 1.2 * rows["mostpop"]["ndcg@20"]
    assert rows["pretrained-pair"]["x_mostpop"] == pytest.approx(
        rows["pretrained-pair"]["ndcg@20"] / rows["mostpop"]["ndcg@20"])
    loaded = Checkpoint.load(ck)
    assert loaded.metadata["sources"] == ["ml-100k"]
    # the features came from the cache the run filled
    assert any((tmp_path / "cache" / "features").iterdir())


@pytest.mark.slow
def test_in_domain_inductive_pair_model_scores_held_out_users_from_their_history(data_dir, tmp_path):
    out = tmp_path / "ind.json"
    rc = main(["zeroshot", "--target", "ml-100k", "--in-domain", "--inductive", "--epochs", "10",
               "--compare", "mostpop", "--data-dir", str(data_dir), "--cache-dir", str(tmp_path / "cache"),
               "--output", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())["results"][0]
    assert res["mode"] == "in-domain" and res["sources"] == ["ml-100k"] and res["split"] == "heldout_users"
    rows = {r["model"]: r for r in res["rows"]}
    # only the held-out users (about 10 % of ml-100k's 943) are evaluated, by both models alike
    assert 50 < rows["pretrained-pair"]["users"] == rows["mostpop"]["users"] < 150
    assert rows["pretrained-pair"]["ndcg@20"] > 1.3 * rows["mostpop"]["ndcg@20"]  # measured: 1.65x at 10 epochs


def test_ablation_variants_switch_one_thing_each():
    base = ZeroShotConfig()
    for name in VARIANTS:
        cfg = variant_config(base, name)
        changed = {k for k in ("features", "pairs", "pretrain")
                   if getattr(cfg, k).model_dump() != getattr(base, k).model_dump()}
        assert (not changed) == (name == "full")
    assert variant_config(base, "no_pair_userknn").pairs.userknn is False
    assert variant_config(base, "features_on_all_edges").pretrain.graph_frac == 1.0
