"""Served domains: persistence under a storage dir, featurization of a version, the in-memory index.

Layout (``<storage>/domains/<name>/``)::

    meta.json                        status, generation, current (serving) version, pending version,
                                     counts, errors
    v<N>.<gen>/interactions.parquet  every interaction of version N (user, item as strings)
    v<N>.<gen>/features/             the FeatureSet of version N (Parquet + manifest)

A version is written in full before it is acknowledged, and becomes the serving one only once its
features are stored (``meta.json`` is replaced atomically), so an append never interrupts
serving and a restart finds every acknowledged version on disk. Only the serving and the pending
version are kept. Every registration gets a new generation id: a featurization started for a
deleted registration can never publish into a newer one of the same name. Read-modify-write
of a domain's meta happens under a per-name file lock (replicas and the featurizer are separate
processes). Plain Python; no Ray.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from zsrec_ray.data.interactions import Interactions
from zsrec_ray.errors import ConfigError, DataError
from zsrec_ray.features.featureset import FeatureSet
from zsrec_ray.features.featurizer import featurize
from zsrec_ray.features.pairs import load_neighbours, neighbour_lists, save_neighbours
from zsrec_ray.files import atomic_dir, atomic_file
from zsrec_ray.models.checkpoint import Checkpoint
from zsrec_ray.models.pretrained import PretrainedRecommender

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
VERSION_DIR = re.compile(r"^v\d+(\.[0-9a-f]+)?$")


class DomainNotFound(KeyError):
    pass


class DomainConflict(ValueError):
    pass


def check_name(name: str) -> str:
    """Domain names become directory names: lower-case letters, digits, '-' and '_', 1-64 chars."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValueError(f"invalid domain name {name!r}: use 1-64 characters from a-z, 0-9, '-', '_', "
                         "starting with a letter or digit")
    return name


def clean_frame(df: pd.DataFrame, min_interactions: int, min_users: int, min_items: int) -> pd.DataFrame:
    """Ids as strings, duplicates dropped; raises DataError when the domain is below the minimum."""
    missing = [c for c in ("user", "item") if c not in df.columns]
    if missing:
        raise DataError(f"interactions need columns 'user' and 'item' (missing {missing})")
    df = df[["user", "item"]].dropna()
    df = pd.DataFrame({"user": df["user"].astype(str), "item": df["item"].astype(str)})
    df = df.drop_duplicates(ignore_index=True)
    n, nu, ni = len(df), df["user"].nunique(), df["item"].nunique()
    if n < min_interactions or nu < min_users or ni < min_items:
        raise DataError(f"domain too small: {n} distinct interactions, {nu} users, {ni} items; the minimum is "
                        f"{min_interactions} interactions, {min_users} users and {min_items} items")
    return df


class DomainStore:
    """Registered domains under ``root``; every write is atomic (temp file or dir, then rename)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve() / "domains"
        self.root.mkdir(parents=True, exist_ok=True)
        self._meta_cache: dict[str, tuple[tuple[int, int, int], dict]] = {}

    def domain_dir(self, name: str) -> Path:
        return self.root / check_name(name)

    @contextmanager
    def locked(self, name: str):
        """Exclusive access to ``name``'s meta across processes (the lock file lives outside the
        domain's directory, so a delete does not remove it)."""
        from filelock import FileLock

        with FileLock(str(self.root / f".{check_name(name)}.lock")):
            yield

    def version_dir(self, name: str, version: int, generation: str | None) -> Path:
        return self.domain_dir(name) / (f"v{version}.{generation}" if generation else f"v{version}")

    def meta(self, name: str) -> dict:
        """The domain's meta (a fresh dict). Parsed once per file version: every write replaces the
        file (new inode), so a stat tells whether another process changed it since."""
        path = self.domain_dir(name) / "meta.json"
        try:
            st = path.stat()
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            cached = self._meta_cache.get(name)
            if cached is None or cached[0] != key:
                cached = (key, json.loads(path.read_text()))
                self._meta_cache[name] = cached
        except FileNotFoundError:
            self._meta_cache.pop(name, None)
            raise DomainNotFound(name) from None
        return copy.deepcopy(cached[1])

    def write_meta(self, name: str, meta: dict) -> None:
        d = self.domain_dir(name)
        if not d.is_dir():  # deleted meanwhile: do not bring it back
            raise FileNotFoundError(f"domain directory {d} does not exist")
        with atomic_file(d / "meta.json") as tmp:
            tmp.write_text(json.dumps({**meta, "updated": time.time()}, indent=1))

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / "meta.json").is_file())

    def _write_version(self, name: str, version: int, generation: str, df: pd.DataFrame) -> None:
        with atomic_dir(self.version_dir(name, version, generation)) as tmp:
            df.to_parquet(tmp / "interactions.parquet", index=False)

    def create(self, name: str, df: pd.DataFrame) -> dict:
        with self.locked(name):
            d = self.domain_dir(name)
            if (d / "meta.json").is_file():
                raise DomainConflict(f"domain {name!r} already exists; append interactions or delete it first")
            shutil.rmtree(d, ignore_errors=True)  # leftovers of an unacknowledged registration
            d.mkdir()
            generation = uuid.uuid4().hex[:12]
            self._write_version(name, 1, generation, df)
            meta = {"name": name, "status": "pending", "generation": generation, "current_version": None,
                    "pending_version": 1, "error": None, "created": time.time(), "counts": None}
            self.write_meta(name, meta)
            return meta

    def append(self, name: str, df: pd.DataFrame) -> dict:
        with self.locked(name):
            meta = self.meta(name)
            base = meta["pending_version"] or meta["current_version"]
            if base is None:
                raise DomainConflict(f"domain {name!r} failed to featurize ({meta['error']}); delete and register "
                                     "it again")
            gen = meta.get("generation")
            old = self.interactions(name, base, gen)
            merged = pd.concat([old, df], ignore_index=True).drop_duplicates(ignore_index=True)
            version = max(base, meta["current_version"] or 0) + 1
            self._write_version(name, version, gen, merged)
            meta.update(pending_version=version, error=None)
            self.write_meta(name, meta)
            self.prune(name, meta)
            return meta

    def prune(self, name: str, meta: dict) -> list[str]:
        """Remove every version directory but the serving and the pending one; returns the removed."""
        gen = meta.get("generation")
        keep = {self.version_dir(name, v, gen).name for v in (meta.get("current_version"), meta.get("pending_version"))
                if v is not None}
        removed = []
        for p in self.domain_dir(name).iterdir():
            if VERSION_DIR.fullmatch(p.name) and p.name not in keep:
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
        return removed

    def delete(self, name: str) -> None:
        with self.locked(name):
            d = self.domain_dir(name)
            if not (d / "meta.json").is_file():
                raise DomainNotFound(name)
            trash = self.root / f".deleted-{name}-{time.time_ns()}"
            d.rename(trash)  # atomic: the name is free at once
        shutil.rmtree(trash, ignore_errors=True)

    def interactions(self, name: str, version: int, generation: str | None) -> pd.DataFrame:
        return pd.read_parquet(self.version_dir(name, version, generation) / "interactions.parquet")

    def features_dir(self, name: str, version: int, generation: str | None) -> Path:
        return self.version_dir(name, version, generation) / "features"


def serving_version_dir(storage_dir: str | Path, name: str) -> Path:
    """The directory of the version domain ``name`` serves from ``storage_dir`` (a Serve
    ``storage_dir``): its ``interactions.parquet`` and ``features/`` (what ``zsrec recommend
    --store`` ranks from). A ConfigError names what is missing."""
    if not (Path(storage_dir).expanduser() / "domains").is_dir():
        raise ConfigError(f"{storage_dir} is not a Serve storage directory (no domains/ in it)")
    store = DomainStore(storage_dir)
    try:
        meta = store.meta(name)
    except DomainNotFound:
        raise ConfigError(f"no domain {name!r} is registered in {storage_dir}") from None
    if meta.get("current_version") is None:
        raise ConfigError(f"domain {name!r} in {storage_dir} has no ready version yet (status: {meta.get('status')})")
    return store.version_dir(name, meta["current_version"], meta.get("generation"))


def featurize_version(store: DomainStore, name: str, version: int, generation: str | None,
                      checkpoint: Checkpoint) -> dict:
    """Compute and store the features of one version of one registration (``generation``), then
    make it the serving version, or record why it failed. A version that was superseded, or whose
    registration was deleted (even if the name was registered again), changes nothing. Returns the
    domain's meta ({} when the domain is gone)."""

    def current() -> dict | None:
        """The meta when this task is still the domain's pending work, else None."""
        try:
            meta = store.meta(name)
        except DomainNotFound:
            return None
        return meta if meta.get("generation") == generation and meta.get("pending_version") == version else None

    if current() is None:
        return _meta_or_empty(store, name)
    t0 = time.perf_counter()
    try:
        data = Interactions.from_frame(store.interactions(name, version, generation), name)
        fs = featurize(data, checkpoint.features)
        checkpoint.check_schema(fs.schema())
        lists = neighbour_lists(data, checkpoint.pairs) if checkpoint.pair_names else {}
        vdir = store.version_dir(name, version, generation)
        if not vdir.is_dir():  # deleted or superseded meanwhile: do not recreate it
            return _meta_or_empty(store, name)
        with atomic_dir(vdir / "features") as tmp:
            fs.save(tmp)
            save_neighbours(lists, checkpoint.pairs, tmp)
    except Exception as e:  # recorded in meta, reported by GET /v1/domains/{name}
        with store.locked(name):
            meta = current()
            if meta is None:
                return _drop_stale(store, name, version, generation)
            if isinstance(e, DataError):  # about the data: the caller may read it
                reason = str(e)
            else:  # anything else stays in the server log (it may name server paths)
                log.exception("featurizing %s version %s failed", name, version)
                reason = "featurization failed; the server log has the details"
            meta.update(pending_version=None, error=f"version {version}: {reason}")
            if meta["current_version"] is None:
                meta["status"] = "failed"
            store.write_meta(name, meta)
            return meta
    with store.locked(name):
        meta = current()
        if meta is None:  # superseded by a later append, or the registration was deleted
            return _drop_stale(store, name, version, generation)
        meta.update(status="ready", current_version=version, pending_version=None, error=None,
                    counts={"users": data.n_users, "items": data.n_items, "interactions": len(data)},
                    featurize_s=round(time.perf_counter() - t0, 3))
        store.write_meta(name, meta)
        store.prune(name, meta)
        return meta


def _drop_stale(store: DomainStore, name: str, version: int, generation: str | None) -> dict:
    """For a task that may no longer publish, under the name's lock: remove its version directory
    unless the domain's meta still uses it (a prune or delete may have run between the check before
    writing the features and the write, which recreates the directory), and the domain directory
    if the registration is gone and nothing else is left in it. Returns the meta ({} when gone)."""
    now = _meta_or_empty(store, name)
    if now.get("generation") != generation or version not in (now.get("current_version"),
                                                              now.get("pending_version")):
        shutil.rmtree(store.version_dir(name, version, generation), ignore_errors=True)
    if not now:
        try:
            store.domain_dir(name).rmdir()
        except OSError:  # absent, or not empty
            pass
    return now


def _meta_or_empty(store: DomainStore, name: str) -> dict:
    try:
        return store.meta(name)
    except DomainNotFound:
        return {}


@dataclass
class DomainIndex:
    """One served domain version in memory: the fitted pretrained recommender and the id maps.

    Scoring and ranking go through :class:`~zsrec_ray.models.pretrained.PretrainedRecommender`
    (memory-bounded chunks); this class only translates external ids and assembles responses.
    """

    name: str
    version: int
    generation: str | None
    model: PretrainedRecommender
    user_index: dict[str, int]
    item_ids: np.ndarray
    item_index: dict[str, int]

    @classmethod
    def load(cls, store: DomainStore, name: str, version: int, generation: str | None,
             checkpoint: Checkpoint, candidates: int | None = None) -> "DomainIndex":
        data = Interactions.from_frame(store.interactions(name, version, generation), name)
        fdir = store.features_dir(name, version, generation)
        model = PretrainedRecommender.from_features(checkpoint, data, FeatureSet.load(fdir), candidates=candidates,
                                                    neighbours=load_neighbours(fdir, checkpoint.pairs))
        return cls(name, version, generation, model, {str(u): i for i, u in enumerate(data.user_ids)},
                   np.asarray(data.item_ids).astype(str), {str(x): i for i, x in enumerate(data.item_ids)})

    def recommend(self, users: list[str], k: int, exclude_seen: bool) -> list[dict]:
        """Top ``k`` per user; users unknown to the domain are ranked as a user with no history
        (flagged ``cold_start``) and have nothing to exclude."""
        rows = np.array([self.user_index.get(u, -1) for u in users], dtype=np.int64)
        known = np.flatnonzero(rows >= 0)
        top: list = [None] * len(users)
        if len(known):
            exclude = self.model.train_.to_csr()[rows[known]] if exclude_seen else None
            idx, val = self.model.recommend(rows[known], k, exclude)
            for r, i, v in zip(known, idx, val):
                top[r] = (i, v)
        if len(known) < len(users):
            cold = self.model.cold_recommend(k)
            for r in np.flatnonzero(rows < 0):
                top[r] = cold
        return [{"user": u, "items": [{"item": self.item_ids[j], "score": float(s)}
                                      for j, s in zip(idx.tolist(), val.tolist()) if np.isfinite(s)],
                 "cold_start": bool(rows[r] < 0), "domain_version": self.version}
                for r, (u, (idx, val)) in enumerate(zip(users, top))]

    def score_items(self, user: str, items: list[str]) -> dict:
        unknown = [i for i in items if i not in self.item_index]
        if unknown:
            raise KeyError(f"unknown item(s) in domain {self.name!r}: {unknown[:5]}")
        row = self.user_index.get(user)
        scores = self.model.cold_scores() if row is None else self.model.score(np.array([row]))[0]
        cols = [self.item_index[i] for i in items]
        return {"user": user, "scores": [{"item": i, "score": float(scores[c])} for i, c in zip(items, cols)],
                "cold_start": row is None, "domain_version": self.version}
