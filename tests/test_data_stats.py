"""Dataset statistics (hand-computed Gini values) and the degree plot."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from zsrec_ray.data import Interactions, dataset_stats
from zsrec_ray.data.stats import gini, plot_degree_distributions


@pytest.mark.parametrize("values,expected", [
    ([3, 3, 3, 3], 0.0),
    ([0, 0, 0, 1], 0.75),          # (n - 1) / n: all mass on one of n
    ([1, 2, 3, 4], 0.25),          # sum|xi - xj| / (2 n^2 mean) = 20 / 80
    ([4, 1, 3, 2], 0.25),          # order does not matter
    ([5], 0.0),
    ([], 0.0),
    ([0, 0], 0.0),
])
def test_gini(values, expected):
    assert gini(np.array(values)) == pytest.approx(expected)


def test_dataset_stats():
    # users a: 3 items, b: 1 item; items x: 2, y: 1, z: 1
    t = Interactions.from_frame(pd.DataFrame({"user": ["a", "a", "a", "b"], "item": ["x", "y", "z", "x"]}))
    s = dataset_stats(t)
    assert s == {
        "users": 2, "items": 3, "interactions": 4, "density": pytest.approx(4 / 6),
        "user_degree_gini": pytest.approx(0.25),          # degrees 1, 3: 2 * (1 + 6) / (2 * 4) - 3 / 2
        "item_degree_gini": pytest.approx(1 / 6),         # degrees 1, 1, 2: 2 * (1 + 2 + 6) / (3 * 4) - 4 / 3
    }


def test_plot_degree_distributions_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    datasets = {}
    for name, alpha in (("steep", 2.5), ("flat", 1.5)):
        users = rng.zipf(alpha, 3000) % 300
        items = rng.zipf(alpha, 3000) % 500
        datasets[name] = Interactions.from_frame(pd.DataFrame({"user": users, "item": items}), name)
    out = plot_degree_distributions(datasets, tmp_path / "plots" / "degrees.png")
    assert out == tmp_path / "plots" / "degrees.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    img = imread(out)
    assert img.shape[1] > img.shape[0] > 300 and img.std() > 0.05
