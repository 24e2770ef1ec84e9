"""Fine-tuning a pretrained checkpoint on the target, and the few-shot subsample."""

import json

import numpy as np
import pytest

from conftest import planted_interactions, write_csv
from zsrec_ray.cli import main
from zsrec_ray.config import ZeroShotConfig
from zsrec_ray.data.splits import random_split, subsample_train
from zsrec_ray.errors import DataError
from zsrec_ray.experiments.finetune import run_finetune
from zsrec_ray.models.checkpoint import Checkpoint
from zsrec_ray.models.pretrained import PretrainedRecommender
from zsrec_ray.ranking import evaluate


def test_subsample_keeps_a_share_of_training_and_every_user():
    split = random_split(planted_interactions(200, 80, 4, 15, seed=2), seed=0)
    few = subsample_train(split, 0.3, seed=1)
    assert 0.25 < len(few.train) / len(split.train) < 0.4
    assert set(np.unique(few.train.user)) == set(np.unique(split.train.user))
    assert few.valid is split.valid and few.test is split.test and few.n_items == split.n_items
    pairs = set(zip(split.train.user.tolist(), split.train.item.tolist()))
    assert set(zip(few.train.user.tolist(), few.train.item.tolist())) <= pairs
    assert subsample_train(split, 1.0) is split
    with pytest.raises(DataError, match="train fraction"):
        subsample_train(split, 0.0)


def test_finetune_reports_every_row_and_never_ends_below_its_start(small_ck, tmp_path):
    target = write_csv(tmp_path / "t.csv", planted_interactions(180, 70, 5, 14, seed=9), ("user", "item"))
    cfg = ZeroShotConfig(target=str(target), compare=["mostpop", "itemknn"], cache_dir=str(tmp_path / "cache"),
                         finetune={"epochs": 3, "train_frac": 0.6, "bases": ["itemknn"], "valid_users": 10_000,
                                   "lr": 3e-3, "item_sim": ["cosine"]})
    out = run_finetune(cfg, small_ck, checkpoint_path=str(tmp_path / "tuned.pt"))
    assert [r["model"] for r in out["rows"]] == ["zero-shot", "fine-tuned", "mostpop", "itemknn", "fine-tuned+itemknn"]
    tuned_row = out["rows"][1]
    assert 0 <= tuned_row["best_epoch"] <= tuned_row["epochs"] <= 3
    assert [h["epoch"] for h in out["history"]][:2] == [0, 1]
    assert out["train_frac"] == 0.6 and out["interpolations"][0]["base"] == "itemknn"
    # early stopping starts from the pretrained weights: validation can only stay or improve
    from zsrec_ray.data.registry import load_domains
    split = subsample_train(load_domains(cfg, [cfg.target])["t"], 0.6, 0)
    before = evaluate(PretrainedRecommender(Checkpoint.load(small_ck)).fit(split.train), split, "valid")
    tuned = Checkpoint.load(tmp_path / "tuned.pt")
    after = evaluate(PretrainedRecommender(tuned).fit(split.train), split, "valid")
    assert after["ndcg@20"] >= before["ndcg@20"] - 1e-6
    assert tuned.metadata["finetuned_on"] == "t" and tuned.metadata["sources"] == ["s1", "s2"]


def test_finetune_cli(small_ck, tmp_path, capsys):
    target = write_csv(tmp_path / "shop.csv", planted_interactions(150, 60, 4, 14, seed=4), ("uid", "iid"))
    rc = main(["finetune", "--load", small_ck, "--target", str(target), "--columns", "user=uid,item=iid",
               "--epochs", "1", "--compare", "mostpop", "--bases", "mostpop", "--cache-dir", str(tmp_path / "c"),
               "--item-sim", "cosine,rp3beta", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["target"] == "shop" and [t["item_sim"] for t in doc["item_sim"]] == ["cosine", "rp3beta"]
    assert [r["model"] for r in doc["rows"]][-3] == "fine-tuned"
    assert doc["rows"][1]["epochs"] <= 1 and doc["config"]["finetune"]["epochs"] == 1


def test_finetune_on_two_ray_train_workers(small_ck, tmp_path, ray_session):
    from zsrec_ray.distributed.train import ray_finetune

    target = write_csv(tmp_path / "t.csv", planted_interactions(180, 70, 5, 14, seed=9), ("user", "item"))
    cfg = ZeroShotConfig(target=str(target), compare=["mostpop"], cache_dir=str(tmp_path / "cache"),
                         finetune={"epochs": 2, "patience": 2, "train_frac": 0.5, "bases": []},
                         ray={"num_workers": 2, "store": str(tmp_path / "store"),
                              "storage_path": str(tmp_path / "ray")})
    out = run_finetune(cfg, small_ck, checkpoint_path=str(tmp_path / "tuned.pt"),
                       train_fn=ray_finetune(cfg, small_ck, cfg.target))
    assert [r["model"] for r in out["rows"]][-2:] == ["fine-tuned", "mostpop"]
    assert [h["epoch"] for h in out["history"]] == [0, 1, 2]
    tuned = Checkpoint.load(tmp_path / "tuned.pt")
    # the workers trained with the item-item weights picked on the driver
    assert tuned.pairs.item_sim == out["rows"][-2]["item_sim"] == max(
        out["item_sim"], key=lambda t: t["valid_ndcg@20"])["item_sim"]
    assert tuned.metadata["finetuned_on"] == "t" and tuned.metadata["sources"] == ["s1", "s2"]
    assert out["train_interactions"] < 0.6 * len(planted_interactions(180, 70, 5, 14, seed=9))
