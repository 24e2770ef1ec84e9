"""`zsrec serve`: bad settings (checkpoint, token files, import dir) end it before Ray starts, with
exit code 2 and one line on stderr; `build_app` raises for the same problems. No Ray here."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import planted_interactions
from zsrec_ray.config import FeatureConfig, PairConfig, PretrainConfig, ServeConfig, SpectralConfig
from zsrec_ray.data.splits import random_split
from zsrec_ray.errors import ConfigError
from zsrec_ray.serving.app import build_app, check_settings
from zsrec_ray.training.pretrain import prepare_source, pretrain

REPO = Path(__file__).resolve().parents[1]
ZSREC = Path(sys.executable).parent / "zsrec"  # .venv/bin/zsrec


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(Checkpoint, its file): a tiny one, one epoch on a planted domain."""
    feat = FeatureConfig(spectral=SpectralConfig(dim=8), node_clusters=8, edge_clusters=8, cluster_bins=4,
                         activity_bins=5)
    pairs = PairConfig(item_neighbors=20, user_neighbors=10)
    cfg = PretrainConfig(model="pair", epochs=1, batch_size=512, valid_users=50)
    src = random_split(planted_interactions(150, 60, 5, 12, seed=1, name="a"), seed=0)
    ck, _ = pretrain([prepare_source(src, feat, pairs, cfg.graph_frac)], feat, pairs, cfg)
    return ck, ck.save(tmp_path_factory.mktemp("ck") / "model.pt")


def serve_yaml(tmp_path: Path, **args) -> Path:
    """The shipped serve_config.yaml with some app args replaced."""
    doc = yaml.safe_load((REPO / "serve_config.yaml").read_text())
    app = next(a for a in doc["applications"] if a["import_path"].endswith(":build_app"))
    app["args"].update({"storage_dir": str(tmp_path / "serve"), "token_env": "ZSREC_TEST_UNSET",
                        "read_token_env": "ZSREC_TEST_UNSET_READ", **args})
    path = tmp_path / "serve_config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run_serve(config: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZSREC_API_TOKEN", "ZSREC_READ_TOKEN"))}
    return subprocess.run([str(ZSREC), "serve", "--config", str(config)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=config.parent)


def flip_weight_bytes(ck, path: Path) -> None:
    """Flip bytes inside a weight tensor's data (the zip container stays valid)."""
    raw = bytearray(path.read_bytes())
    weight = ck.net.user_tower[0].weight.detach().numpy().tobytes()
    at = bytes(raw).find(weight)
    assert at > 0, "the weight's bytes are stored verbatim in the file"
    for i in range(at + 16, at + 416):
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("case,says", [
    ("missing checkpoint", "no checkpoint at"),
    ("corrupt checkpoint", "checkpoint is corrupt"),
    ("not a checkpoint", "cannot be loaded"),
    ("missing token_file", "token file"),
    ("missing read_token_file", "read_token token file"),
    ("import_dir not a directory", "import_dir"),
])
def test_zsrec_serve_refuses_bad_settings_with_one_line_and_exit_2(checkpoint, tmp_path, case, says):
    ck, good = checkpoint
    args = {"checkpoint": str(good)}
    if case == "missing checkpoint":
        args["checkpoint"] = str(tmp_path / "none.pt")
    elif case == "corrupt checkpoint":
        bad = tmp_path / "corrupt.pt"
        bad.write_bytes(good.read_bytes())
        flip_weight_bytes(ck, bad)
        args["checkpoint"] = str(bad)
    elif case == "not a checkpoint":
        (tmp_path / "garbage.pt").write_bytes(os.urandom(3000))  # torch's message spans lines
        args["checkpoint"] = str(tmp_path / "garbage.pt")
    elif case == "missing token_file":
        args["token_file"] = str(tmp_path / "no-such-token")
    elif case == "missing read_token_file":
        args["read_token_file"] = str(tmp_path / "no-such-read-token")
    else:
        (tmp_path / "a-file").write_text("not a dir")
        args["import_dir"] = str(tmp_path / "a-file")
    r = run_serve(serve_yaml(tmp_path, **args))
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zsrec serve: error:"), r.stderr
    assert says in lines[0], lines[0]
    assert "Traceback" not in r.stderr + r.stdout


def test_build_app_raises_for_the_same_problems(checkpoint, tmp_path):
    ck, good = checkpoint
    base = {"checkpoint": str(good), "storage_dir": str(tmp_path / "serve"), "token_env": "ZSREC_TEST_UNSET",
            "read_token_env": "ZSREC_TEST_UNSET_READ"}
    check_settings(ServeConfig.model_validate(base))  # the good settings pass
    with pytest.raises(ConfigError, match="token file .*no-such-token"):
        build_app({**base, "token_file": str(tmp_path / "no-such-token")})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        build_app({**base, "read_token_file": str(tmp_path / "empty")})
    with pytest.raises(ConfigError, match="import_dir"):
        build_app({**base, "import_dir": str(tmp_path / "no-such-dir")})
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(good.read_bytes())
    flip_weight_bytes(ck, bad)
    with pytest.raises(RuntimeError, match="checkpoint is corrupt"):
        build_app({**base, "checkpoint": str(bad)})


@pytest.mark.parametrize("address", [None, "ray://head:10001"])
def test_good_settings_start_ray_through_ensure_ray(checkpoint, tmp_path, monkeypatch, address):
    """Without --address (and $RAY_ADDRESS) the app gets a local Ray of its own, never the latest
    cluster another process started on the machine: ensure_ray's rule (tests/test_multinode.py)."""
    from zsrec_ray.distributed import runtime
    from zsrec_ray.serving.launch import serve_config_file

    _, good = checkpoint
    calls = []

    def fake_ensure_ray(addr=None, num_cpus=None, **kwargs):
        calls.append((addr, kwargs))
        raise SystemExit(7)  # stop before serving

    import ray

    monkeypatch.setattr(runtime, "ensure_ray", fake_ensure_ray)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init called directly: it joins other clusters"))
    with pytest.raises(SystemExit):
        serve_config_file(serve_yaml(tmp_path, checkpoint=str(good)), address)
    assert calls == [(address, {"namespace": "serve", "log_to_driver": True, "logging_level": 20})]
