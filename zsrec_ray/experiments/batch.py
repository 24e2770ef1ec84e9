"""Batch inference: every user's top k in a domain, written as Parquet blocks that a re-run resumes.

The output is a directory of ``part-<block>.parquet`` files (``user, rank, item, score``,
original ids) and a ``manifest.json`` naming what fixes the result (checkpoint digest, domain
data hash, k, block size, candidates). Each block is written atomically, so a killed run leaves
only whole blocks; running the same job again writes only the missing ones. Plain Python: the
Ray Data job (``zsrec_ray.distributed.batch``) only decides where blocks run.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from zsrec_ray.config import DEFAULT_CANDIDATES, DomainSpec
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.data.registry import load_interactions
from zsrec_ray.errors import ConfigError, DataError
from zsrec_ray.features.featureset import FeatureSet, config_hash
from zsrec_ray.features.featurizer import caching_featurizer, featurize, interactions_hash
from zsrec_ray.features.pairs import cached_neighbour_lists, load_neighbours
from zsrec_ray.files import absolute_uri, atomic_file, sha256_file
from zsrec_ray.models.checkpoint import Checkpoint, checkpoint_path
from zsrec_ray.models.pretrained import PretrainedRecommender
from zsrec_ray.ranking.table import topk_table

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class BatchJob:
    """One batch inference: checkpoint x domain -> top-k Parquet blocks under ``output``."""

    checkpoint: str
    domain: DomainSpec
    output: str
    k: int = 20
    exclude_seen: bool = True
    block_users: int = 2048
    candidates: int | None = DEFAULT_CANDIDATES
    data_dir: str | None = None
    cache_dir: str | None = None
    #: a served domain version's directory (``interactions.parquet`` and ``features/``, the layout
    #: of ``serving.domains.DomainStore``): ranked from its stored features and neighbour lists
    served: str | None = None

    def resolved(self) -> "BatchJob":
        """The job with local paths made absolute (workers on other nodes or directories read them)."""
        return dataclasses.replace(self, output=absolute_uri(self.output), checkpoint=absolute_uri(str(checkpoint_path(self.checkpoint))),
                                   data_dir=absolute_uri(self.data_dir) if self.data_dir else None,
                                   cache_dir=absolute_uri(self.cache_dir) if self.cache_dir else None,
                                   served=absolute_uri(self.served) if self.served else None)

    def part(self, block: int) -> Path:
        return Path(self.output) / f"part-{block:05d}.parquet"


def load_domain(job: BatchJob) -> Interactions:
    """The domain's interactions (all of them: nothing is held out in batch inference); for a
    served domain, those of the served version."""
    if not job.served:
        return load_interactions(job.domain, job.data_dir)
    path = Path(job.served) / "interactions.parquet"
    if not path.is_file():
        raise DataError(f"the served version of {job.domain.dataset!r} the job started from is gone (a newer "
                        "version replaced it); run the job again")
    return Interactions.from_frame(pd.read_parquet(path), str(job.domain.dataset))


def plan(job: BatchJob, overwrite: bool = False) -> tuple[dict, list[int]]:
    """Check everything before any scoring and prepare ``output``: returns the manifest and the
    blocks still to write. Refuses a missing or invalid checkpoint (DataError), a bad ``k``, and
    an output that exists for a different job or is complete, unless ``overwrite``."""
    Checkpoint.load(job.checkpoint)  # exists, format and content digest, before any work
    data = load_domain(job)
    if not 1 <= job.k <= data.n_items:
        raise ConfigError(f"k must be between 1 and the domain's {data.n_items} items, got {job.k}")
    n_blocks = -(-data.n_users // job.block_users)
    manifest = {"checkpoint_sha256": sha256_file(job.checkpoint), "domain": job.domain.dataset,
                "data_hash": interactions_hash(data), "users": data.n_users, "items": data.n_items, "k": job.k,
                "exclude_seen": job.exclude_seen, "block_users": job.block_users, "blocks": n_blocks,
                "candidates": job.candidates}
    out = Path(job.output)
    if out.exists():
        old = _read_manifest(out)
        done = [b for b in range(n_blocks) if job.part(b).is_file()]
        if overwrite:
            _clear(out)
        elif old != manifest:
            raise ConfigError(f"{out} exists and holds another job's output (or no manifest); give --overwrite "
                              "to replace it")
        elif len(done) == n_blocks:
            raise ConfigError(f"{out} already holds this job's complete output; give --overwrite to recompute it")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    return manifest, [b for b in range(n_blocks) if not job.part(b).is_file()]


def _read_manifest(out: Path) -> dict | None:
    try:
        return json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _clear(out: Path) -> None:
    if out.is_dir():
        for p in out.iterdir():
            if p.name == MANIFEST or (p.name.startswith("part-") and p.suffix == ".parquet"):
                p.unlink()
    else:
        out.unlink()


class BlockWriter:
    """Holds the fitted domain once and writes blocks of users' top k (one per call)."""

    def __init__(self, job: BatchJob):
        self.job = job
        ck = Checkpoint.load(job.checkpoint)
        cache = Path(job.cache_dir).expanduser() if job.cache_dir else None
        featurize_fn = caching_featurizer(cache / "features") if cache else featurize
        features = neighbours = None
        self.data = load_domain(job)
        if job.served:  # a served domain: its stored features and lists, when made for this checkpoint's settings
            fdir = Path(job.served) / "features"
            stored = FeatureSet.load(fdir)
            if stored.config_hash == config_hash(ck.features):
                features = stored
            neighbours = load_neighbours(fdir, ck.pairs) if ck.pair_names else None
        if neighbours is None and cache and ck.pair_names:
            neighbours = cached_neighbour_lists(self.data, ck.pairs, cache / "neighbours")
        model = PretrainedRecommender(ck, candidates=job.candidates,
                                      featurize_fn=featurize_fn if features is None else lambda g, c: features)
        model.neighbours = neighbours
        self.model = model.fit(self.data)
        self.seen = self.data.to_csr()
        planned = _read_manifest(Path(job.output))
        if planned is not None and planned.get("data_hash") != interactions_hash(self.data):
            raise DataError(f"the interactions of {job.domain.dataset!r} changed after the job was planned; "
                            "run it again")

    def write(self, block: int) -> int:
        """Write block ``block`` (atomically) and return its row count."""
        j = self.job
        users = np.arange(block * j.block_users, min((block + 1) * j.block_users, self.data.n_users))
        exclude = self.seen[users] if j.exclude_seen else None
        table = topk_table(self.model, users, j.k, exclude, self.data.user_ids, self.data.item_ids)
        with atomic_file(j.part(block)) as tmp:
            table.to_parquet(tmp, index=False)
        return len(table)


def read_output(output: str | Path) -> pd.DataFrame:
    """Every block of a finished (or partial) output, in block order."""
    parts = sorted(Path(output).glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True) if parts else \
        pd.DataFrame(columns=["user", "rank", "item", "score"])
