"""Batch inference: every user's top k as Parquet blocks, checked before any work, resumable after a kill."""

import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import planted_interactions, wait_until
from zsrec_ray.config import DomainSpec, FeatureConfig, PairConfig, PretrainConfig, SpectralConfig
from zsrec_ray.data.splits import random_split
from zsrec_ray.errors import ConfigError, DataError
from zsrec_ray.experiments.batch import BatchJob, BlockWriter, load_domain, plan, read_output
from zsrec_ray.models.checkpoint import Checkpoint
from zsrec_ray.models.pretrained import PretrainedRecommender
from zsrec_ray.training.pretrain import prepare_source, pretrain

FEAT = FeatureConfig(spectral=SpectralConfig(dim=8), node_clusters=8, edge_clusters=8, cluster_bins=4, activity_bins=5)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A small checkpoint and a planted domain as a CSV file with its own column names."""
    tmp = tmp_path_factory.mktemp("batch")
    pairs = PairConfig(item_neighbors=20, user_neighbors=10)
    sources = [random_split(planted_interactions(150, 70, 5, 12, seed=s, name=f"s{s}"), seed=0) for s in (21, 22)]
    cfg = PretrainConfig(epochs=3, patience=3, batch_size=512)
    ck, _ = pretrain([prepare_source(s, FEAT, pairs, cfg.graph_frac) for s in sources], FEAT, pairs, cfg)
    ck_path = ck.save(tmp / "ck.pt")
    d = planted_interactions(240, 90, 6, 14, seed=23)
    csv = tmp / "shop.csv"
    pd.DataFrame({"uid": d.user_ids[d.user], "iid": d.item_ids[d.item]}).to_csv(csv, index=False)
    domain = DomainSpec(dataset="shop", path=str(csv), columns={"user": "uid", "item": "iid"})
    return tmp, str(ck_path), domain


def job(setup, out, **kw):
    tmp, ck, domain = setup
    return BatchJob(checkpoint=ck, domain=domain, output=str(tmp / out), **{"block_users": 50, **kw})


def run_all(j: BatchJob, overwrite=False) -> list[int]:
    _, todo = plan(j, overwrite)
    writer = BlockWriter(j) if todo else None
    for b in todo:
        writer.write(b)
    return todo


def test_output_is_every_users_top_k_with_original_ids_as_offline(setup):
    j = job(setup, "full", k=10)
    assert run_all(j) == [0, 1, 2, 3, 4]
    out = read_output(j.output)
    data = load_domain(j)
    assert list(out.columns) == ["user", "rank", "item", "score"]
    assert len(out) == data.n_users * 10 and not out.duplicated(["user", "rank"]).any()
    assert set(out["user"]) == set(data.user_ids.astype(str)) and out["rank"].between(1, 10).all()
    model = PretrainedRecommender(Checkpoint.load(j.checkpoint)).fit(data)
    idx, val = model.recommend(np.arange(data.n_users), 10, data.to_csr())
    want = pd.DataFrame({"user": np.repeat(data.user_ids.astype(str), 10), "item": data.item_ids[idx.ravel()].astype(str)})
    assert (out["item"].to_numpy() == want["item"].to_numpy()).all() and (out["user"] == want["user"]).all()
    np.testing.assert_allclose(out["score"], val.ravel(), rtol=1e-5)
    seen = set(zip(data.user_ids[data.user].astype(str), data.item_ids[data.item].astype(str)))
    assert not any((u, i) in seen for u, i in zip(out["user"], out["item"]))


def test_bad_requests_are_refused_before_any_work(setup, tmp_path):
    with pytest.raises(ConfigError, match="k must be between 1 and"):
        plan(job(setup, "bad-k", k=0))
    with pytest.raises(ConfigError, match="k must be between 1 and"):
        plan(job(setup, "bad-k", k=10_000))
    with pytest.raises(DataError, match="checkpoint not found"):
        plan(BatchJob(checkpoint=str(tmp_path / "none.pt"), domain=setup[2], output=str(tmp_path / "o")))
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a valid zsrec checkpoint"):
        plan(BatchJob(checkpoint=str(corrupt), domain=setup[2], output=str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()
    j = job(setup, "taken", k=5)
    run_all(j)
    with pytest.raises(ConfigError, match="complete output; give --overwrite"):
        plan(j)
    with pytest.raises(ConfigError, match="another job's output"):
        plan(job(setup, "taken", k=6))
    assert run_all(job(setup, "taken", k=6), overwrite=True) == [0, 1, 2, 3, 4]
    assert read_output(j.output)["rank"].max() == 6


def test_ray_data_job_matches_the_plain_writer(setup, ray_session):
    from zsrec_ray.distributed.batch import batch_recommend

    plain = job(setup, "plain", k=7)
    run_all(plain)
    res = batch_recommend(job(setup, "ray", k=7), actors=2)
    assert res["written"] == 5 and res["resumed_past"] == 0
    pd.testing.assert_frame_equal(read_output(res["output"]), read_output(plain.output))


def test_a_killed_run_resumes_without_redoing_blocks_or_duplicating_rows(setup, ray_session):
    from zsrec_ray.distributed.batch import batch_recommend

    tmp, ck, domain = setup
    out = tmp / "killed"
    cmd = [sys.executable, "-m", "zsrec_ray.cli", "recommend", "--checkpoint", ck, "--domain", domain.path,
           "--columns", "user=uid,item=iid", "--k", "5", "--output", str(out), "--block-users", "5"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: len(list(out.glob("part-*.parquet"))) >= 3 or proc.poll() is not None, timeout=600,
                   what="the first blocks of the batch job")
        assert proc.poll() is None, "the job finished before it could be killed:\n" + proc.stdout.read().decode()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert 3 <= len(before) < 48 and not list(out.glob(".*.tmp"))  # whole blocks only
    res = batch_recommend(job(setup, "killed", k=5, block_users=5), actors=1)
    assert res["resumed_past"] == len(before) and res["written"] == 48 - len(before)
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert all(after[name] == t for name, t in before.items())  # finished blocks were not redone
    table = read_output(out)
    assert len(table) == 240 * 5 and not table.duplicated(["user", "rank"]).any()


def test_a_served_domain_is_ranked_from_its_stored_features_as_served(setup, monkeypatch):
    import zsrec_ray.experiments.batch as batch_module
    from zsrec_ray.serving.domains import DomainIndex, DomainStore, featurize_version, serving_version_dir

    tmp, ck_path, domain = setup
    ck = Checkpoint.load(ck_path)
    store = DomainStore(tmp / "serve")
    df = pd.read_csv(domain.path).rename(columns={"uid": "user", "iid": "item"}).astype(str)
    meta = store.create("shop", df)
    with pytest.raises(ConfigError, match="no ready version"):
        serving_version_dir(tmp / "serve", "shop")
    featurize_version(store, "shop", 1, meta["generation"], ck)
    with pytest.raises(ConfigError, match="no domain 'nope' is registered"):
        serving_version_dir(tmp / "serve", "nope")
    with pytest.raises(ConfigError, match="not a Serve storage directory"):
        serving_version_dir(tmp / "nowhere", "shop")
    served = BatchJob(checkpoint=ck_path, domain=DomainSpec(dataset="shop"), output=str(tmp / "served"), k=6,
                      block_users=50, served=str(serving_version_dir(tmp / "serve", "shop")))

    def no_featurizing(*args, **kwargs):
        raise AssertionError("a served domain was featurized again")

    monkeypatch.setattr(batch_module, "featurize", no_featurizing)
    monkeypatch.setattr(batch_module, "cached_neighbour_lists", no_featurizing)
    assert run_all(served) == [0, 1, 2, 3, 4]
    out = read_output(served.output)
    index = DomainIndex.load(store, "shop", 1, meta["generation"], ck)
    users = sorted(set(df["user"]))
    want = {r["user"]: [i["item"] for i in r["items"]] for r in index.recommend(users, 6, exclude_seen=True)}
    got = out.groupby("user", sort=False)["item"].apply(list).to_dict()
    assert got == want  # the batch ranks exactly as the served domain answers /recommend

    # a newer served version replaces (and prunes) the one a planned job started from: a clear error
    again = BatchJob(**{**served.__dict__, "output": str(tmp / "served2")})
    plan(again)
    store.append("shop", pd.DataFrame({"user": ["new-user"] * 5, "item": df["item"].iloc[:5].tolist()}))
    featurize_version(store, "shop", 2, meta["generation"], ck)
    with pytest.raises(DataError, match="is gone .a newer version replaced it"):
        BlockWriter(again)


def test_neighbour_lists_are_computed_once_per_domain_and_settings(setup, tmp_path, monkeypatch):
    import zsrec_ray.features.pairs as pairs_module

    _, ck_path, domain = setup
    ck = Checkpoint.load(ck_path)
    data = load_domain(job(setup, "unused"))
    calls = []
    real = pairs_module.neighbour_lists
    monkeypatch.setattr(pairs_module, "neighbour_lists", lambda g, c: calls.append(1) or real(g, c))
    first = pairs_module.cached_neighbour_lists(data, ck.pairs, tmp_path)
    second = pairs_module.cached_neighbour_lists(data, ck.pairs, tmp_path)
    assert len(calls) == 1
    for name in first:
        assert (first[name] != second[name]).nnz == 0
    other = ck.pairs.model_copy(update={"user_neighbors": ck.pairs.user_neighbors + 1})
    pairs_module.cached_neighbour_lists(data, other, tmp_path)
    assert len(calls) == 2  # other settings: other lists
    for entry in tmp_path.glob("*/item_sim.npz"):
        entry.write_bytes(b"truncated")
    pairs_module.cached_neighbour_lists(data, ck.pairs, tmp_path)
    assert len(calls) == 3  # a corrupt entry is computed again, not used


def test_recommend_cli_refuses_a_store_without_the_domain_before_any_work(setup, tmp_path, capsys):
    from zsrec_ray.cli import main

    _, ck, _ = setup
    (tmp_path / "serve" / "domains").mkdir(parents=True)
    assert main(["recommend", "--checkpoint", ck, "--store", str(tmp_path / "serve"), "--domain", "shop",
                 "--output", str(tmp_path / "o")]) == 2
    assert "no domain 'shop' is registered" in capsys.readouterr().err
    assert main(["recommend", "--checkpoint", ck, "--store", str(tmp_path), "--domain", "shop",
                 "--columns", "user=a,item=b", "--output", str(tmp_path / "o")]) == 2
    assert "--columns applies to a file domain" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
