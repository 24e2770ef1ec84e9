"""Download a registered dataset's public source files into the cache, verifying their sha256."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import requests
from tqdm import tqdm

from zsrec_ray.config import default_cache_dir
from zsrec_ray.data.registry import RemoteFile, get_dataset
from zsrec_ray.errors import DataError
from zsrec_ray.files import atomic_file, sha256_file

_CHUNK = 1 << 16
_TIMEOUT_S = 60


def fetch_dataset(name: str, cache_dir: str | Path | None = None, base_url: str | None = None,
                  progress: bool = True) -> Path:
    """Download the source files of dataset ``name`` into ``cache_dir/name`` and return that directory.

    Files already present with the expected sha256 are skipped, others downloaded again.
    ``base_url`` replaces the source host: each file is then fetched from ``base_url/<filename>``.
    """
    info = get_dataset(name)
    dest = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    dest = dest / info.name
    dest.mkdir(parents=True, exist_ok=True)
    for remote in info.files:
        target = dest / remote.filename
        if target.is_file():
            if sha256_file(target) == remote.sha256:
                continue
            target.unlink()
        url = remote.url if base_url is None else f"{base_url.rstrip('/')}/{remote.filename}"
        _download(url, target, remote, progress)
    return dest


def _download(url: str, target: Path, remote: RemoteFile, progress: bool) -> None:
    """Stream ``url`` to a temporary file next to ``target``, check its hash, then rename it into place."""
    try:
        with atomic_file(target) as tmp:
            h = hashlib.sha256()
            with open(tmp, "wb") as out, requests.get(url, stream=True, timeout=_TIMEOUT_S) as resp:
                if resp.status_code != 200:
                    raise DataError(f"{url}: download of {remote.filename} failed: "
                                    f"HTTP {resp.status_code} {resp.reason}")
                total = int(resp.headers.get("content-length", 0)) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=remote.filename, file=sys.stderr,
                          disable=not progress, leave=False) as bar:
                    for chunk in resp.iter_content(_CHUNK):
                        out.write(chunk)
                        h.update(chunk)
                        bar.update(len(chunk))
            actual = h.hexdigest()
            if actual != remote.sha256:
                raise DataError(f"{url}: sha256 mismatch for {remote.filename}: expected {remote.sha256}, "
                                f"got {actual}; the download was discarded")
    except requests.RequestException as e:
        raise DataError(f"{url}: download of {remote.filename} failed: {e}") from None
