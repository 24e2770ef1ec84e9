"""File helpers shared by every layer: hashing, atomic writes, JSON output and Markdown tables.

Bottom layer: only the standard library (and ``zsrec_ray.errors``) may be imported here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20
_TRIES = 100


def absolute_uri(path: str) -> str:
    """A URI (``scheme://...``) as is; a local path made absolute, as workers in other directories
    or on other nodes need it."""
    return path if "://" in path else str(Path(path).expanduser().resolve())


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _fresh_sibling(path: Path, make) -> Path:
    """A new hidden entry next to ``path`` (parent created), made by ``make(tmp)``, which raises
    FileExistsError when the name is taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(_TRIES):
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            make(tmp)
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {path}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary file next to ``path`` (parent created) to write; on normal exit it
    replaces ``path`` (``os.replace``), on an exception it is removed and the exception propagates.

    The temporary file gets the permissions a plain ``open(path, "w")`` would (the umask applies).
    """
    path = Path(path)
    tmp = _fresh_sibling(path, lambda t: os.close(os.open(t, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh empty directory next to ``path`` (parent created) to fill; on normal exit any
    existing ``path`` is removed and the directory renamed to ``path``; on an exception (including
    a failed rename) the temporary directory is removed and the exception propagates."""
    path = Path(path)
    tmp = _fresh_sibling(path, Path.mkdir)
    try:
        yield tmp
        if path.exists() or path.is_symlink():
            _remove(path)
        tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON (non-JSON numbers through ``float``) atomically; returns the path."""
    p = Path(path)
    with atomic_file(p) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=float) + "\n")
    return p


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def format_table(rows: Sequence[dict], columns: Iterable[str] | None = None) -> str:
    """A Markdown table of ``rows`` (missing cells left blank)."""
    if not rows:
        return "(no rows)"
    cols = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cols), sep, *(line(r) for r in cells)])
