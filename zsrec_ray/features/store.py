"""The feature store: FeatureSets by key, plus one manifest per featurized domain.

Layout under the store root (a local directory or any URI pyarrow's filesystems accept, e.g.
``file:///data/store``, ``s3://bucket/store``)::

    sets/<key>/{user,item,user_emb,item_emb}.parquet + manifest.json   one FeatureSet
    domains/<domain>.json                                              which sets a domain has

``<key>`` is :func:`feature_cache_key` (dataset, training edges, feature config), so every
(interactions, config) pair is computed once, whoever asks for it: the featurize job, the
pretraining workers, Tune trials or the evaluation. Remote roots are staged through a local
directory; writes are atomic (temp dir, then rename / copy).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import pyarrow.fs as pafs

from zsrec_ray.config import DomainSpec, FeatureConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.data.registry import load_split
from zsrec_ray.data.splits import feature_graph
from zsrec_ray.errors import DataError
from zsrec_ray.features.featureset import FeatureSet, config_hash
from zsrec_ray.features.featurizer import cached_featurize, feature_cache_key, interactions_hash, load_valid

MANIFEST_VERSION = 1

Featurizer = Callable[[Interactions, FeatureConfig], FeatureSet]


class FeatureStore:
    """Feature sets under ``root`` (local path or URI); ``featurizer()`` is a drop-in featurize function."""

    def __init__(self, root: str | Path, staging_dir: str | Path | None = None,
                 filesystem: pafs.FileSystem | None = None):
        root = str(root)
        if filesystem is not None:  # an explicit pyarrow filesystem; ``root`` is a path in it
            self.fs, self.root = filesystem, root.rstrip("/")
            self.local = isinstance(filesystem, pafs.LocalFileSystem)
        elif "://" in root:
            self.fs, path = pafs.FileSystem.from_uri(root)
            self.local = isinstance(self.fs, pafs.LocalFileSystem)
            self.root = path
        else:
            self.fs, self.local, self.root = pafs.LocalFileSystem(), True, str(Path(root).expanduser().resolve())
        self.uri = root
        self._staging = Path(staging_dir) if staging_dir else None

    # ------------------------------------------------------------------ feature sets
    def _set_path(self, key: str) -> str:
        return f"{self.root}/sets/{key}"

    def get_or_compute(self, graph: Interactions, config: FeatureConfig, compute: Featurizer | None = None,
                       force: bool = False) -> FeatureSet:
        """The FeatureSet of ``graph`` under ``config``: loaded when stored (unless ``force``), else
        computed with ``compute`` (default :func:`featurize`) and stored."""
        key = feature_cache_key(graph.name, interactions_hash(graph), config)
        if self.local:
            return cached_featurize(graph, config, f"{self.root}/sets", key, compute=compute, force=force)
        want_cfg, want_data = config_hash(config), interactions_hash(graph)
        stage = self._stage_dir() / key
        if not force and not stage.exists() and self.fs.get_file_info(self._set_path(key)).type == pafs.FileType.Directory:
            stage.mkdir(parents=True)
            pafs.copy_files(self._set_path(key), str(stage), source_filesystem=self.fs,
                            destination_filesystem=pafs.LocalFileSystem())
        found = None if force else load_valid(stage, want_cfg, want_data)
        if found is not None:
            return found
        shutil.rmtree(stage, ignore_errors=True)
        fs = cached_featurize(graph, config, stage.parent, key, compute=compute, force=True)
        self.fs.create_dir(self._set_path(key), recursive=True)
        pafs.copy_files(str(stage), self._set_path(key), source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self.fs)
        return fs

    def featurizer(self, compute: Featurizer | None = None) -> Featurizer:
        """A ``(interactions, config) -> FeatureSet`` function backed by this store."""
        return lambda graph, config: self.get_or_compute(graph, config, compute)

    def _stage_dir(self) -> Path:
        if self._staging is None:
            self._staging = Path(tempfile.mkdtemp(prefix="zsrec-store-"))
        self._staging.mkdir(parents=True, exist_ok=True)
        return self._staging

    # ------------------------------------------------------------------ domain manifests
    def _manifest_path(self, domain: str) -> str:
        return f"{self.root}/domains/{domain}.json"

    def write_manifest(self, domain: str, manifest: dict) -> None:
        self.fs.create_dir(f"{self.root}/domains", recursive=True)
        tmp = f"{self.root}/domains/.{domain}.json.tmp"
        with self.fs.open_output_stream(tmp) as f:
            f.write(json.dumps(manifest, indent=1, sort_keys=True, default=float).encode())
        self.fs.move(tmp, self._manifest_path(domain))

    def read_manifest(self, domain: str) -> dict | None:
        path = self._manifest_path(domain)
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as f:
            try:
                return json.loads(f.read().decode())
            except ValueError as e:
                raise DataError(f"feature store manifest is corrupt: {path} ({e})") from None

    def domains(self) -> list[str]:
        sel = pafs.FileSelector(f"{self.root}/domains", allow_not_found=True)
        return sorted(i.base_name.removesuffix(".json") for i in self.fs.get_file_info(sel)
                      if i.base_name.endswith(".json") and not i.base_name.startswith("."))


def domain_label(spec: DomainSpec) -> str:
    """The manifest name of a domain spec: its dataset name."""
    return spec.dataset


def featurize_domain(spec: DomainSpec, features: FeatureConfig, store: FeatureStore, graph_frac: float,
                     seed: int = 0, data_dir: str | Path | None = None, force: bool = False,
                     compute: Featurizer | None = None) -> dict:
    """Featurize one domain into ``store``: its full training split and, for ``graph_frac < 1``, the
    feature graph that pretraining uses. Skipped when the manifest says both exist with this
    config hash (``force`` recomputes). Returns the domain's manifest."""
    spec = spec.resolved()
    name = domain_label(spec)
    chash = config_hash(features)
    old = store.read_manifest(name)
    if old and not force and old.get("config_hash") == chash and old.get("graph_frac") == graph_frac \
            and old.get("seed") == seed and old.get("spec") == spec.model_dump():
        return {**old, "skipped": True}
    t0 = time.perf_counter()
    split = load_split(spec, data_dir)
    t_load = time.perf_counter() - t0
    graphs = {"full": split.train}
    if graph_frac < 1.0:
        graphs["graph"] = feature_graph(split.train, graph_frac, seed)[0]
    sets, timings = {}, {"load_s": round(t_load, 3)}
    for variant, graph in graphs.items():
        t1 = time.perf_counter()
        fs = store.get_or_compute(graph, features, compute=compute, force=force)
        timings[f"{variant}_s"] = round(time.perf_counter() - t1, 3)
        timings[f"{variant}_stages"] = fs.timings
        sets[variant] = {"key": feature_cache_key(graph.name, interactions_hash(graph), features),
                         "n_users": fs.n_users, "n_items": fs.n_items, "edges": int(graph.to_csr().nnz)}
        schema = fs.schema()
    manifest = {"version": MANIFEST_VERSION, "domain": name, "spec": spec.model_dump(), "config_hash": chash,
                "config": features.model_dump(), "graph_frac": graph_frac, "seed": seed, "schema": schema,
                "counts": {"users": split.n_users, "items": split.n_items, "train": len(split.train),
                           "valid": len(split.valid), "test": len(split.test)},
                "sets": sets, "timings": {**timings, "total_s": round(time.perf_counter() - t0, 3)},
                "skipped": False}
    store.write_manifest(name, manifest)
    return manifest
