"""Files as domains everywhere: config forms, the formats people have, --load without training,
and every domain checked before any work."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import planted_interactions, write_csv
from zsrec_ray.cli import main
from zsrec_ray.config import DomainSpec, ZeroShotConfig, apply_overrides, load_yaml
from zsrec_ray.data.registry import domain_split, load_domains
from zsrec_ray.errors import DataError
from zsrec_ray.experiments import zeroshot


def test_a_domain_is_a_name_a_path_or_a_spec(tmp_path):
    cfg = ZeroShotConfig(target="data/shop.csv", sources=["ml-100k", {"path": "x/y.inter"}, "./lgn/"])
    assert isinstance(cfg.target, DomainSpec) and cfg.target_label == "shop"
    assert cfg.source_labels == ["ml-100k", "y", "lgn"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(
        {"target": {"dataset": "mine", "path": "f.csv", "columns": {"user": "u", "item": "i"}}}))
    loaded = load_yaml(tmp_path / "c.yaml", ZeroShotConfig)
    assert loaded.target.columns == {"user": "u", "item": "i"} and loaded.target_label == "mine"
    with pytest.raises(Exception, match="needs `dataset`"):
        DomainSpec()


def test_file_domains_follow_the_config_unless_they_set_their_own(tmp_path):
    cfg = apply_overrides(ZeroShotConfig(target="t.csv"), {"preprocess.k_core": 3, "split.seed": 7})
    spec = cfg.domain_spec(cfg.target)  # survives the dump/validate round trip of overrides
    assert spec.preprocess.k_core == 3 and spec.split.seed == 7
    own = ZeroShotConfig(target={"path": "t.csv", "preprocess": {"k_core": 1}}).domain_spec(
        ZeroShotConfig(target={"path": "t.csv", "preprocess": {"k_core": 1}}).target)
    assert own.preprocess.k_core == 1
    (tmp_path / "lgn").mkdir()
    lgn = cfg.domain_spec(DomainSpec(path=str(tmp_path / "lgn")))
    assert lgn.file_format == "lightgcn" and lgn.split.kind == "given" and lgn.split.seed == 7


def test_lightgcn_pair_loads_as_its_given_split(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "lgn"
    d.mkdir()
    train, test = [], []
    for u in range(50):
        items = rng.choice(40, 12, replace=False)
        train.append(" ".join(map(str, [u, *items[:9]])))
        test.append(" ".join(map(str, [u, *items[9:]])))
    (d / "train.txt").write_text("\n".join(train) + "\n")
    (d / "test.txt").write_text("\n".join(test) + "\n")
    split = domain_split(ZeroShotConfig(), str(d))
    assert split.kind == "given"
    assert len(split.test) == 50 * 3 and len(split.train) + len(split.valid) == 50 * 9
    test_pairs = {(int(split.test.user_ids[u]), int(split.test.item_ids[i]))
                  for u, i in zip(split.test.user, split.test.item)}
    assert test_pairs == {(u, int(i)) for u, line in enumerate(test) for i in line.split()[1:]}


def test_recbole_inter_file_loads(tmp_path):
    rng = np.random.default_rng(1)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(40):
        lines += [f"u{u}\ti{i}\t{rng.integers(1, 6)}\t{rng.integers(1e6)}" for i in rng.choice(30, 15, replace=False)]
    (tmp_path / "d.inter").write_text("\n".join(lines) + "\n")
    cfg = ZeroShotConfig(target=str(tmp_path / "d.inter"), preprocess={"min_rating": 3, "k_core": 2})
    split = load_domains(cfg, [cfg.target])["d"]
    ratings = np.array([float(x.split("\t")[2]) for x in lines[1:]])
    assert len(split.train) + len(split.valid) + len(split.test) <= int((ratings >= 3).sum())
    assert split.n_users > 30 and set(split.train.item_ids) <= {f"i{i}" for i in range(30)}


def test_zeroshot_load_evaluates_a_csv_target_and_trains_nothing(small_ck, tmp_path, capsys, monkeypatch):
    target = write_csv(tmp_path / "shop.csv", planted_interactions(200, 90, 5, 15, seed=7), ("uid", "iid"))

    def no_training(*a, **k):
        raise AssertionError("--load must not pretrain")

    monkeypatch.setattr(zeroshot, "pretrain_on", no_training)
    rc = main(["zeroshot", "--load", small_ck, "--target", str(target), "--columns", "user=uid,item=iid",
               "--compare", "mostpop,itemknn", "--cache-dir", str(tmp_path / "cache"), "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    (res,) = doc["results"]
    assert res["target"] == "shop" and res["sources"] == ["s1", "s2"] and res["mode"] == "zero-shot"
    assert [r["model"] for r in res["rows"]] == ["pretrained-pair", "mostpop", "itemknn"]
    assert all(r["users"] > 0 and 0 <= r["ndcg@20"] <= 1 for r in res["rows"])
    assert res["pretrain"] == {"loaded": small_ck, "sources": ["s1", "s2"]}


@pytest.mark.parametrize("case, message", [
    ("empty", "empty.csv: file is empty"),
    ("wrong", "wrong.csv: missing column(s) ['uid', 'iid']"),
    ("missing", "missing.csv: no such file or directory"),
    ("bytes", "bytes.csv: not UTF-8 text (line 3: byte 0xff)"),
    ("tiny", "tiny.csv: tiny: empty after filtering"),
])
def test_a_bad_target_is_refused_naming_the_file(case, message, small_ck, tmp_path, capsys):
    path = tmp_path / f"{case}.csv"
    content = {"empty": b"", "wrong": b"a,b\n1,2\n", "bytes": b"uid,iid\n1,2\n\xff\xfe,3\n",
               "tiny": b"uid,iid\n1,2\n1,3\n2,2\n"}
    if case in content:
        path.write_bytes(content[case])
    rc = main(["zeroshot", "--load", small_ck, "--target", str(path), "--columns", "user=uid,item=iid",
               "--compare", "mostpop", "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("zsrec: error: ") and message in err, err


def test_a_bad_domain_fails_before_any_featurization(tmp_path, monkeypatch):
    good = write_csv(tmp_path / "good.csv", planted_interactions(100, 60, 3, 12, seed=3), ("user", "item"))
    calls = []
    monkeypatch.setattr(zeroshot, "prepare_sources", lambda *a, **k: calls.append(a))
    cfg = ZeroShotConfig(sources=[str(good), str(tmp_path / "absent.csv")], target=str(good), compare=[],
                         cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataError, match="absent.csv: no such file"):
        zeroshot.run_zeroshot(cfg)
    with pytest.raises(DataError, match="2 domains cannot be loaded"):
        zeroshot.run_leave_one_out(cfg, [cfg.target, str(tmp_path / "nope.csv"), "no-such-dataset"])
    assert calls == []


def test_cli_exit_code_and_columns_without_a_file(small_ck, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "zsrec_ray.cli", "zeroshot", "--load", small_ck, "--target",
                           str(tmp_path / "none.csv"), "--compare", "mostpop"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == f"zsrec: error: {tmp_path / 'none.csv'}: no such file or directory"
    assert main(["zeroshot", "--load", small_ck, "--target", "ml-100k", "--columns", "user=u,item=i"]) == 2


def test_baselines_take_files_too(tmp_path, capsys):
    target = write_csv(tmp_path / "shop.csv", planted_interactions(120, 60, 4, 12, seed=8), ("uid", "iid"))
    rc = main(["baselines", "--datasets", str(target), "--columns", "user=uid,item=iid", "--models",
               "mostpop,itemknn", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(r["dataset"], r["model"]) for r in doc["results"]] == [("shop", "mostpop"), ("shop", "itemknn")]
    assert doc["stats"][0]["dataset"] == "shop" and doc["results"][1]["ndcg@20"] > doc["results"][0]["ndcg@20"]
