"""The features of one domain: per-side matrices made of named blocks, with Parquet persistence."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zsrec_ray.config import FeatureConfig
from zsrec_ray.errors import DataError
from zsrec_ray.files import sha256_file

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
SIDES = ("user", "item")


def config_hash(config: FeatureConfig | dict) -> str:
    """First 16 hex digits of the sha256 of the config's canonical JSON."""
    d = config.model_dump() if isinstance(config, FeatureConfig) else config
    canon = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


@dataclass(eq=False)
class FeatureSet:
    """Node features of one domain.

    ``user``/``item`` are float32 matrices whose columns are the concatenated blocks listed in
    ``user_blocks``/``item_blocks`` as ``(name, size)``. ``user_emb``/``item_emb`` are the
    co-occurrence node embeddings (None when neither co-occurrence nor interaction is on).
    ``data_hash`` fingerprints the training interactions the features came from.
    """

    domain: str
    user: np.ndarray
    item: np.ndarray
    user_blocks: list[tuple[str, int]]
    item_blocks: list[tuple[str, int]]
    user_emb: np.ndarray | None
    item_emb: np.ndarray | None
    config: dict
    config_hash: str
    timings: dict[str, float] = field(default_factory=dict)
    data_hash: str | None = None

    def __post_init__(self) -> None:
        self.user_blocks = [(str(n), int(s)) for n, s in self.user_blocks]
        self.item_blocks = [(str(n), int(s)) for n, s in self.item_blocks]
        for side in SIDES:
            mat = np.ascontiguousarray(getattr(self, side), dtype=np.float32)
            setattr(self, side, mat)
            width = sum(s for _, s in self._blocks(side))
            if mat.ndim != 2 or mat.shape[1] != width:
                raise DataError(f"{self.domain}: {side} features have shape {mat.shape}, blocks need width {width}")
            emb = getattr(self, f"{side}_emb")
            if emb is not None:
                setattr(self, f"{side}_emb", np.ascontiguousarray(emb, dtype=np.float32))

    # ------------------------------------------------------------------ views
    @property
    def n_users(self) -> int:
        return self.user.shape[0]

    @property
    def n_items(self) -> int:
        return self.item.shape[0]

    def _blocks(self, side: str) -> list[tuple[str, int]]:
        if side not in SIDES:
            raise KeyError(f"side must be 'user' or 'item', not {side!r}")
        return self.user_blocks if side == "user" else self.item_blocks

    def offsets(self, side: str) -> dict[str, tuple[int, int]]:
        """``name -> (start, stop)`` column range of each block of ``side``."""
        out, start = {}, 0
        for name, size in self._blocks(side):
            out[name] = (start, start + size)
            start += size
        return out

    def block(self, side: str, name: str) -> np.ndarray:
        """The columns of block ``name`` of ``side`` (a view)."""
        offsets = self.offsets(side)
        if name not in offsets:
            raise KeyError(f"no {side} block {name!r}; blocks: {list(offsets)}")
        start, stop = offsets[name]
        return getattr(self, side)[:, start:stop]

    def schema(self) -> dict[str, Any]:
        """Layout a model depends on: ``{"user": [[name, size], ...], "item": [...]}`` (JSON-ready)."""
        return {side: [[n, s] for n, s in self._blocks(side)] for side in SIDES}

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write ``user.parquet``, ``item.parquet`` (and ``*_emb.parquet``) plus ``manifest.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = {}
        for name, mat in self._matrices().items():
            path = directory / f"{name}.parquet"
            _write_matrix(mat, path)
            files[path.name] = sha256_file(path)
        manifest = {
            "format_version": FORMAT_VERSION, "domain": self.domain, "schema": self.schema(),
            "config": self.config, "config_hash": self.config_hash, "data_hash": self.data_hash,
            "timings": self.timings, "n_users": self.n_users, "n_items": self.n_items,
            "emb_dim": None if self.user_emb is None else self.user_emb.shape[1], "files": files,
        }
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        return directory

    def _matrices(self) -> dict[str, np.ndarray]:
        out = {"user": self.user, "item": self.item}
        if self.user_emb is not None and self.item_emb is not None:
            out.update(user_emb=self.user_emb, item_emb=self.item_emb)
        return out

    @classmethod
    def load(cls, directory: str | Path) -> "FeatureSet":
        """Read a directory written by :meth:`save`; a missing or corrupt file raises DataError naming it."""
        directory = Path(directory)
        manifest_path = directory / MANIFEST
        try:
            m = json.loads(manifest_path.read_text())
            schema, files = m["schema"], m["files"]
            n = {"user": int(m["n_users"]), "item": int(m["n_items"])}
        except FileNotFoundError:
            raise DataError(f"feature set file missing: {manifest_path}") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(f"feature set manifest is corrupt: {manifest_path} ({e})") from None
        if m.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{manifest_path}: unsupported format_version {m.get('format_version')!r}")
        mats = {}
        for fname, digest in files.items():
            path = directory / fname
            if not path.is_file():
                raise DataError(f"feature set file missing: {path}")
            if sha256_file(path) != digest:
                raise DataError(f"feature set file is corrupt (checksum mismatch): {path}")
            mats[fname.removesuffix(".parquet")] = _read_matrix(path)
        for side in SIDES:
            if side not in mats:
                raise DataError(f"feature set file missing: {directory / (side + '.parquet')}")
            for key in (side, f"{side}_emb"):
                if key in mats and mats[key].shape[0] != n[side]:
                    raise DataError(f"{directory / (key + '.parquet')}: {mats[key].shape[0]} rows, "
                                    f"manifest says {n[side]}")
        try:
            return cls(domain=m["domain"], user=mats["user"], item=mats["item"],
                       user_blocks=[tuple(b) for b in schema["user"]],
                       item_blocks=[tuple(b) for b in schema["item"]],
                       user_emb=mats.get("user_emb"), item_emb=mats.get("item_emb"),
                       config=m["config"], config_hash=m["config_hash"],
                       timings=m.get("timings", {}), data_hash=m.get("data_hash"))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"feature set manifest is corrupt: {manifest_path} ({e})") from None


def _write_matrix(mat: np.ndarray, path: Path) -> None:
    """One float32 column per matrix column, named by its index."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({str(j): mat[:, j] for j in range(mat.shape[1])}) if mat.shape[1] else \
        pa.table({"_rows": np.zeros(mat.shape[0], dtype=np.int8)})
    pq.write_table(table, path)


def _read_matrix(path: Path) -> np.ndarray:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for damaged files
        raise DataError(f"feature set file is corrupt: {path} ({e})") from None
    if table.column_names == ["_rows"]:
        return np.zeros((table.num_rows, 0), dtype=np.float32)
    try:
        cols = [table.column(str(j)).to_numpy() for j in range(table.num_columns)]
    except (KeyError, ValueError) as e:
        raise DataError(f"feature set file is corrupt: {path} ({e})") from None
    return np.ascontiguousarray(np.stack(cols, axis=1), dtype=np.float32) if cols else \
        np.zeros((table.num_rows, 0), dtype=np.float32)
