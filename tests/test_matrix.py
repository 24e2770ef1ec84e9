"""Source -> target matrix: one pretraining per source, every target evaluated, heatmap drawn."""

import matplotlib.image
import numpy as np
import pytest
from matplotlib.colors import LogNorm

from conftest import planted_interactions, saved_figures
from test_pretrained import FEAT, PAIRS
from zsrec_ray.config import ZeroShotConfig
from zsrec_ray.data.splits import random_split
from zsrec_ray.experiments import zeroshot


def test_matrix_and_heatmap(tmp_path, monkeypatch):
    splits = {n: random_split(planted_interactions(150 + 30 * k, 80, 4, 12, seed=k, name=n), seed=0)
              for k, n in enumerate(["a", "b", "c"])}
    monkeypatch.setattr(zeroshot, "load_domains", lambda cfg, ds: {d: splits[d] for d in ds})
    trained = []
    real = zeroshot.pretrain_on
    monkeypatch.setattr(zeroshot, "pretrain_on",
                        lambda cfg, s, p=False, given=None: trained.append(s) or real(cfg, s, p, given))
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
    figures = saved_figures(monkeypatch)
    png = zeroshot.plot_matrix(m, tmp_path / "m.png")
    assert png == tmp_path / "m.png"
    # What the heatmap shows: colour = NDCG@20 / MostPop on a log scale, rows = sources, columns =
    # targets, ticks = dataset names, one text per cell with its NDCG@20 and ratio.
    assert len(figures) == 1
    ax = figures[0].axes[0]
    [im] = ax.get_images()
    ratio = np.array([[m["cells"][s][t]["x_mostpop"] for t in "abc"] for s in "abc"])
    np.testing.assert_allclose(np.ma.getdata(im.get_array()), ratio)
    assert isinstance(im.norm, LogNorm)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    texts = {tuple(np.round(t.get_position()).astype(int)): t.get_text() for t in ax.texts}
    assert len(ax.texts) == len(texts) == 9
    for i, s in enumerate("abc"):
        for j, t in enumerate("abc"):
            assert texts[(j, i)] == f"{m['cells'][s][t]['ndcg@20']:.3f}\n{ratio[i, j]:.1f}x"
    # The PNG: the figure's aspect, not blank, and each cell painted in its ratio's colour where the
    # cell is (sampled near two corners, clear of the cell's text).
    img = matplotlib.image.imread(png)
    w, h = figures[0].get_size_inches()
    assert img.shape[1] / img.shape[0] == pytest.approx(w / h, rel=0.02)
    rgb = img[..., :3]
    assert (rgb < 0.5).mean() > 0.005
    scale = img.shape[1] / (w * figures[0].dpi)  # display units (figure dpi) -> saved pixels
    for i in range(3):
        for j in range(3):
            colour = im.cmap(im.norm(ratio[i, j]))[:3]
            for dx, dy in ((-0.35, -0.35), (0.35, 0.35)):
                x, y = ax.transData.transform((j + dx, i + dy)) * scale
                pixel = rgb[int(round(img.shape[0] - y)), int(round(x))]
                np.testing.assert_allclose(pixel, colour, atol=0.02, err_msg=f"cell ({i}, {j})")


def test_leave_one_out_resumes_finished_targets(monkeypatch):
    calls = []
    monkeypatch.setattr(zeroshot, "load_domains", lambda cfg, ds: {d: None for d in ds})
    monkeypatch.setattr(zeroshot, "run_zeroshot", lambda cfg, s, t, p=False, splits=None:
                        calls.append(t) or {"target": t, "sources": s, "rows": []})
    saved = []
    done = [{"target": "a", "sources": ["b", "c"], "rows": ["kept"]}]
    res = zeroshot.run_leave_one_out(ZeroShotConfig(), ["a", "b", "c"], on_result=lambda r: saved.append(len(r)),
                                     done=done)
    assert calls == ["b", "c"] and res[0]["rows"] == ["kept"] and [r["target"] for r in res] == ["a", "b", "c"]
    assert saved == [2, 3]
