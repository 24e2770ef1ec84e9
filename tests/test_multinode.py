"""A two-node Ray cluster on this machine (one CPU per node, in its own process): featurization
into one store path and batch inference with one actor per node into one output path."""

import json
import subprocess
import sys
from pathlib import Path

from zsrec_ray.config import DomainSpec, FeatureConfig, PairConfig, PretrainConfig, SpectralConfig
from zsrec_ray.data.registry import load_split
from zsrec_ray.training.pretrain import prepare_source, pretrain

RUNNER = Path(__file__).with_name("multinode_run.py")


def test_two_nodes_featurize_into_one_store_and_share_batch_inference(tmp_path, data_dir):
    feat = FeatureConfig(spectral=SpectralConfig(dim=16), node_clusters=10, edge_clusters=10)
    cfg = PretrainConfig(epochs=1, users_per_epoch=200, valid_users=100)
    src = prepare_source(load_split(DomainSpec(dataset="ml-100k"), data_dir), feat, PairConfig(), cfg.graph_frac)
    ck = pretrain([src], feat, PairConfig(), cfg)[0].save(tmp_path / "ck.pt")
    proc = subprocess.run([sys.executable, str(RUNNER), str(tmp_path), str(ck), str(data_dir)], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["nodes"] == 2
    assert res["featurized"] == ["ok", "ok"] and sorted(res["stored"]) == ["lastfm", "ml-100k"]
    # one actor per node (each node has one CPU): both wrote blocks into the one output path
    assert res["batch_nodes"] == 2 and res["written"] == res["blocks"] == 7
    assert res["rows"] == res["users"] * 10 and res["duplicates"] == 0
    # a command with no address started its own Ray, not joined the running cluster (and died with it)
    assert res["embedded"].count(":") == 1 and res["embedded"] != res["cluster"], res
