"""The Serve app over real HTTP: register a real domain, recommend = offline scoring, versions,
restart without re-featurizing, cold start, and a table of bad inputs that change nothing."""

import json
import os
import socket

import numpy as np
import pytest
import requests
import torch

from conftest import wait_until
from zsrec_ray.config import DomainSpec, FeatureConfig, PairConfig, PretrainConfig, SpectralConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.data.registry import load_split
from zsrec_ray.models.pretrained import PretrainedRecommender
from zsrec_ray.serving.app import build_app
from zsrec_ray.training.pretrain import prepare_source, pretrain

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BYTES = 4_000_000


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


def start(checkpoint, storage, replicas: int = 1):
    from ray import serve

    from zsrec_ray.serving.app import ZsrecAPI

    token_file = storage / "token"  # the secret-file route (replicas do not see this process's env)
    token_file.write_text(TOKEN + "\n")
    settings = {"checkpoint": str(checkpoint), "storage_dir": str(storage), "token_env": "ZSREC_TEST_UNSET",
                "token_file": str(token_file), "max_request_bytes": MAX_BYTES, "max_k": 100, "featurizer_cpus": 0.5}
    build_app(settings)  # validates settings and the checkpoint, as `serve run` does
    app = ZsrecAPI.options(num_replicas=replicas, ray_actor_options={"num_cpus": 0.5}).bind(settings)
    serve.run(app, name="zsrec", route_prefix="/")


@pytest.fixture(scope="module")
def app(ray_session, checkpoint, tmp_path_factory):
    from ray import serve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    storage = tmp_path_factory.mktemp("serve")
    start(checkpoint, storage)
    yield f"http://127.0.0.1:{port}", storage
    try:
        serve.shutdown()
    except ray_session.exceptions.ActorDiedError:  # a proxy killed while a health check was queued
        pass
    for a in ray_session.util.list_named_actors(all_namespaces=True):  # the detached featurizer
        if a["name"].startswith("zsrec-featurizer"):
            ray_session.kill(ray_session.get_actor(a["name"], namespace=a["namespace"]))


def wait_ready(base, name, version=None, timeout=600):
    """The domain's status once it is ready (at ``version`` when given); fails at once if it failed."""
    def ready():
        st = requests.get(f"{base}/v1/domains/{name}", timeout=60).json()
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
    import pandas as pd

    from zsrec_ray.models.checkpoint import Checkpoint

    data = Interactions.from_frame(pd.DataFrame(lastfm_rows).drop_duplicates(), "lastfm")
    return data, PretrainedRecommender(Checkpoint.load(checkpoint)).fit(data)


def offline_top(offline, users, k):
    data, model = offline
    uidx = [int(np.flatnonzero(data.user_ids.astype(str) == u)[0]) for u in users]
    scores = torch.from_numpy(model.score(np.array(uidx)))
    seen = data.to_csr()
    for r, u in enumerate(uidx):
        scores[r, torch.from_numpy(seen[u].indices.astype(np.int64))] = -torch.inf
    top = torch.topk(scores, k, dim=1)
    return [[str(data.item_ids[j]) for j in row] for row in top.indices.tolist()], top.values


def test_recommendations_equal_offline_scoring(app, lastfm, lastfm_rows, offline):
    base, _ = app
    assert lastfm["counts"]["users"] == 1859 and lastfm["current_version"] == 1
    users = sorted({r["user"] for r in lastfm_rows})[:5]
    want_items, want_scores = offline_top(offline, users, 10)
    for u, items, scores in zip(users, want_items, want_scores):
        r = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": u, "k": 10})
        assert r.status_code == 200, r.text
        got = r.json()
        assert not got["cold_start"] and got["domain_version"] == 1
        assert [x["item"] for x in got["items"]] == items
        np.testing.assert_allclose([x["score"] for x in got["items"]], scores.numpy(), rtol=1e-5, atol=1e-5)
    mixed = users[:2] + ["never-seen"] + users[2:]  # a cold user among known ones masks nothing of theirs
    batch = requests.post(f"{base}/v1/domains/lastfm/recommend/batch", json={"users": mixed, "k": 10}).json()
    assert [b["cold_start"] for b in batch] == [u == "never-seen" for u in mixed]
    assert [[x["item"] for x in b["items"]] for b in batch if not b["cold_start"]] == want_items
    cold = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": "never-seen", "k": 10}).json()
    assert batch[2]["items"] == cold["items"] and len(cold["items"]) == 10


def test_score_and_cold_start(app, lastfm, lastfm_rows, offline):
    base, _ = app
    data, model = offline
    column = {str(x): j for j, x in enumerate(data.item_ids)}
    u = lastfm_rows[0]["user"]
    rec = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": u, "k": 100, "exclude_seen": False}).json()
    assert len(rec["items"]) == 100
    # Items the user has seen (never in an exclude_seen ranking) and items of this ranking.
    seen = [r["item"] for r in lastfm_rows if r["user"] == u][:3]
    ranked = [rec["items"][0]["item"], rec["items"][57]["item"], rec["items"][99]["item"]]
    items = seen + ranked
    assert len(seen) == 3 and len(set(items)) == 6
    r = requests.post(f"{base}/v1/domains/lastfm/score", json={"user": u, "items": items})
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
    cold = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": "never-seen", "k": 5}).json()
    assert cold["cold_start"] is True and len(cold["items"]) == 5
    want_idx, want_val = model.cold_recommend(5)
    assert [x["item"] for x in cold["items"]] == [str(data.item_ids[j]) for j in want_idx]
    np.testing.assert_allclose([x["score"] for x in cold["items"]], want_val, rtol=1e-5, atol=1e-5)
    cold2 = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": "also-new", "k": 5}).json()
    assert [x["item"] for x in cold2["items"]] == [x["item"] for x in cold["items"]]  # one answer for all
    got = requests.post(f"{base}/v1/domains/lastfm/score", json={"user": "never-seen", "items": items}).json()
    assert got["cold_start"] is True and [s["item"] for s in got["scores"]] == items
    np.testing.assert_allclose([s["score"] for s in got["scores"]], model.cold_scores()[[column[i] for i in items]],
                               rtol=1e-5, atol=1e-5)


def test_append_switches_versions_and_restart_keeps_domains(app, lastfm, lastfm_rows, checkpoint):
    from ray import serve

    base, storage = app
    new = [{"user": "newbie", "item": lastfm_rows[i]["item"]} for i in range(0, 200, 10)]
    r = requests.post(f"{base}/v1/domains/lastfm/interactions", json={"interactions": new}, headers=AUTH)
    assert r.status_code == 202 and r.json()["pending_version"] == 2
    st = wait_ready(base, "lastfm", version=2)
    assert st["counts"]["users"] == 1860
    rec = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": "newbie", "k": 5}).json()
    assert rec["domain_version"] == 2 and rec["cold_start"] is False
    assert not {x["item"] for x in rec["items"]} & {x["item"] for x in new}  # seen items excluded
    meta_before = json.loads((storage / "domains" / "lastfm" / "meta.json").read_text())
    serve.delete("zsrec")
    # A registration acknowledged (on disk) whose featurization never ran, as after a crash.
    import pandas as pd

    from zsrec_ray.serving.domains import DomainStore

    DomainStore(storage).create("interrupted", pd.DataFrame(lastfm_rows[:3000]))
    start(checkpoint, storage)
    assert wait_ready(base, "interrupted")["current_version"] == 1  # resumed by the restarted app
    st = requests.get(f"{base}/v1/domains/lastfm").json()
    assert st["status"] == "ready" and st["current_version"] == 2
    assert requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": "newbie"}).status_code == 200
    # Served from storage: nothing was featurized again.
    assert json.loads((storage / "domains" / "lastfm" / "meta.json").read_text()) == meta_before


BIG = "x" * (MAX_BYTES + 10)
TINY = [{"user": "a", "item": "b"}, {"user": "c", "item": "d"}]


@pytest.mark.parametrize("method,path,kwargs,status", [
    ("post", "/v1/domains", {"data": "{not json", "headers": {**AUTH, "Content-Type": "application/json"}}, 422),
    ("post", "/v1/domains", {"json": {"name": "shop", "interactions": TINY}}, 401),
    ("post", "/v1/domains", {"json": {"name": "shop", "interactions": TINY},
                             "headers": {"Authorization": "Bearer wrong"}}, 403),
    ("post", "/v1/domains", {"json": {"name": "shop", "interactions": TINY}, "headers": AUTH}, 422),  # tiny
    ("post", "/v1/domains", {"json": {"name": "../etc", "interactions": TINY * 20}, "headers": AUTH}, 422),
    ("post", "/v1/domains", {"json": {"name": "a" * 65, "interactions": TINY * 20}, "headers": AUTH}, 422),
    ("post", "/v1/domains", {"json": {"name": "lastfm", "path": "/nonexistent.csv"}, "headers": AUTH}, 422),
    ("post", "/v1/domains", {"data": BIG, "headers": {**AUTH, "Content-Type": "application/json"}}, 413),
    ("post", "/v1/domains", {"data": "a,b", "headers": {**AUTH, "Content-Type": "text/plain"}}, 415),
    ("post", "/v1/domains", {"json": {"name": "lastfm", "interactions": [{"user": f"u{i}", "item": f"i{i % 7}"}
                                                                          for i in range(40)]},
                             "headers": AUTH}, 409),
    ("post", "/v1/domains", {"json": {"name": "shop", "interactions": [{"user": {"x": 1}, "item": "b"}]},
                             "headers": AUTH}, 422),
    ("post", "/v1/domains/nope/recommend", {"json": {"user": "1"}}, 404),
    ("post", "/v1/domains/..%2F..%2Fetc/recommend", {"json": {"user": "1"}}, 404),
    ("post", "/v1/domains/lastfm/recommend", {"json": {"user": "2", "k": "ten"}}, 422),
    ("post", "/v1/domains/lastfm/recommend", {"json": {"user": "2", "k": 1.5}}, 422),
    ("post", "/v1/domains/lastfm/recommend", {"json": {"user": "2", "k": 0}}, 422),
    ("post", "/v1/domains/lastfm/recommend", {"json": {"user": "2", "k": 10**6}}, 422),
    ("post", "/v1/domains/lastfm/recommend", {"json": {"k": 5}}, 422),
    ("post", "/v1/domains/lastfm/score", {"json": {"user": "2", "items": ["no-such-item"]}}, 422),
    ("post", "/v1/domains/lastfm/interactions", {"json": {"interactions": TINY}}, 401),
    ("delete", "/v1/domains/lastfm", {}, 401),
    ("delete", "/v1/domains/nope", {"headers": AUTH}, 404),
    ("get", "/v1/domains/nope", {}, 404),
])
def test_bad_input_gets_a_clear_4xx_and_changes_nothing(app, lastfm, method, path, kwargs, status):
    base, _ = app
    before = requests.get(f"{base}/v1/domains").json()
    r = getattr(requests, method)(base + path, timeout=60, **kwargs)
    assert r.status_code == status, r.text
    if r.headers.get("content-type", "").startswith("application/json"):
        assert r.json().get("detail"), r.text  # a message says why
        assert TOKEN not in r.text
    after = requests.get(f"{base}/v1/domains").json()
    assert [(d["name"], d["status"], d["current_version"]) for d in after] == \
        [(d["name"], d["status"], d["current_version"]) for d in before]


def test_register_from_csv_and_parquet_uploads(app, lastfm_rows):
    import io

    import pandas as pd

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
    assert requests.get(f"{base}/v1/domains/from-csv").status_code == 404


def test_model_endpoint_and_docs(app):
    base, _ = app
    m = requests.get(f"{base}/v1/model").json()
    assert m["model"] == "pair" and m["sources"] == ["ml-100k"] and m["feature_schema"]["user"]
    assert requests.get(f"{base}/docs").status_code == 200
    assert "/v1/domains/{name}/recommend" in requests.get(f"{base}/openapi.json").json()["paths"]
    assert requests.get(f"{base}/healthz").json()["status"] == "ok"


def test_missing_checkpoint_fails_at_once_with_how_to(tmp_path):
    with pytest.raises(RuntimeError, match="make demo"):
        build_app({"checkpoint": str(tmp_path / "none.pt"), "storage_dir": str(tmp_path)})
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="cannot be loaded"):
        build_app({"checkpoint": str(tmp_path / "bad.pt"), "storage_dir": str(tmp_path)})


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


def test_two_replicas_killing_one_loses_no_retried_request(app, lastfm, lastfm_rows, checkpoint, ray_session):
    from concurrent.futures import ThreadPoolExecutor

    from ray import serve

    base, storage = app
    serve.delete("zsrec")
    start(checkpoint, storage, replicas=2)
    users = sorted({r["user"] for r in lastfm_rows})[:300]

    def one(user: str) -> int:
        status = 0
        for _ in range(2):  # one retry
            try:
                status = requests.post(f"{base}/v1/domains/lastfm/recommend", json={"user": user, "k": 5},
                                       timeout=60).status_code
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
