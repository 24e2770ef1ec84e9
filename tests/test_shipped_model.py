"""The shipped zsrec-base model: it loads by name, it is what Serve and batch inference use by
default, and it ranks a domain it has never seen."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from zsrec_ray.cli import build_parser
from zsrec_ray.config import ServeConfig
from zsrec_ray.data.registry import list_datasets
from zsrec_ray.models import MostPop
from zsrec_ray.models.checkpoint import SHIPPED, Checkpoint, checkpoint_path
from zsrec_ray.models.pretrained import PretrainedRecommender
from zsrec_ray.ranking import evaluate
from zsrec_ray.serving.app import check_settings
from zsrec_ray.serving.launch import read_serve_yaml

REPO = Path(__file__).resolve().parents[1]


def test_zsrec_base_loads_by_name_and_is_the_eight_dataset_pair_model():
    path = checkpoint_path("zsrec-base")
    assert path.is_file() and path.stat().st_size < 1_000_000, "a small file inside the package"
    ck = Checkpoint.load("zsrec-base")
    assert ck.pretrain.model == "pair"
    assert sorted(ck.metadata["sources"]) == sorted(list_datasets())
    assert ck.metadata["report"]["best_epoch"] >= 1
    assert list(SHIPPED) == ["zsrec-base"]


def test_zsrec_base_ranks_an_unseen_domain_above_popularity(planted_split):
    model = PretrainedRecommender(Checkpoint.load("zsrec-base")).fit(planted_split.train)
    res = evaluate(model, planted_split, "test")
    pop = evaluate(MostPop().fit(planted_split.train), planted_split, "test")
    assert res["ndcg@20"] > 2 * pop["ndcg@20"]


def test_serve_and_batch_inference_use_it_by_default(monkeypatch):
    _, _, cfg = read_serve_yaml(REPO / "serve_config.yaml")
    assert cfg.checkpoint == ServeConfig().checkpoint == "zsrec-base"
    for env in (cfg.token_env, cfg.read_token_env):
        monkeypatch.delenv(env, raising=False)
    check_settings(cfg)  # the shipped config is servable right after install: no pretraining step
    args = build_parser().parse_args(["recommend", "--domain", "lastfm", "--output", "x"])
    assert args.checkpoint == "zsrec-base"


def test_a_missing_shipped_file_is_a_clear_error(monkeypatch, tmp_path):
    import zsrec_ray.models.checkpoint as ck_mod
    from zsrec_ray.errors import DataError

    monkeypatch.setattr(ck_mod, "ZOO_DIR", tmp_path)
    with pytest.raises(DataError, match="shipped model 'zsrec-base' is missing from the package"):
        Checkpoint.load("zsrec-base")


def test_the_recipe_config_is_the_eight_datasets():
    doc = yaml.safe_load((REPO / "configs" / "zsrec_base.yaml").read_text())
    assert sorted(doc["sources"]) == sorted(list_datasets())
    assert doc["checkpoint"] == "zsrec_ray/models/zoo/zsrec-base.pt"
    assert np.isclose(Checkpoint.load("zsrec-base").pretrain.lr, 1e-3)
