"""Run by tests/test_multinode.py in its own process: a two-node Ray cluster on this machine
(``ray.cluster_utils.Cluster``, one CPU per node) featurizes two domains into one store path and
runs batch inference with one actor per node, both writing to one output path; meanwhile a
command given no Ray address starts a Ray of its own instead of joining this cluster (which
registers itself as the machine's latest). Prints a JSON summary on its last line.
Usage: python tests/multinode_run.py WORKDIR CHECKPOINT DATA_DIR"""

import json
import os
import subprocess
import sys
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from zsrec_ray.config import DomainSpec, FeatureConfig, SpectralConfig
from zsrec_ray.distributed.batch import batch_recommend
from zsrec_ray.distributed.featurize import featurize_domains
from zsrec_ray.experiments.batch import BatchJob, read_output
from zsrec_ray.features.store import FeatureStore


def main(work: Path, checkpoint: str, data_dir: str) -> dict:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        nodes = sum(n["Alive"] for n in ray.nodes())
        features = FeatureConfig(spectral=SpectralConfig(dim=16), node_clusters=10, edge_clusters=10)
        rows = featurize_domains([DomainSpec(dataset="ml-100k"), DomainSpec(dataset="lastfm")], features,
                                 str(work / "store"), 0.8, 0, data_dir)
        stored = FeatureStore(str(work / "store")).domains()
        job = BatchJob(checkpoint=checkpoint, domain=DomainSpec(dataset="lastfm"), output=str(work / "recs"), k=10,
                       block_users=300, data_dir=data_dir)
        res = batch_recommend(job, actors=2, cpus_per_actor=1.0)
        out = read_output(work / "recs")
        alone = subprocess.run([sys.executable, "-c", EMBEDDED], capture_output=True, text=True, timeout=600,
                               env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
        embedded = (alone.stdout.strip().splitlines() or [alone.stderr[-2000:]])[-1]
        return {"cluster": cluster.address, "embedded": embedded,
                "nodes": nodes, "featurized": [r["status"] for r in rows], "stored": stored,
                "batch_nodes": res["nodes"], "blocks": res["blocks"], "written": res["written"], "rows": len(out),
                "users": res["users"], "duplicates": int(out.duplicated(["user", "rank"]).sum())}
    finally:
        ray.shutdown()
        cluster.shutdown()


#: What a zsrec command given no address does: start Ray through ensure_ray; prints its GCS address.
EMBEDDED = """
import ray
from zsrec_ray.distributed.runtime import ensure_ray
assert ensure_ray()
print(ray.get_runtime_context().gcs_address)
ray.shutdown()
"""


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3])))
