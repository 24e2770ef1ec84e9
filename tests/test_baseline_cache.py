"""The fitted-baseline cache is keyed by the split's content, not by the dataset's name."""

from conftest import planted_interactions
from zsrec_ray.config import ZeroShotConfig
from zsrec_ray.data.splits import random_split
from zsrec_ray.experiments.zeroshot import baseline_row


def test_same_name_other_data_is_not_served_from_the_cache(tmp_path):
    cfg = ZeroShotConfig(cache_dir=str(tmp_path))
    a = random_split(planted_interactions(200, 80, 4, 12, seed=1, name="shop"), seed=0)
    b = random_split(planted_interactions(200, 80, 4, 12, seed=2, name="shop"), seed=0)
    row_a = baseline_row(cfg, a, "itemknn")
    row_b = baseline_row(cfg, b, "itemknn")
    assert row_a["ndcg@20"] != row_b["ndcg@20"]
    assert len(list((tmp_path / "baselines").glob("*.json"))) == 2
    assert baseline_row(cfg, a, "itemknn") == row_a  # the same data is served from the cache
    assert len(list((tmp_path / "baselines").glob("*.json"))) == 2
