"""The `data` sub-commands, called through an argparse parser built as the main CLI does."""

import argparse
import json

import pytest

from conftest import saved_figures
from zsrec_ray.config import default_data_dir
from zsrec_ray.data.cli import add_data_commands
from zsrec_ray.errors import DataError

DATA = default_data_dir()
pytestmark = pytest.mark.skipif(not (DATA / "lastfm").is_dir(), reason=f"real datasets not found at {DATA}")


def parse(*argv):
    parser = argparse.ArgumentParser(prog="zsrec")
    add_data_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "cache"))


def test_stats_json(capsys):
    args = parse("data", "stats", "--datasets", "ml-100k,lastfm", "--json")
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["ml-100k", "lastfm"]
    assert (out["ml-100k"]["users"], out["ml-100k"]["items"], out["ml-100k"]["interactions"]) == (943, 1349, 99_287)
    assert (out["lastfm"]["users"], out["lastfm"]["interactions"]) == (1859, 71_355)
    assert 0 < out["lastfm"]["item_degree_gini"] < 1


def test_stats_table_reports_failures_and_prints_the_rest(capsys, tmp_path):
    args = parse("data", "stats", "--datasets", "ml-100k,yelp,nope", "--k-core", "1", "--data-dir", str(tmp_path))
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "ml-100k.inter.gz").write_bytes((DATA / "ml-100k" / "ml-100k.inter.gz").read_bytes())
    assert args.func(args) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0] == ["dataset", "users", "items", "interactions", "density", "gini_user", "gini_item"]
    assert set(lines[1]) == {"|", "-"}  # Markdown header separator
    assert cells[2][:4] == ["ml-100k", "943", "1,682", "100,000"]
    assert len(lines) == 3
    assert "yelp: FAILED: dataset 'yelp' not found" in captured.err
    assert "nope: FAILED: unknown dataset 'nope'" in captured.err


def test_stats_json_includes_errors(capsys, tmp_path):
    args = parse("data", "stats", "--datasets", "lastfm", "--data-dir", str(tmp_path), "--json")
    assert args.func(args) == 1
    assert "not found" in json.loads(capsys.readouterr().out)["lastfm"]["error"]


def test_plot(capsys, tmp_path, monkeypatch):
    import matplotlib.colors
    import matplotlib.image
    import numpy as np

    from zsrec_ray.config import DomainSpec, PreprocessConfig
    from zsrec_ray.data.registry import load_interactions

    figures = saved_figures(monkeypatch)
    out = tmp_path / "deg.png"
    args = parse("data", "plot", "--datasets", "ml-100k,lastfm", "--out", str(out))
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    # The PNG: a wide figure (two panels side by side, 11 x 4.5 in), not blank.
    png = matplotlib.image.imread(out)
    assert png.shape[1] / png.shape[0] == pytest.approx(11 / 4.5, rel=0.02)
    rgb = png[..., :3]
    assert (rgb < 0.5).mean() > 0.005  # ink: axes, text, lines
    # What it shows: users left, items right, log-log, one line per dataset labelled by its name,
    # each line the complementary CDF of that dataset's degrees (after the default 5-core).
    assert len(figures) == 1
    axes = figures[0].axes
    assert len(axes) == 2
    for ax, kind in zip(axes, ("user", "item")):
        assert ax.get_xscale() == ax.get_yscale() == "log"
        assert kind in ax.get_xlabel() and kind.capitalize() in ax.get_title()
        lines = ax.get_lines()
        assert [ln.get_label() for ln in lines] == ["ml-100k", "lastfm"]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ml-100k", "lastfm"]
        for ln in lines:
            data = load_interactions(DomainSpec(dataset=ln.get_label(), preprocess=PreprocessConfig(k_core=5)), DATA)
            deg = data.user_degree() if kind == "user" else data.item_degree()
            deg = deg[deg > 0]
            x, y = ln.get_xdata(), ln.get_ydata()
            np.testing.assert_array_equal(x, np.unique(deg))
            np.testing.assert_allclose(y, [(deg >= d).mean() for d in x])
            assert y[0] == 1 and (np.diff(y) < 0).all()
            # ... and drawn: its colour covers pixels of the PNG.
            colour = np.array(matplotlib.colors.to_rgb(ln.get_color()))
            assert (np.abs(rgb - colour).max(-1) < 0.1).sum() > 200, ln.get_label()


def test_plot_with_nothing_loadable(tmp_path):
    args = parse("data", "plot", "--datasets", "nope", "--out", str(tmp_path / "x.png"))
    with pytest.raises(DataError, match="nothing to plot"):
        args.func(args)


def test_fetch_passes_its_options(capsys, tmp_path, monkeypatch):
    calls = []

    def fake_fetch(name, cache_dir=None, base_url=None):
        calls.append((name, cache_dir, base_url))
        return tmp_path / "c" / name

    monkeypatch.setattr("zsrec_ray.data.cli.fetch_dataset", fake_fetch)
    args = parse("data", "fetch", "lastfm", "--cache-dir", str(tmp_path / "c"), "--base-url", "http://127.0.0.1:9/")
    assert args.func(args) == 0
    assert calls == [("lastfm", str(tmp_path / "c"), "http://127.0.0.1:9/")]
    assert capsys.readouterr().out.strip() == str(tmp_path / "c" / "lastfm")


@pytest.mark.parametrize("argv,expected", [
    (["data", "--help"], "stats"),
    (["data", "stats", "--help"], "--k-core"),
    (["data", "plot", "--help"], "--out PATH.png"),
    (["data", "fetch", "--help"], "--base-url"),
])
def test_help(capsys, argv, expected):
    with pytest.raises(SystemExit) as e:
        parse(*argv)
    assert e.value.code == 0 and expected in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["data"], ["data", "stats", "--k-core", "0"], ["data", "fetch", "nope"],
                                  ["data", "plot"]])
def test_bad_arguments_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as e:
        parse(*argv)
    assert e.value.code == 2
