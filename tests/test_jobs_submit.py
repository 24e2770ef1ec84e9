"""`ray job submit` against a real `ray start --head` cluster: the featurize and pretrain jobs.

The head runs in its own session and temp dir and is ended through its own process group
(SIGINT, then SIGKILL for leftovers), because `ray stop` would also end every other Ray on the
machine, including the embedded one the rest of the test session uses.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from zsrec_ray.models.checkpoint import Checkpoint

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def end_process_group(proc: subprocess.Popen) -> None:
    """SIGINT the group (what `ray start --block` shuts down on), SIGKILL whatever is left."""
    for sig, wait in ((signal.SIGINT, 45), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + wait
        while time.time() < deadline:
            proc.poll()  # reap the leader
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(1)


@pytest.fixture
def ray_head(tmp_path):
    port, dash = free_port(), free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("RAY_ADDRESS", None)
    temp = Path("/tmp") / f"zsrec-head-{os.getpid()}"  # Ray's socket paths must stay short
    log = open(tmp_path / "head.log", "w")
    head = subprocess.Popen(
        # Own ports for every agent too: the session's embedded Ray already holds the default ones.
        ["ray", "start", "--head", "--num-cpus", "2", "--port", str(port), "--dashboard-host", "127.0.0.1",
         "--dashboard-port", str(dash), "--dashboard-agent-listen-port", str(free_port()),
         "--dashboard-agent-grpc-port", str(free_port()), "--runtime-env-agent-port", str(free_port()),
         "--metrics-export-port", str(free_port()), "--temp-dir", str(temp), "--block"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.time() + 120
        while subprocess.run(["ray", "job", "list", "--address", address], env={**env, "RAY_AUTH_MODE": "token"},
                             capture_output=True).returncode != 0:
            if head.poll() is not None or time.time() > deadline:
                pytest.fail(f"ray head did not start: {(tmp_path / 'head.log').read_text()[-2000:]}")
            time.sleep(2)
        yield address, {**env, "RAY_AUTH_MODE": "token"}
    finally:
        end_process_group(head)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def submit(address: str, env: dict, *cmd: str) -> str:
    deadline = time.time() + 180
    while True:
        out = subprocess.run(["ray", "job", "submit", "--address", address, "--working-dir", str(REPO), "--", *cmd],
                             env=env, capture_output=True, text=True, timeout=900, cwd=REPO)
        # The dashboard answers before the node's job agent is up (slow on a loaded machine).
        if "No available agent" not in out.stdout + out.stderr or time.time() > deadline:
            break
        time.sleep(5)
    assert out.returncode == 0 and "succeeded" in out.stdout + out.stderr, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_featurize_and_pretrain_jobs_on_a_cluster(ray_head, tmp_path, data_dir):
    address, env = ray_head
    cfg = {"data_dir": str(data_dir), "sources": ["ml-100k", "lastfm"], "target": "douban-movie",
           "features": {"spectral": {"dim": 32}, "node_clusters": 20, "edge_clusters": 20},
           "pretrain": {"epochs": 2, "users_per_epoch": 300, "valid_users": 200},
           "ray": {"store": str(tmp_path / "store"), "storage_path": str(tmp_path / "runs"), "num_workers": 2,
                   "cpus_per_worker": 0.5},
           "checkpoint": str(tmp_path / "model.pt")}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = submit(address, env, "python", "jobs/featurize.py", "--config", str(path))
    for name in ("ml-100k", "lastfm", "douban-movie"):
        assert (tmp_path / "store" / "domains" / f"{name}.json").is_file(), out[-2000:]
    out = submit(address, env, "python", "jobs/pretrain.py", "--config", str(path))
    assert "2 Ray Train worker(s)" in out
    ck = Checkpoint.load(tmp_path / "model.pt")
    assert ck.metadata["sources"] == ["ml-100k", "lastfm"]
    assert list((tmp_path / "runs").glob("pretrain-*/epoch_0002"))
