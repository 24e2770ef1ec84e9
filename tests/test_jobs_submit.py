"""`ray job submit` against a real `ray start --head` cluster: the featurize and pretrain jobs.

The head runs in its own session and temp dir and is ended through its own process group
(SIGINT, then SIGKILL for leftovers), because `ray stop` would also end every other Ray on the
machine, including the embedded one the rest of the test session uses.
"""

import json
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

from conftest import wait_until
from zsrec_ray.models.checkpoint import Checkpoint

REPO = Path(__file__).resolve().parents[1]
#: Ceilings, not expected durations (a job takes a minute or two): on a loaded 2-core machine the
#: head's start and each job may take many times longer than usual, and the test should still wait.
HEAD_CEILING_S = 600
JOB_CEILING_S = 900


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
    env = {**env, "RAY_AUTH_MODE": "token"}

    def head_answers() -> bool:
        if head.poll() is not None:
            pytest.fail(f"ray head exited with {head.returncode}: {(tmp_path / 'head.log').read_text()[-2000:]}")
        return subprocess.run(["ray", "job", "list", "--address", address], env=env, capture_output=True,
                              timeout=300).returncode == 0

    try:
        wait_until(head_answers, timeout=HEAD_CEILING_S, interval=2, what=f"the ray head at {address} to answer")
        yield address, env
    finally:
        end_process_group(head)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


#: Run in a child with the head's environment (token auth) so that this process's Ray config stays
#: untouched: submit the job (retrying while the node's job agent is not up yet: the dashboard
#: answers first on a loaded machine), poll its status until it is terminal, then print one JSON
#: line with the final status, the status message and the job's logs. Past the ceiling the job is
#: stopped and reported as it stood.
JOB_DRIVER = r"""
import json, shlex, sys, time
from ray.job_submission import JobSubmissionClient

address, working_dir, ceiling, entrypoint = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
deadline = time.monotonic() + ceiling
client = JobSubmissionClient(address)
while True:
    try:
        job = client.submit_job(entrypoint=shlex.join(entrypoint), runtime_env={"working_dir": working_dir})
        break
    except RuntimeError as e:
        if "No available agent" not in str(e) or time.monotonic() > deadline:
            raise
        time.sleep(2)
status = client.get_job_status(job)
while not status.is_terminal() and time.monotonic() < deadline:
    time.sleep(2)
    status = client.get_job_status(job)
if not status.is_terminal():
    client.stop_job(job)
print(json.dumps({"job": job, "status": str(status.value), "message": client.get_job_info(job).message,
                  "logs": client.get_job_logs(job)}))
"""


def run_job(address: str, env: dict, *cmd: str) -> str:
    """Submit ``cmd`` as a job, wait for a terminal state (generous ceiling), and return its logs once
    it SUCCEEDED; otherwise fail with its status, message and logs."""
    out = subprocess.run([sys.executable, "-c", JOB_DRIVER, address, str(REPO), str(JOB_CEILING_S), *cmd], env=env,
                         capture_output=True, text=True, timeout=JOB_CEILING_S + 300, cwd=REPO)
    assert out.returncode == 0, f"job driver failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    job = json.loads(out.stdout.strip().splitlines()[-1])
    assert job["status"] == "SUCCEEDED", (f"job {job['job']} ({' '.join(cmd)}) ended {job['status']}: "
                                          f"{job['message']}\n--- job logs (tail) ---\n{job['logs'][-6000:]}")
    return job["logs"]


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
    out = run_job(address, env, "python", "jobs/featurize.py", "--config", str(path))
    for name in ("ml-100k", "lastfm", "douban-movie"):
        assert (tmp_path / "store" / "domains" / f"{name}.json").is_file(), out[-2000:]
    out = run_job(address, env, "python", "jobs/pretrain.py", "--config", str(path))
    assert "2 Ray Train worker(s)" in out
    ck = Checkpoint.load(tmp_path / "model.pt")
    assert ck.metadata["sources"] == ["ml-100k", "lastfm"]
    assert list((tmp_path / "runs").glob("pretrain-*/epoch_0002"))
