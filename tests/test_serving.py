"""The Serve app over real HTTP: register a real domain, recommend = offline scoring, versions,
restart without re-featurizing, cold start, a table of bad inputs that change nothing, and the
hardening: read tokens, imports confined to import_dir, body limits (also under a route prefix),
registrations that cannot leak into each other, version pruning, killed replicas and featurizers."""

import json
import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import torch

from conftest import ray_worker_pids, wait_until
from zsrec_ray.config import DomainSpec, FeatureConfig, PairConfig, PretrainConfig, SpectralConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.data.registry import load_split
from zsrec_ray.models.pretrained import PretrainedRecommender
from zsrec_ray.serving.app import build_app, featurizer_name
from zsrec_ray.serving.schemas import MAX_ID_LENGTH
from zsrec_ray.training.pretrain import prepare_source, pretrain

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READ_TOKEN = "read-token-456"
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
WRONG = {"Authorization": "Bearer wrong"}
MAX_BYTES = 4_000_000  # max_request_bytes: register and append bodies
QUERY_BYTES = 1_000_000  # max_query_bytes (the default): every other body


def domain_rows(n: int, users: int, items: int, prefix: str = "") -> list[dict]:
    """``n`` distinct interactions of a small synthetic domain (user r % users, items 7u + 3j mod items)."""
    rows = [{"user": f"{prefix}u{r % users}", "item": f"{prefix}i{(7 * (r % users) + 3 * (r // users)) % items}"}
            for r in range(n)]
    assert len({(r["user"], r["item"]) for r in rows}) == n
    return rows


def counts(rows: list[dict]) -> dict:
    return {"users": len({r["user"] for r in rows}), "items": len({r["item"] for r in rows}),
            "interactions": len({(r["user"], r["item"]) for r in rows})}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, data_dir):
    feat = FeatureConfig(spectral=SpectralConfig(dim=16), node_clusters=10, edge_clusters=10)
    pairs = PairConfig()
    cfg = PretrainConfig(epochs=2, users_per_epoch=300, valid_users=200)
    src = prepare_source(load_split(DomainSpec(dataset="ml-100k"), data_dir), feat, pairs, cfg.graph_frac)
    ck, _ = pretrain([src], feat, pairs, cfg)
    return ck.save(tmp_path_factory.mktemp("ck") / "model.pt")


@pytest.fixture(scope="module")
def lastfm_rows(data_dir):
    tr = load_split(DomainSpec(dataset="lastfm"), data_dir).train
    return [{"user": str(tr.user_ids[u]), "item": str(tr.item_ids[i])} for u, i in zip(tr.user, tr.item)]


@pytest.fixture(scope="module")
def imports(tmp_path_factory):
    """The app's import_dir: valid CSVs (one in a subdir), a symlink leading out to a valid CSV, a
    symlink loop; next to it (outside) more valid CSVs that must never be read."""
    root = tmp_path_factory.mktemp("imports")
    d = root / "import"
    (d / "sub").mkdir(parents=True)
    (root / "outside").mkdir()
    pd.DataFrame(domain_rows(60, 20, 30)).to_csv(d / "small.csv", index=False)
    pd.DataFrame(domain_rows(80, 20, 30)).to_csv(d / "sub" / "deep.csv", index=False)
    pd.DataFrame(domain_rows(60, 20, 30)).to_csv(root / "x.csv", index=False)
    pd.DataFrame(domain_rows(60, 20, 30)).to_csv(root / "outside" / "secret.csv", index=False)
    (d / "escape.csv").symlink_to(root / "outside" / "secret.csv")
    (d / "loop.csv").symlink_to("loop.csv")
    return d


def start(checkpoint, storage, imports, replicas: int = 1):
    from ray import serve

    from zsrec_ray.serving.app import ZsrecAPI

    token_file = storage / "token"  # the secret-file route (replicas do not see this process's env)
    token_file.write_text(TOKEN + "\n")
    read_token_file = storage / "read_token"
    read_token_file.write_text(READ_TOKEN + "\n")
    settings = {"checkpoint": str(checkpoint), "storage_dir": str(storage), "token_env": "ZSREC_TEST_UNSET",
                "token_file": str(token_file), "read_token_env": "ZSREC_TEST_UNSET_READ",
                "read_token_file": str(read_token_file), "import_dir": str(imports),
                "max_request_bytes": MAX_BYTES, "max_k": 100, "featurizer_cpus": 0.5}
    build_app(settings)  # validates settings and the checkpoint, as `serve run` does
    app = ZsrecAPI.options(num_replicas=replicas, ray_actor_options={"num_cpus": 0.5}).bind(settings)
    serve.run(app, name="zsrec", route_prefix="/")


@pytest.fixture(scope="module")
def app(ray_session, checkpoint, imports, tmp_path_factory):
    from ray import serve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    storage = tmp_path_factory.mktemp("serve")
    start(checkpoint, storage, imports)
    yield f"http://127.0.0.1:{port}", storage
    try:
        serve.shutdown()
    except ray_session.exceptions.ActorDiedError:  # a proxy killed while a health check was queued
        pass
    for a in ray_session.util.list_named_actors(all_namespaces=True):  # the detached featurizer
        if a["name"].startswith("zsrec-featurizer"):
            ray_session.kill(ray_session.get_actor(a["name"], namespace=a["namespace"]))


def wait_ready(base, name, version=None, timeout=600, headers=AUTH):
    """The domain's status once it is ready (at ``version`` when given); fails at once if it failed."""
    def ready():
        st = requests.get(f"{base}/v1/domains/{name}", headers=headers, timeout=60).json()
        if st["status"] == "failed":
            pytest.fail(f"featurization failed: {st['error']}")
        return st if st["status"] == "ready" and (version is None or st["current_version"] == version) else None

    return wait_until(ready, timeout=timeout, interval=0.5,
                      what=f"domain {name!r} to be ready" + (f" at version {version}" if version else ""))


@pytest.fixture(scope="module")
def lastfm(app, lastfm_rows):
    base, _ = app
    r = requests.post(f"{base}/v1/domains", json={"name": "lastfm", "interactions": lastfm_rows}, headers=AUTH)
    assert r.status_code == 202, r.text
    assert r.json()["status_url"] == "/v1/domains/lastfm"
    return wait_ready(base, "lastfm")


@pytest.fixture(scope="module")
def offline(checkpoint, lastfm_rows):
    """The checkpoint fitted offline on the rows the app was given: (interactions, recommender)."""
    from zsrec_ray.models.checkpoint import Checkpoint

    from zsrec_ray.config import ServeConfig

    data = Interactions.from_frame(pd.DataFrame(lastfm_rows).drop_duplicates(), "lastfm")
    return data, PretrainedRecommender(Checkpoint.load(checkpoint), candidates=ServeConfig().candidates).fit(data)


def offline_top(offline, users, k):
    """The offline top ``k`` (item ids, scores), ranked as the app ranks (its default candidates)."""
    data, model = offline
    uidx = np.array([int(np.flatnonzero(data.user_ids.astype(str) == u)[0]) for u in users])
    idx, val = model.recommend(uidx, k, data.to_csr()[uidx])
    return [[str(data.item_ids[j]) for j in row] for row in idx.tolist()], torch.from_numpy(val)


def test_recommendations_equal_offline_scoring(app, lastfm, lastfm_rows, offline):
    base, _ = app
    assert lastfm["counts"]["users"] == 1859 and lastfm["current_version"] == 1
    users = sorted({r["user"] for r in lastfm_rows})[:5]
    want_items, want_scores = offline_top(offline, users, 10)
    for u, items, scores in zip(users, want_items, want_scores):
        r = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": u, "k": 10}, headers=READ)
        assert r.status_code == 200, r.text
        got = r.json()
        assert not got["cold_start"] and got["domain_version"] == 1
        assert [x["item"] for x in got["items"]] == items
        np.testing.assert_allclose([x["score"] for x in got["items"]], scores.numpy(), rtol=1e-5, atol=1e-5)
    mixed = users[:2] + ["never-seen"] + users[2:]  # a cold user among known ones masks nothing of theirs
    batch = requests.post(f"{base}/v1/domains/lastfm/recommend/batch", json={"users": mixed, "k": 10},
                          headers=READ).json()
    assert [b["cold_start"] for b in batch] == [u == "never-seen" for u in mixed]
    assert [[x["item"] for x in b["items"]] for b in batch if not b["cold_start"]] == want_items
    cold = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": "never-seen", "k": 10},
                         headers=READ).json()
    assert batch[2]["items"] == cold["items"] and len(cold["items"]) == 10


def test_score_and_cold_start(app, lastfm, lastfm_rows, offline):
    base, _ = app
    data, model = offline
    column = {str(x): j for j, x in enumerate(data.item_ids)}
    u = lastfm_rows[0]["user"]
    rec = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": u, "k": 100, "exclude_seen": False},
                        headers=READ).json()
    assert len(rec["items"]) == 100
    # Items the user has seen (never in an exclude_seen ranking) and items of this ranking.
    seen = [r["item"] for r in lastfm_rows if r["user"] == u][:3]
    ranked = [rec["items"][0]["item"], rec["items"][57]["item"], rec["items"][99]["item"]]
    items = seen + ranked
    assert len(seen) == 3 and len(set(items)) == 6
    r = requests.post(f"{base}/v1/domains/lastfm/score", json={"user": u, "items": items}, headers=READ)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["cold_start"] is False and got["domain_version"] == 1
    assert [s["item"] for s in got["scores"]] == items  # one score per item asked, in order
    row = int(np.flatnonzero(data.user_ids.astype(str) == u)[0])
    want = model.score(np.array([row]))[0][[column[i] for i in items]]
    np.testing.assert_allclose([s["score"] for s in got["scores"]], want, rtol=1e-5, atol=1e-5)
    by_item = {x["item"]: x["score"] for x in rec["items"]}
    assert [s["score"] for s in got["scores"][3:]] == pytest.approx([by_item[i] for i in ranked], abs=1e-5)

    # Cold start: an unknown user gets the offline cold-start ranking and scores, the same for all.
    cold = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": "never-seen", "k": 5},
                         headers=READ).json()
    assert cold["cold_start"] is True and len(cold["items"]) == 5
    want_idx, want_val = model.cold_recommend(5)
    assert [x["item"] for x in cold["items"]] == [str(data.item_ids[j]) for j in want_idx]
    np.testing.assert_allclose([x["score"] for x in cold["items"]], want_val, rtol=1e-5, atol=1e-5)
    cold2 = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": "also-new", "k": 5},
                          headers=READ).json()
    assert [x["item"] for x in cold2["items"]] == [x["item"] for x in cold["items"]]  # one answer for all
    got = requests.post(f"{base}/v1/domains/lastfm/score", json={"user": "never-seen", "items": items},
                        headers=READ).json()
    assert got["cold_start"] is True and [s["item"] for s in got["scores"]] == items
    np.testing.assert_allclose([s["score"] for s in got["scores"]], model.cold_scores()[[column[i] for i in items]],
                               rtol=1e-5, atol=1e-5)


def test_append_switches_versions_and_restart_keeps_domains(app, lastfm, lastfm_rows, checkpoint, imports):
    from ray import serve

    base, storage = app
    new = [{"user": "newbie", "item": lastfm_rows[i]["item"]} for i in range(0, 200, 10)]
    r = requests.post(f"{base}/v1/domains/lastfm/interactions", json={"interactions": new}, headers=AUTH)
    assert r.status_code == 202 and r.json()["pending_version"] == 2
    st = wait_ready(base, "lastfm", version=2)
    assert st["counts"]["users"] == 1860
    rec = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": "newbie", "k": 5}, headers=READ).json()
    assert rec["domain_version"] == 2 and rec["cold_start"] is False
    assert not {x["item"] for x in rec["items"]} & {x["item"] for x in new}  # seen items excluded
    meta_before = json.loads((storage / "domains" / "lastfm" / "meta.json").read_text())
    serve.delete("zsrec")
    # A registration acknowledged (on disk) whose featurization never ran, as after a crash.
    from zsrec_ray.serving.domains import DomainStore

    DomainStore(storage).create("interrupted", pd.DataFrame(lastfm_rows[:3000]))
    start(checkpoint, storage, imports)
    assert wait_ready(base, "interrupted")["current_version"] == 1  # resumed by the restarted app
    st = requests.get(f"{base}/v1/domains/lastfm", headers=READ).json()
    assert st["status"] == "ready" and st["current_version"] == 2
    assert requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": "newbie"},
                         headers=READ).status_code == 200
    # Served from storage: nothing was featurized again.
    assert json.loads((storage / "domains" / "lastfm" / "meta.json").read_text()) == meta_before


BIG = "x" * (MAX_BYTES + 10)
QUERY_BIG = json.dumps({"user": "q" * QUERY_BYTES})  # a query body just over max_query_bytes
TINY = [{"user": "a", "item": "b"}, {"user": "c", "item": "d"}]
ROWS60 = domain_rows(60, 20, 30, prefix="t")  # a valid domain: only the refusal keeps it out
LONG_ID = "z" * (MAX_ID_LENGTH + 1)
JSON = {**AUTH, "Content-Type": "application/json"}
GARBAGE_PARQUET = b"PAR1" + np.random.default_rng(0).bytes(4096) + b"PAR1"


@pytest.mark.parametrize("method,path,kwargs,status", [
    ("post", "/v1/domains", {"data": "{not json", "headers": JSON}, 422),
    ("post", "/v1/domains", {"json": {"name": "shop", "interactions": TINY}}, 401),
    ("post", "/v1/domains", {"json": {"name": "shop", "interactions": TINY}, "headers": WRONG}, 403),
    ("post", "/v1/domains", {"json": {"name": "shop", "interactions": TINY}, "headers": AUTH}, 422),  # tiny
    ("post", "/v1/domains", {"json": {"name": "../etc", "interactions": TINY * 20}, "headers": AUTH}, 422),
    ("post", "/v1/domains", {"json": {"name": "a" * 65, "interactions": TINY * 20}, "headers": AUTH}, 422),
    ("post", "/v1/domains", {"json": {"name": "lastfm", "path": "/nonexistent.csv"}, "headers": AUTH}, 422),
    ("post", "/v1/domains", {"data": BIG, "headers": JSON}, 413),
    ("post", "/v1/domains", {"data": "a,b", "headers": {**AUTH, "Content-Type": "text/plain"}}, 415),
    ("post", "/v1/domains", {"json": {"name": "lastfm", "interactions": [{"user": f"u{i}", "item": f"i{i % 7}"}
                                                                          for i in range(40)]},
                             "headers": AUTH}, 409),
    ("post", "/v1/domains", {"json": {"name": "shop", "interactions": [{"user": {"x": 1}, "item": "b"}]},
                             "headers": AUTH}, 422),
    ("post", "/v1/domains/nope/recommend", {"json": {"user": "1"}, "headers": READ}, 404),
    ("post", "/v1/domains/..%2F..%2Fetc/recommend", {"json": {"user": "1"}, "headers": READ}, 404),
    ("post", "/v1/domains/lastfm/recommend", {"json": {"user": "2", "k": "ten"}, "headers": READ}, 422),
    ("post", "/v1/domains/lastfm/recommend", {"json": {"user": "2", "k": 1.5}, "headers": READ}, 422),
    ("post", "/v1/domains/lastfm/recommend", {"json": {"user": "2", "k": 0}, "headers": READ}, 422),
    ("post", "/v1/domains/lastfm/recommend", {"json": {"user": "2", "k": 10**6}, "headers": READ}, 422),
    ("post", "/v1/domains/lastfm/recommend", {"json": {"k": 5}, "headers": READ}, 422),
    ("post", "/v1/domains/lastfm/score", {"json": {"user": "2", "items": ["no-such-item"]}, "headers": READ}, 422),
    ("post", "/v1/domains/lastfm/interactions", {"json": {"interactions": TINY}}, 401),
    ("delete", "/v1/domains/lastfm", {}, 401),
    ("delete", "/v1/domains/nope", {"headers": AUTH}, 404),
    ("get", "/v1/domains/nope", {"headers": READ}, 404),
    # Reads need the read (or write) token; the check comes first, so it tells nothing about domains.
    ("get", "/v1/domains", {}, 401),
    ("get", "/v1/domains/lastfm", {}, 401),
    ("get", "/v1/domains/nope", {}, 401),
    ("get", "/v1/model", {}, 401),
    ("post", "/v1/domains/lastfm/recommend", {"json": {"user": "2"}}, 401),
    ("post", "/v1/domains/lastfm/recommend/batch", {"json": {"users": ["2"]}}, 401),
    ("post", "/v1/domains/lastfm/score", {"json": {"user": "2", "items": ["x"]}}, 401),
    ("get", "/v1/domains", {"headers": WRONG}, 403),
    ("get", "/v1/model", {"headers": WRONG}, 403),
    ("post", "/v1/domains/lastfm/recommend", {"json": {"user": "2"}, "headers": WRONG}, 403),
    # The read token cannot write.
    ("post", "/v1/domains", {"json": {"name": "shop", "interactions": ROWS60}, "headers": READ}, 403),
    ("post", "/v1/domains/lastfm/interactions", {"json": {"interactions": ROWS60}, "headers": READ}, 403),
    ("delete", "/v1/domains/lastfm", {"headers": READ}, 403),
    # Ids over MAX_ID_LENGTH characters (strings, or integers used as their digits); strict booleans.
    ("post", "/v1/domains/lastfm/recommend", {"json": {"user": LONG_ID}, "headers": READ}, 422),
    ("post", "/v1/domains/lastfm/recommend", {"json": {"user": int("9" * (MAX_ID_LENGTH + 1))},
                                              "headers": READ}, 422),
    ("post", "/v1/domains/lastfm/recommend/batch", {"json": {"users": ["2", LONG_ID]}, "headers": READ}, 422),
    ("post", "/v1/domains/lastfm/score", {"json": {"user": "2", "items": [LONG_ID]}, "headers": READ}, 422),
    ("post", "/v1/domains", {"json": {"name": "shop", "interactions": ROWS60 + [{"user": LONG_ID, "item": "ti0"}]},
                             "headers": AUTH}, 422),
    ("post", "/v1/domains/lastfm/interactions", {"json": {"interactions": [{"user": "2", "item": LONG_ID}]},
                                                 "headers": AUTH}, 422),
    ("post", "/v1/domains/lastfm/recommend", {"json": {"user": "2", "exclude_seen": "yes"}, "headers": READ}, 422),
    ("post", "/v1/domains/lastfm/recommend/batch", {"json": {"users": ["2"], "exclude_seen": 1},
                                                    "headers": READ}, 422),
    # Bodies: queries get max_query_bytes, tables max_request_bytes.
    ("post", "/v1/domains/lastfm/recommend", {"data": QUERY_BIG, "headers": {**READ, "Content-Type":
                                                                             "application/json"}}, 413),
    ("post", "/v1/domains/lastfm/score", {"data": QUERY_BIG, "headers": JSON}, 413),
    ("post", "/v1/domains/lastfm/interactions", {"data": BIG, "headers": JSON}, 413),
    # Registration by path: only relative paths inside import_dir; both sources at once is an error.
    ("post", "/v1/domains", {"json": {"name": "shop", "path": "http://127.0.0.1:9/small.csv"}, "headers": AUTH}, 422),
    ("post", "/v1/domains", {"json": {"name": "shop", "path": "file:///etc/passwd"}, "headers": AUTH}, 422),
    ("post", "/v1/domains", {"json": {"name": "shop", "path": "../x.csv"}, "headers": AUTH}, 422),
    ("post", "/v1/domains", {"json": {"name": "shop", "path": "escape.csv"}, "headers": AUTH}, 422),
    ("post", "/v1/domains", {"json": {"name": "shop", "path": "small.csv", "interactions": ROWS60},
                             "headers": AUTH}, 422),
    ("post", "/v1/domains", {"json": {"name": "shop", "path": "small.csv"}, "headers": READ}, 403),
    # A Parquet upload with valid magic bytes and garbage inside.
    ("post", "/v1/domains?name=shop", {"data": GARBAGE_PARQUET,
                                       "headers": {**AUTH, "Content-Type": "application/vnd.apache.parquet"}}, 422),
])
def test_bad_input_gets_a_clear_4xx_and_changes_nothing(app, lastfm, method, path, kwargs, status):
    base, _ = app
    before = requests.get(f"{base}/v1/domains", headers=READ).json()
    r = getattr(requests, method)(base + path, timeout=60, **kwargs)
    assert r.status_code == status, r.text[:2000]
    assert len(r.content) < 20_000  # a big body is never echoed back
    if r.headers.get("content-type", "").startswith("application/json"):
        assert r.json().get("detail"), r.text  # a message says why
        assert TOKEN not in r.text and READ_TOKEN not in r.text
    if status == 401:
        assert r.headers.get("www-authenticate") == "Bearer"
    after = requests.get(f"{base}/v1/domains", headers=READ).json()
    assert [(d["name"], d["status"], d["current_version"], d["pending_version"]) for d in after] == \
        [(d["name"], d["status"], d["current_version"], d["pending_version"]) for d in before]


def test_register_from_csv_and_parquet_uploads(app, lastfm_rows):
    import io

    base, _ = app
    df = pd.DataFrame(lastfm_rows[:2000])
    r = requests.post(f"{base}/v1/domains?name=from-csv", data=df.to_csv(index=False),
                      headers={**AUTH, "Content-Type": "text/csv"})
    assert r.status_code == 202, r.text
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    r = requests.post(f"{base}/v1/domains?name=from-parquet", data=buf.getvalue(),
                      headers={**AUTH, "Content-Type": "application/vnd.apache.parquet"})
    assert r.status_code == 202, r.text
    a, b = wait_ready(base, "from-csv"), wait_ready(base, "from-parquet")
    assert a["counts"] == b["counts"] and a["counts"]["interactions"] == len(df.drop_duplicates())
    assert requests.delete(f"{base}/v1/domains/from-csv", headers=AUTH).status_code == 204
    assert requests.get(f"{base}/v1/domains/from-csv", headers=READ).status_code == 404


def test_model_endpoint_and_docs(app, checkpoint):
    base, _ = app
    r = requests.get(f"{base}/v1/model", headers=READ)
    m = r.json()
    assert m["model"] == "pair" and m["sources"] == ["ml-100k"] and m["feature_schema"]["user"]
    assert m["checkpoint"] == Path(checkpoint).name  # the file name only, never a server path
    assert str(Path(checkpoint).parent) not in r.text
    assert requests.get(f"{base}/docs").status_code == 200
    assert "/v1/domains/{name}/recommend" in requests.get(f"{base}/openapi.json").json()["paths"]
    assert requests.get(f"{base}/healthz").json() == {"status": "ok"}  # open, and no domain count


def test_missing_checkpoint_fails_at_once_with_how_to(tmp_path):
    with pytest.raises(RuntimeError, match="make demo"):
        build_app({"checkpoint": str(tmp_path / "none.pt"), "storage_dir": str(tmp_path)})
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="cannot be loaded"):
        build_app({"checkpoint": str(tmp_path / "bad.pt"), "storage_dir": str(tmp_path)})


def test_reads_need_the_read_or_the_write_token_and_the_read_token_cannot_write(app, lastfm, lastfm_rows):
    base, _ = app
    user, item = lastfm_rows[0]["user"], lastfm_rows[0]["item"]
    reads = [("get", "/v1/domains", {}), ("get", "/v1/domains/lastfm", {}), ("get", "/v1/model", {}),
             ("post", "/v1/domains/lastfm/recommend", {"json": {"user": user, "k": 3}}),
             ("post", "/v1/domains/lastfm/recommend/batch", {"json": {"users": [user], "k": 3}}),
             ("post", "/v1/domains/lastfm/score", {"json": {"user": user, "items": [item]}})]
    for method, path, kwargs in reads:
        call = getattr(requests, method)
        bare = call(base + path, timeout=60, **kwargs)
        assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer", (path, bare.text)
        assert call(base + path, headers=WRONG, timeout=60, **kwargs).status_code == 403, path
        by_read = call(base + path, headers=READ, timeout=60, **kwargs)
        by_write = call(base + path, headers=AUTH, timeout=60, **kwargs)
        assert by_read.status_code == by_write.status_code == 200, (path, by_read.text, by_write.text)
        assert by_read.json() == by_write.json(), path
    before = requests.get(f"{base}/v1/domains", headers=READ).json()
    writes = [("post", "/v1/domains", {"json": {"name": "by-reader", "interactions": ROWS60}}),
              ("post", "/v1/domains?name=by-reader", {"data": pd.DataFrame(ROWS60).to_csv(index=False),
                                                      "headers": {"Content-Type": "text/csv"}}),
              ("post", "/v1/domains/lastfm/interactions", {"json": {"interactions": ROWS60}}),
              ("delete", "/v1/domains/lastfm", {})]
    for method, path, kwargs in writes:
        headers = {**kwargs.pop("headers", {}), **READ}
        r = getattr(requests, method)(base + path, headers=headers, timeout=60, **kwargs)
        assert r.status_code == 403, (path, r.text)
    assert requests.get(f"{base}/v1/domains", headers=READ).json() == before
    assert requests.get(f"{base}/healthz", timeout=60).json() == {"status": "ok"}  # no token needed


def test_registration_by_path_reads_only_files_inside_import_dir_and_refuses_alike(app, imports):
    base, _ = app
    hits = []

    class Evil(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            hits.append(self.path)
            body = pd.DataFrame(domain_rows(60, 20, 30)).to_csv(index=False).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    evil = f"http://127.0.0.1:{server.server_address[1]}/evil.csv"
    try:
        refused = ["/etc/passwd", "../x.csv", "escape.csv", evil, "file:///etc/passwd", "missing.csv", "sub", "sub/",
                   "sub/../../x.csv", str(imports.parent / "x.csv"), "//etc/passwd", "s3://bucket/small.csv",
                   "loop.csv", "a" * 300 + ".csv", "sub/missing/deeper.csv", "C:small.csv"]
        answers = {}
        for path in refused:
            r = requests.post(f"{base}/v1/domains", json={"name": "imported", "path": path}, headers=AUTH, timeout=60)
            assert r.status_code == 422, (path, r.status_code, r.text)
            answers[path] = r.content
        assert len(set(answers.values())) == 1, answers  # byte-identical: nothing says whether a path exists
        assert "import" in json.loads(next(iter(answers.values())))["detail"]
        assert hits == [], f"the app fetched {hits}"
        assert requests.get(evil, timeout=10).status_code == 200 and hits == ["/evil.csv"]  # it was reachable
    finally:
        server.shutdown()
        server.server_close()
    assert requests.get(f"{base}/v1/domains/imported", headers=READ).status_code == 404
    for name, path, rows in [("imported", "small.csv", domain_rows(60, 20, 30)),
                             ("imported-deep", "sub/deep.csv", domain_rows(80, 20, 30))]:
        r = requests.post(f"{base}/v1/domains", json={"name": name, "path": path}, headers=AUTH, timeout=60)
        assert r.status_code == 202, r.text
        assert wait_ready(base, name)["counts"] == counts(rows)


def test_bodies_are_bounded_before_parsing_also_when_streamed(app, lastfm, lastfm_rows):
    base, _ = app
    r = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": "u" * 5_000_000}, headers=READ,
                      timeout=120)
    assert r.status_code == 413, r.text[:200]
    assert len(r.content) < 200 and "uuuu" not in r.text and str(QUERY_BYTES) in r.json()["detail"]

    def chunks(total: int, prefix: bytes):  # no Content-Length: the server counts as it streams
        yield prefix
        sent = len(prefix)
        while sent < total:
            yield b'"' + b"v" * 9_997 + b'",'
            sent += 10_000
        yield b'"end"]}'

    r = requests.post(f"{base}/v1/domains/lastfm/recommend/batch", data=chunks(QUERY_BYTES + 50_000, b'{"users": ['),
                      headers={**READ, "Content-Type": "application/json"}, timeout=120)
    assert "Content-Length" not in r.request.headers and r.request.headers["Transfer-Encoding"] == "chunked"
    assert r.status_code == 413, r.text[:200]
    assert len(r.content) < 200
    # A small streamed query is fine.
    r = requests.post(f"{base}/v1/domains/lastfm/recommend/batch", data=iter([b'{"users": ["', b'never-seen"]}']),
                      headers={**READ, "Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 200 and r.json()[0]["cold_start"], r.text
    # Tables get max_request_bytes: bodies over max_query_bytes reach the handler (and its 422 / 404)...
    body = json.dumps({"name": "Not A Valid Name", "interactions": lastfm_rows})
    assert QUERY_BYTES < len(body) < MAX_BYTES
    r = requests.post(f"{base}/v1/domains", data=body, headers=JSON, timeout=120)
    assert r.status_code == 422 and "invalid domain name" in r.text, r.text[:500]
    r = requests.post(f"{base}/v1/domains/nope/interactions", data=json.dumps({"interactions": lastfm_rows}),
                      headers=JSON, timeout=120)
    assert r.status_code == 404, r.text[:500]
    # ...and a streamed table over max_request_bytes is cut off.
    r = requests.post(f"{base}/v1/domains", data=chunks(MAX_BYTES + 50_000, b'{"name": "x", "interactions": ['),
                      headers=JSON, timeout=120)
    assert r.status_code == 413, r.text[:200]
    # Ids: MAX_ID_LENGTH characters are fine, one more is not.
    ok = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": "w" * MAX_ID_LENGTH}, headers=READ)
    assert ok.status_code == 200 and ok.json()["cold_start"], ok.text[:300]
    assert requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": "w" * (MAX_ID_LENGTH + 1)},
                         headers=READ).status_code == 422


def test_open_reads_disabled_imports_and_body_limits_under_a_route_prefix(app, checkpoint, imports, ray_session,
                                                                          tmp_path_factory):
    """A second app on the same Serve instance under /open: protect_reads false, no import_dir, a
    small max_query_bytes; the route prefix must not turn its table endpoints into query endpoints."""
    from ray import serve

    from zsrec_ray.serving.app import ZsrecAPI

    base, _ = app
    storage = tmp_path_factory.mktemp("serve-open")
    (storage / "token").write_text(TOKEN)
    settings = {"checkpoint": str(checkpoint), "storage_dir": str(storage), "token_env": "ZSREC_TEST_UNSET",
                "token_file": str(storage / "token"), "read_token_env": "ZSREC_TEST_UNSET_READ",
                "protect_reads": False, "max_request_bytes": MAX_BYTES, "max_query_bytes": 2048,
                "featurizer_cpus": 0.25}
    build_app(settings)
    serve.run(ZsrecAPI.options(name="ZsrecOpen", ray_actor_options={"num_cpus": 0.25}).bind(settings),
              name="zsrec-open", route_prefix="/open")
    opened = f"{base}/open"
    try:
        assert requests.get(f"{opened}/healthz").json() == {"status": "ok"}
        assert requests.get(f"{opened}/v1/domains").json() == []  # reads need no token here
        assert requests.get(f"{opened}/v1/model").status_code == 200
        assert requests.get(f"{base}/v1/domains").status_code == 401  # the other app is unaffected
        for path in ["small.csv", "/etc/passwd", "http://127.0.0.1:9/x.csv"]:
            r = requests.post(f"{opened}/v1/domains", json={"name": "imp", "path": path}, headers=AUTH)
            assert r.status_code == 403 and "server-side imports are disabled" in r.json()["detail"], (path, r.text)
        rows = domain_rows(120, 24, 40)
        body = json.dumps({"name": "shop", "interactions": rows})
        assert len(body) > 2048
        assert requests.post(f"{opened}/v1/domains", data=body,
                             headers={"Content-Type": "application/json"}).status_code == 401  # writes: token
        r = requests.post(f"{opened}/v1/domains", data=body, headers=JSON)
        assert r.status_code == 202, r.text  # a table body: max_request_bytes, not max_query_bytes
        assert wait_ready(opened, "shop", headers={})["counts"] == counts(rows)
        more = [{"user": f"new{i}", "item": f"i{j}"} for i in range(30) for j in range(3)]
        r = requests.post(f"{opened}/v1/domains/shop/interactions", json={"interactions": more}, headers=AUTH)
        assert len(r.request.body) > 2048 and r.status_code == 202, r.text
        assert wait_ready(opened, "shop", version=2, headers={})["counts"] == counts(rows + more)
        assert requests.post(f"{opened}/v1/domains/shop/recommend", json={"user": "u1", "k": 3}).status_code == 200
        r = requests.post(f"{opened}/v1/domains/shop/recommend/batch",
                          json={"users": [f"u{i % 24}" for i in range(400)], "k": 3})
        assert len(r.request.body) > 2048 and r.status_code == 413, r.text  # a query body: max_query_bytes
    finally:
        serve.delete("zsrec-open")
        name = featurizer_name(str(Path(checkpoint).resolve()), str(storage.resolve() / "domains"))
        for a in ray_session.util.list_named_actors(all_namespaces=True):
            if a["name"] == name:
                ray_session.kill(ray_session.get_actor(name, namespace=a["namespace"]))


def test_garbage_parquet_upload_is_a_422_naming_parquet(app):
    base, _ = app
    rng = np.random.default_rng(1)
    for garbage in [b"PAR1" + rng.bytes(5000) + b"PAR1",
                    b"PAR1" + rng.bytes(5000) + (5000).to_bytes(4, "little") + b"PAR1"]:  # a plausible footer
        r = requests.post(f"{base}/v1/domains?name=garbage", data=garbage,
                          headers={**AUTH, "Content-Type": "application/vnd.apache.parquet"})
        assert r.status_code == 422 and "Parquet" in r.json()["detail"], r.text
    assert requests.get(f"{base}/v1/domains/garbage", headers=READ).status_code == 404


def featurizer_actor(ray, checkpoint, storage):
    """The main app's featurizer actor (its name is a digest of the checkpoint and storage paths)."""
    name = featurizer_name(str(Path(checkpoint).resolve()), str(storage.resolve() / "domains"))
    namespace = {a["name"]: a["namespace"] for a in ray.util.list_named_actors(all_namespaces=True)}[name]
    return ray.get_actor(name, namespace=namespace)


def test_a_deleted_registration_never_publishes_into_a_new_one_of_the_same_name(app, lastfm, lastfm_rows, checkpoint,
                                                                                 ray_session, tmp_path):
    """The featurizer is held (by a gate installed in its process) after it has featurized the first
    registration's rows and before it publishes them; meanwhile the name is deleted and registered
    again. Once released, the stale work must not become the new registration's version 1."""
    base, storage = app
    gate = str(tmp_path / "gate")

    def hold(_, gate):  # runs in the featurizer actor: featurizations wait for the file `gate`
        import zsrec_ray.serving.domains as domains

        real = getattr(domains.featurize, "__wrapped__", domains.featurize)

        def gated(*args, **kwargs):
            out = real(*args, **kwargs)
            Path(gate + ".reached").touch()
            deadline = time.monotonic() + 600
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.05)
            return out

        gated.__wrapped__ = real
        domains.featurize = gated

    def release(_):
        import zsrec_ray.serving.domains as domains

        domains.featurize = getattr(domains.featurize, "__wrapped__", domains.featurize)

    worker = featurizer_actor(ray_session, checkpoint, storage)
    ray_session.get(worker.__ray_call__.remote(hold, gate), timeout=120)
    try:
        r = requests.post(f"{base}/v1/domains", json={"name": "race", "interactions": lastfm_rows}, headers=AUTH)
        assert r.status_code == 202, r.text
        wait_until(lambda: os.path.exists(gate + ".reached"), timeout=600,
                   what="the featurizer to have featurized the first registration (held before publishing)")
        st = requests.get(f"{base}/v1/domains/race", headers=READ).json()
        assert st["status"] == "pending", st
        assert requests.delete(f"{base}/v1/domains/race", headers=AUTH).status_code == 204
        rows = domain_rows(300, 40, 50)
        r = requests.post(f"{base}/v1/domains", json={"name": "race", "interactions": rows}, headers=AUTH)
        assert r.status_code == 202, r.text
    finally:
        Path(gate).touch()
        ray_session.get(worker.__ray_call__.remote(release), timeout=600)  # runs after the queued work
    st = wait_ready(base, "race")
    assert st["counts"] == counts(rows) and st["current_version"] == 1, st
    rec = requests.post(f"{base}/v1/domains/race/recommend", json={"user": "u0", "k": 5}, headers=READ)
    assert rec.status_code == 200 and not rec.json()["cold_start"], rec.text
    # One more registration: the featurizer is serial, so once it is ready the stale one has ended.
    r = requests.post(f"{base}/v1/domains", json={"name": "after-race", "interactions": domain_rows(60, 20, 30)},
                      headers=AUTH)
    assert r.status_code == 202, r.text
    wait_ready(base, "after-race")
    st = requests.get(f"{base}/v1/domains/race", headers=READ).json()
    assert st["status"] == "ready" and st["counts"] == counts(rows) and st["current_version"] == 1, st
    rec = requests.post(f"{base}/v1/domains/race/recommend", json={"user": "u0", "k": 5}, headers=READ)
    assert rec.status_code == 200 and {x["item"] for x in rec.json()["items"]} <= {x["item"] for x in rows}
    meta = json.loads((storage / "domains" / "race" / "meta.json").read_text())
    assert sorted(p.name for p in (storage / "domains" / "race").glob("v*")) == [f"v1.{meta['generation']}"]


def test_appends_keep_only_the_serving_and_the_pending_version(app):
    base, storage = app
    rows = domain_rows(60, 20, 30)
    r = requests.post(f"{base}/v1/domains", json={"name": "grow", "interactions": rows}, headers=AUTH)
    assert r.status_code == 202, r.text
    wait_ready(base, "grow")
    d = storage / "domains" / "grow"

    def versions() -> list[str]:
        return sorted(p.name for p in d.glob("v*"))

    added = []
    for i in range(10):
        new = [{"user": f"new{i}", "item": f"i{j}"} for j in range(3)]
        added += new
        r = requests.post(f"{base}/v1/domains/grow/interactions", json={"interactions": new}, headers=AUTH)
        assert r.status_code == 202 and r.json()["version"] == i + 2, r.text
        if i >= 6:  # nothing but this version is featurizing now
            assert len(versions()) <= 2, versions()
        if i >= 5:  # the first five arrive back to back, superseding each other; the rest one at a time
            wait_ready(base, "grow", version=i + 2)
            assert len(versions()) <= 2, versions()
    st = wait_ready(base, "grow", version=11)
    assert st["counts"] == counts(rows + added)
    meta = json.loads((d / "meta.json").read_text())
    assert versions() == [f"v11.{meta['generation']}"]


REPLICA = "SERVE_REPLICA::zsrec#ZsrecAPI"


def replica_pids(ray) -> dict[str, int]:
    """The app's live replica actors, each asked for its PID: actor name -> PID."""
    out = {}
    for a in ray.util.list_named_actors(all_namespaces=True):
        if not a["name"].startswith(REPLICA):
            continue
        try:
            handle = ray.get_actor(a["name"], namespace=a["namespace"])
            out[a["name"]] = ray.get(handle.__ray_call__.remote(lambda _: os.getpid()), timeout=60)
        except (ValueError, ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            pass  # gone, or not answering: not a live replica
    return out


def featurizers(ray) -> list[str]:
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                  if a["name"].startswith("zsrec-featurizer"))


def test_a_killed_replica_or_featurizer_is_replaced_and_featurizing_goes_on(app, lastfm, checkpoint, ray_session):
    base, storage = app
    expected = featurizer_name(str(Path(checkpoint).resolve()), str(storage.resolve() / "domains"))
    assert wait_until(lambda: featurizers(ray_session) == [expected], timeout=120,
                      what="exactly one featurizer, the app's")
    victims = ray_worker_pids("ray::ServeReplica:zsrec:ZsrecAPI")
    assert len(victims) == 1, victims
    os.kill(victims[0], signal.SIGKILL)

    def answers_again() -> bool:
        fresh = [p for p in ray_worker_pids("ray::ServeReplica:zsrec:ZsrecAPI") if p != victims[0]]
        try:
            ok = requests.get(f"{base}/v1/domains/lastfm", headers=READ, timeout=30).status_code == 200
        except requests.RequestException:
            ok = False
        return ok and bool(fresh)

    wait_until(answers_again, timeout=600, interval=0.5, what="a new replica to answer")
    rows = domain_rows(60, 20, 30, prefix="k")
    r = requests.post(f"{base}/v1/domains", json={"name": "after-kill", "interactions": rows}, headers=AUTH)
    assert r.status_code == 202, r.text
    assert wait_ready(base, "after-kill")["counts"] == counts(rows)
    assert featurizers(ray_session) == [expected]  # the restarted replica got the same actor

    # The featurizer killed for good (no restart): the next registration is featurized by a new one.
    namespace = {a["name"]: a["namespace"] for a in ray_session.util.list_named_actors(all_namespaces=True)}[expected]
    ray_session.kill(ray_session.get_actor(expected, namespace=namespace), no_restart=True)
    rows = domain_rows(80, 20, 30, prefix="f")
    r = requests.post(f"{base}/v1/domains", json={"name": "after-featurizer-kill", "interactions": rows},
                      headers=AUTH)
    assert r.status_code == 202, r.text
    assert wait_ready(base, "after-featurizer-kill")["counts"] == counts(rows)
    assert featurizers(ray_session) == [expected]


def test_two_replicas_killing_one_loses_no_retried_request(app, lastfm, lastfm_rows, checkpoint, imports,
                                                           ray_session):
    from concurrent.futures import ThreadPoolExecutor

    from ray import serve

    base, storage = app
    serve.delete("zsrec")
    start(checkpoint, storage, imports, replicas=2)
    users = sorted({r["user"] for r in lastfm_rows})[:300]

    def one(user: str) -> int:
        status = 0
        for _ in range(2):  # one retry
            try:
                status = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": user, "k": 5},
                                       headers=READ, timeout=60).status_code
            except requests.RequestException:
                status = -1
            if status == 200:
                break
        return status

    def two_running() -> bool:
        app_status = serve.status().applications.get("zsrec")
        if app_status is None:
            return False
        states = {str(getattr(k, "value", k)): n for k, n in app_status.deployments["ZsrecAPI"].replica_states.items()}
        return str(getattr(app_status.status, "value", app_status.status)) == "RUNNING" and states.get("RUNNING") == 2

    before = replica_pids(ray_session)
    assert len(before) == 2 and len(set(before.values())) == 2, before
    victim = sorted(before)[0]
    namespace = {a["name"]: a["namespace"] for a in ray_session.util.list_named_actors(all_namespaces=True)}[victim]
    with ThreadPoolExecutor(4) as ex:
        warm = [ex.submit(one, u) for u in users[:50]]
        wait_until(lambda: all(f.done() for f in warm), timeout=600, interval=0.2,
                   what="the first 50 requests to be answered by the two replicas")
        during = [ex.submit(one, u) for u in users[50:]]  # queued: sent while the victim dies
        ray_session.kill(ray_session.get_actor(victim, namespace=namespace), no_restart=True)
        pending_at_kill = sum(not f.done() for f in during)

        # Serve replaces the victim: a new replica actor, in a new process, that answers.
        def replaced() -> dict[str, int] | None:
            now = replica_pids(ray_session)
            fresh = len(now) == 2 and victim not in now and before[victim] not in now.values()
            return now if fresh else None

        after_pids = wait_until(replaced, timeout=600, interval=0.5, what=f"Serve to replace the killed {victim}")
        wait_until(two_running, timeout=600, interval=0.5, what="the app to run two healthy replicas again")
        after = [ex.submit(one, u) for u in users[:50]]  # served again by the two replicas
        statuses = [f.result() for f in warm + during + after]
    assert pending_at_kill > 0, "every request had been answered before the kill: the kill was not tested"
    assert len(set(after_pids) - set(before)) == 1 and len(set(after_pids.values())) == 2, (before, after_pids)
    assert statuses == [200] * len(statuses), {s: statuses.count(s) for s in set(statuses)}
