"""The `data` sub-commands, called through an argparse parser built as the main CLI does."""

import argparse
import json

import pytest

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
    assert lines[0].split() == ["dataset", "users", "items", "interactions", "density", "gini_user", "gini_item"]
    assert lines[1].split()[:4] == ["ml-100k", "943", "1,682", "100,000"]
    assert len(lines) == 2
    assert "yelp: FAILED: dataset 'yelp' not found" in captured.err
    assert "nope: FAILED: unknown dataset 'nope'" in captured.err


def test_stats_json_includes_errors(capsys, tmp_path):
    args = parse("data", "stats", "--datasets", "lastfm", "--data-dir", str(tmp_path), "--json")
    assert args.func(args) == 1
    assert "not found" in json.loads(capsys.readouterr().out)["lastfm"]["error"]


def test_plot(capsys, tmp_path):
    out = tmp_path / "deg.png"
    args = parse("data", "plot", "--datasets", "ml-100k,lastfm", "--out", str(out))
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.stat().st_size > 20_000


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
