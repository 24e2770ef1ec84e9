"""Readers for the on-disk interaction formats, each returning a raw frame.

Every reader returns a ``pandas.DataFrame`` with columns ``user`` and ``item`` (external ids)
and, where the format has them, ``rating`` (float), ``timestamp`` (float; the position in the
user's sequence for time-ordered sequence files) and ``split`` (``train``/``test``). A file
``NAME`` is read from ``NAME`` or ``NAME.gz``, whichever exists. Malformed input raises
:class:`DataError` naming the file, the line or column, and the reason.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, TextIO

import numpy as np
import pandas as pd

from zsrec_ray.errors import DataError

#: Columns a loader may return besides ``user`` and ``item``.
OPTIONAL_COLUMNS = ("rating", "timestamp", "split")
SPLIT_LABELS = ("train", "valid", "test")


class MissingDataFile(DataError):
    """An expected data file or directory does not exist."""


# ---------------------------------------------------------------------------- files
def resolve_file(path: Path) -> Path:
    """``path`` itself or its ``.gz`` twin (or, for ``X.gz``, plain ``X``), whichever exists."""
    path = Path(path)
    plain = path.with_suffix("") if path.suffix == ".gz" else path
    for candidate in (plain, plain.with_name(plain.name + ".gz")):
        if candidate.is_file():
            return candidate
    raise MissingDataFile(f"{_describe_dir(plain.parent)}: expected {plain.name} or {plain.name}.gz")


def _describe_dir(directory: Path) -> str:
    if not directory.is_dir():
        return f"directory {directory} does not exist"
    found = sorted(p.name for p in directory.iterdir())
    shown = ", ".join(found[:10]) + (", ..." if len(found) > 10 else "")
    return f"file not found in {directory} (it holds: {shown or 'nothing'})"


def _open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) pairs, with I/O and decoding errors as DataError."""
    try:
        with _open_text(path) as f:
            yield from enumerate(f, 1)
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read: {e}") from None


def not_utf8(path: Path) -> DataError:
    """The error for a file that is not UTF-8 text, naming the first bad line and byte."""
    try:
        with (gzip.open(path, "rb") if Path(path).suffix == ".gz" else open(path, "rb")) as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    return DataError(f"{path}: not UTF-8 text (line {lineno}: byte {raw[e.start]:#04x})")
    except (OSError, EOFError) as e:
        return DataError(f"{path}: cannot read: {e}")
    return DataError(f"{path}: not UTF-8 text")


# ---------------------------------------------------------------------------- validation
def _int_ids(values: pd.Series, path: Path, col: str, where: Callable[[int], str]) -> np.ndarray:
    """Column as int64 ids; the first non-integer value raises with its position."""
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.to_numpy(dtype=np.int64)
    num = pd.to_numeric(values, errors="coerce")
    bad = (num.isna() | (num != num.round())).to_numpy(dtype=bool, na_value=True)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: {where(row)}: {col} id {_show(values.iloc[row])} is not an integer")
    return num.to_numpy().astype(np.int64)


def _plain(values: pd.Series) -> np.ndarray:
    """Ids as a plain numpy array: int64 for integer columns, else the values as read."""
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.to_numpy(dtype=np.int64)
    return values.to_numpy()


def _show(value: object) -> str:
    return "(empty)" if pd.isna(value) else repr(value)


def _finish(df: pd.DataFrame, path: Path, where: Callable[[int], str], int_ids: bool) -> pd.DataFrame:
    """Check and type the standard columns of ``df`` (row ``k`` of ``df`` is ``where(k)`` in the file)."""
    if df.empty:
        raise DataError(f"{path}: no data rows")
    df = df.reset_index(drop=True)
    out = {}
    for col in ("user", "item"):
        missing = df[col].isna().to_numpy()
        if missing.any():
            raise DataError(f"{path}: {where(int(np.flatnonzero(missing)[0]))}: {col} id is missing")
        out[col] = _int_ids(df[col], path, col, where) if int_ids else _plain(df[col])
    for col in ("rating", "timestamp"):
        if col in df.columns:
            num = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            bad = ~np.isfinite(num)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(f"{path}: {where(row)}: {col} {_show(df[col].iloc[row])} is not a number")
            out[col] = num
    if "split" in df.columns:
        bad = ~df["split"].isin(SPLIT_LABELS).to_numpy(dtype=bool)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: {where(row)}: split label {_show(df['split'].iloc[row])} "
                            f"is not one of {list(SPLIT_LABELS)}")
        out["split"] = df["split"].to_numpy(dtype=object).astype(str)
    return pd.DataFrame(out)


def _select(df: pd.DataFrame, path: Path, mapping: Mapping[str, str], required: tuple[str, ...]) -> pd.DataFrame:
    """Rename file columns to ours via ``mapping`` (ours -> file's); absent required ones raise."""
    missing = [mapping[c] for c in required if mapping[c] not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; expected {[mapping[c] for c in required]} "
            f"(plus optional {[v for k, v in mapping.items() if k not in required]}), found {list(df.columns)}")
    return df[[f for f in mapping.values() if f in df.columns]].rename(columns={v: k for k, v in mapping.items()})


def _read_delimited(path: Path | BinaryIO, sep: str, name: object = None) -> pd.DataFrame:
    """A delimited file (or binary buffer, called ``name`` in messages) with a header line; blank
    lines are dropped and index label ``k`` is line ``k + 2``."""
    name = path if name is None else name
    try:
        df = pd.read_csv(path, sep=sep, skip_blank_lines=False, compression="infer", dtype_backend="numpy_nullable")
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: file is empty") from None
    except pd.errors.ParserError as e:
        raise DataError(f"{name}: cannot parse: {e}") from None
    except UnicodeDecodeError as e:
        raise (not_utf8(path) if isinstance(path, Path) else DataError(f"{name}: not UTF-8 text ({e.reason})")) \
            from None
    except (OSError, EOFError) as e:
        raise DataError(f"{name}: cannot read: {e}") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df.dropna(how="all")


def _read_parquet(path: Path | BinaryIO, name: object = None) -> pd.DataFrame:
    """A Parquet file (or binary buffer, called ``name`` in messages), column names as strings."""
    import pyarrow as pa

    name = path if name is None else name
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError, TypeError, KeyError, NotImplementedError, pa.ArrowException) as e:
        # damaged content surfaces as ArrowInvalid (a ValueError), OSError or a pandas-metadata error
        raise DataError(f"{name}: cannot read Parquet: {e}") from None
    df.columns = [str(c) for c in df.columns]
    return df


def _line(row: int) -> str:
    return f"line {row + 2}"


def _row_finish(df: pd.DataFrame, path: Path, int_ids: bool) -> pd.DataFrame:
    """:func:`_finish` for frames from :func:`_read_delimited`, keeping original line numbers."""
    lines = df.index.to_numpy()
    return _finish(df, path, lambda k: _line(int(lines[k])), int_ids)


# ---------------------------------------------------------------------------- formats
def load_recbole_inter(path: Path) -> pd.DataFrame:
    """RecBole atomic ``.inter`` file: tab-separated, header fields ``name:type`` (e.g. ``user_id:token``)."""
    path = resolve_file(path)
    df = _read_delimited(path, "\t")
    df.columns = [c.split(":", 1)[0] for c in df.columns]
    df = _select(df, path, {"user": "user_id", "item": "item_id", "rating": "rating", "timestamp": "timestamp"},
                 ("user", "item"))
    return _row_finish(df, path, int_ids=False)


def _read_user_lines(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse ``user item item ...`` lines into (user, item, position-in-line) arrays.

    Blank and user-only lines are skipped.
    """
    users: list[int] = []
    lengths: list[int] = []
    items: list[int] = []
    for lineno, line in _iter_lines(path):
        parts = line.split()
        if len(parts) < 2:
            continue
        try:
            ids = [int(p) for p in parts]
        except ValueError:
            bad = next(p for p in parts if not _is_int(p))
            raise DataError(f"{path}: line {lineno}: id {bad!r} is not an integer") from None
        users.append(ids[0])
        lengths.append(len(ids) - 1)
        items.extend(ids[1:])
    if not items:
        raise DataError(f"{path}: no interactions (the file is empty or holds only user ids)")
    n = np.asarray(lengths, dtype=np.int64)
    starts = np.repeat(np.cumsum(n) - n, n)
    position = np.arange(len(items), dtype=np.int64) - starts
    return np.repeat(np.asarray(users, dtype=np.int64), n), np.asarray(items, dtype=np.int64), position


def _is_int(token: str) -> bool:
    try:
        int(token)
    except ValueError:
        return False
    return True


def load_lightgcn(directory: Path) -> pd.DataFrame:
    """LightGCN-style ``train.txt`` and ``test.txt`` in ``directory``: one ``user item item ...`` line per user."""
    directory = Path(directory)
    missing = []
    paths = {}
    for part in ("train", "test"):
        try:
            paths[part] = resolve_file(directory / f"{part}.txt")
        except MissingDataFile:
            missing.append(f"{part}.txt(.gz)")
    if missing:
        raise MissingDataFile(f"{_describe_dir(directory)}: expected train.txt(.gz) and test.txt(.gz), "
                              f"missing {' and '.join(missing)}")
    frames = []
    for part, path in paths.items():
        user, item, _ = _read_user_lines(path)
        frames.append(pd.DataFrame({"user": user, "item": item, "split": part}))
    return pd.concat(frames, ignore_index=True)


def load_sequences(path: Path) -> pd.DataFrame:
    """S3Rec-style time-ordered sequences ``user item item ...``; ``timestamp`` is the position 0, 1, 2, ..."""
    user, item, position = _read_user_lines(resolve_file(path))
    return pd.DataFrame({"user": user, "item": item, "timestamp": position.astype(np.float64)})


def load_lastfm(path: Path) -> pd.DataFrame:
    """Last.fm hetrec ``user_artists.dat``: tab-separated ``userID artistID weight``; rating = play count."""
    path = resolve_file(path)
    df = _select(_read_delimited(path, "\t"), path, {"user": "userID", "item": "artistID", "rating": "weight"},
                 ("user", "item", "rating"))
    return _row_finish(df, path, int_ids=True)


#: Accepted header names of ``ratings.tsv`` columns (epinions / douban-movie conventions).
_RATINGS_TSV_NAMES = {"user": ("user_id", "user_idx"), "item": ("item_id", "item_idx"),
                      "rating": ("rating",), "split": ("split",)}


def load_ratings_tsv(path: Path) -> pd.DataFrame:
    """``ratings.tsv``: tab-separated, header ``user_id item_id [category_id] rating`` or
    ``user_idx item_idx rating split``; integer ids, other columns ignored."""
    path = resolve_file(path)
    df = _read_delimited(path, "\t")
    mapping = {}
    for ours, names in _RATINGS_TSV_NAMES.items():
        found = [n for n in names if n in df.columns]
        mapping[ours] = found[0] if found else " or ".join(names)
    df = _select(df, path, mapping, ("user", "item", "rating"))
    return _row_finish(df, path, int_ids=True)


def load_epinions_mat(path: Path) -> pd.DataFrame:
    """Epinions ``rating.mat`` (MATLAB v5, rows ``[user, item, category, rating]``), plain or in ``epinions.zip``."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    path = Path(path)
    if not path.is_file():
        raise MissingDataFile(f"{_describe_dir(path.parent)}: expected {path.name}")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.namelist() if m.rsplit("/", 1)[-1] == "rating.mat"]
                if not members:
                    raise DataError(f"{path}: no rating.mat inside; members: {zf.namelist()}")
                raw = zf.read(members[0])
        else:
            raw = path.read_bytes()
        mat = loadmat(io.BytesIO(raw), variable_names=["rating"])
    except (OSError, ValueError, NotImplementedError, MatReadError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read rating.mat: {e}") from None
    rating = mat.get("rating")
    if rating is None or rating.ndim != 2 or rating.shape[1] < 4:
        shape = None if rating is None else rating.shape
        raise DataError(f"{path}: expected a variable 'rating' of shape (n, 4) [user, item, category, rating], "
                        f"found {shape}")
    if len(rating) == 0:
        raise DataError(f"{path}: no data rows")
    rating = rating.astype(np.int64)
    return pd.DataFrame({"user": rating[:, 0], "item": rating[:, 1], "rating": rating[:, 3].astype(np.float64)})


def _sep_for(path: Path) -> str:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    suffix = Path(name).suffix.lower()
    seps = {".csv": ",", ".tsv": "\t", ".txt": r"\s+"}
    if suffix not in seps:
        raise DataError(f"{path}: cannot infer the separator from the extension {suffix!r}; "
                        f"use .csv, .tsv, .txt or .parquet, or give the separator")
    return seps[suffix]


def load_table(path: Path, columns: Mapping[str, str] | None = None, sep: str | None = None) -> pd.DataFrame:
    """A CSV/TSV/TXT (optionally gzipped) or Parquet file with a header row.

    ``columns`` maps our names (``user``, ``item`` required; ``rating``, ``timestamp``, ``split``
    optional) to the file's column names, all of which must exist; by default the file's columns
    already carry our names (``user`` and ``item`` required, the others used when present).
    The separator is inferred from the extension (``.csv`` comma, ``.tsv`` tab, ``.txt`` whitespace)
    unless ``sep`` is given. Ids keep the type read from the file.
    """
    path = Path(path)
    allowed = ("user", "item") + OPTIONAL_COLUMNS
    required = tuple(columns) if columns is not None else ("user", "item")
    if columns is None:
        columns = {c: c for c in allowed}
    unknown = sorted(set(columns) - set(allowed))
    if unknown:
        raise DataError(f"{path}: unknown column mapping key(s) {unknown}; allowed: {list(allowed)}")
    absent = [c for c in ("user", "item") if c not in columns]
    if absent:
        raise DataError(f"{path}: the column mapping needs {absent}; got {dict(columns)}")
    if path.suffix.lower() in (".parquet", ".pq"):
        if not path.is_file():
            raise MissingDataFile(f"{_describe_dir(path.parent)}: expected {path.name}")
        df = _select(_read_parquet(path), path, columns, required)
        return _finish(df, path, lambda k: f"row {k + 1}", int_ids=False)
    path = resolve_file(path)
    df = _read_delimited(path, sep if sep is not None else _sep_for(path))
    return _row_finish(_select(df, path, columns, required), path, int_ids=False)


#: Upload format -> separator (None: Parquet).
_UPLOAD_SEPS = {"csv": ",", "tsv": "\t", "parquet": None}


def read_upload(body: bytes, fmt: str) -> pd.DataFrame:
    """The raw frame of an uploaded ``csv``, ``tsv`` or ``parquet`` body (header row / named
    columns); empty or unparsable content raises DataError."""
    if fmt not in _UPLOAD_SEPS:
        raise DataError(f"unsupported upload format {fmt!r}; use one of {list(_UPLOAD_SEPS)}")
    name = f"uploaded {fmt.upper()}"
    if not body:
        raise DataError(f"{name}: the body is empty")
    sep = _UPLOAD_SEPS[fmt]
    if sep is None:
        return _read_parquet(io.BytesIO(body), name)
    return _read_delimited(io.BytesIO(body), sep, name)
