"""The registered real datasets: where their files live, how to read them, where they come from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import pandas as pd

from zsrec_ray.config import (
    FILE_SUFFIXES,
    Domain,
    DomainSpec,
    ZeroShotConfig,
    default_cache_dir,
    default_data_dir,
    domain_label,
    is_path_like,
)
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.data.loaders import (
    MissingDataFile,
    load_epinions_mat,
    load_lastfm,
    load_lightgcn,
    load_ratings_tsv,
    load_recbole_inter,
    load_sequences,
    load_table,
    resolve_file,
)
from zsrec_ray.data.preprocess import preprocess
from zsrec_ray.data.splits import Split, make_split
from zsrec_ray.errors import ConfigError, DataError

Feedback = Literal["explicit", "implicit", "sequence", "play_count"]


@dataclass(frozen=True)
class RemoteFile:
    """A public source file; ``sha256`` is that of the file as stored (uncompressed)."""

    filename: str
    url: str
    sha256: str


@dataclass(frozen=True)
class DatasetInfo:
    """One registered dataset. ``loader`` reads the raw frame from the dataset's directory."""

    name: str
    subdir: str
    loader: Callable[[Path], pd.DataFrame]
    description: str
    feedback: Feedback
    default_split: str
    has_given_split: bool
    files: tuple[RemoteFile, ...]


_DOUBAN_MAT = "training_test_dataset.mat"
#: Source repositories and commits (see the datasets' MANIFEST.md).
_S3REC = ("aHuiWang/CIKM2020-S3Rec", "49a890dcb516c9ed3126564495234ea74d5cd566")
_RECZOO = ("reczoo/RecZoo", "fd2379d3b5df99d23513a8c423c083d27a45126d")
_KGCL = ("yuh-yang/KGCL-SIGIR22", "89c8d062e1fd100132bee7745131fc67b808467d")


def _github(repo: str, commit: str, path: str, sha256: str) -> RemoteFile:
    return RemoteFile(path.rsplit("/", 1)[-1], f"https://raw.githubusercontent.com/{repo}/{commit}/{path}", sha256)


def _file_in(reader: Callable[[Path], pd.DataFrame], filename: str, directory: Path) -> pd.DataFrame:
    return reader(Path(directory) / filename)


def _ratings_tsv_or_mat(directory: Path) -> pd.DataFrame:
    """Epinions: the converted ``ratings.tsv(.gz)``, else ``rating.mat`` inside the original ``epinions.zip``."""
    try:
        return load_ratings_tsv(Path(directory) / "ratings.tsv")
    except MissingDataFile as tsv_missing:
        if not (Path(directory) / "epinions.zip").is_file():
            raise MissingDataFile(f"{tsv_missing}, or epinions.zip") from None
    return load_epinions_mat(Path(directory) / "epinions.zip")


def _douban(directory: Path) -> pd.DataFrame:
    """Douban: the converted ``ratings.tsv(.gz)``; the original HDF5 ``.mat`` cannot be read without h5py."""
    directory = Path(directory)
    try:
        resolve_file(directory / "ratings.tsv")
    except MissingDataFile:
        if (directory / _DOUBAN_MAT).is_file():
            raise DataError(
                f"{directory}: only {_DOUBAN_MAT} is present; it is MATLAB v7.3 (HDF5) and reading it needs h5py, "
                f"which is not installed. Put ratings.tsv.gz (columns user_idx item_idx rating split) there.") from None
        raise
    return load_ratings_tsv(directory / "ratings.tsv")


_DATASETS = (
    DatasetInfo(
        "epinions", "epinions", _ratings_tsv_or_mat,
        "Epinions product reviews (ASU/Tang et al.), 27 categories, unfiltered", "explicit", "random", False,
        (_github("yushundong/Graph-Mining-Fairness-Data", "86a17feb5bcfe325c662284d7ac6450cea322755",
                 "epinions/epinions.zip", "7eb45830d7cbae511913ed20e82ab4f56760a5e54380dbde7b9e3f9439b53b9a"),)),
    DatasetInfo(
        "yelp", "yelp", partial(_file_in, load_sequences, "Yelp.txt"),
        "Yelp 2019 businesses (S3-Rec 5-core), time-ordered sequences", "sequence", "random", False,
        (_github(*_S3REC, "data/Yelp.txt", "724b219106b81dd2349027da997334ddb6da9fe2f152ad6e0d97a93170f7caed"),)),
    DatasetInfo(
        "ml-1m", "ml-1m", load_lightgcn,
        "MovieLens-1M (RecZoo/BARS Movielens1M_m1, from LCFN), train/test given", "implicit", "random", True,
        (_github(*_RECZOO, "data/Movielens1M_m1/train.txt",
                 "31fe589506162c76c90e87ddd017642f73655a3f959bd70deec8dda142608f4e"),
         _github(*_RECZOO, "data/Movielens1M_m1/test.txt",
                 "c8b4f275ea29fdb5560f0d9014d85a3865743f3089dca0259c79fee30dcdbdcd"))),
    DatasetInfo(
        "douban-movie", "douban-movie", _douban,
        "Douban movies, Monti et al. 3000x3000 subset, train/test given", "explicit", "random", True,
        (_github("fmonti/mgcnn", "75843411c72c1a81c9c086d21cda4ec98f1d9226", f"Data/douban/{_DOUBAN_MAT}",
                 "1f4476321cbfe0f606e7e35d0695ca15447a1b0b2c811df130109b6cb9a067ae"),)),
    DatasetInfo(
        "amazon-sports", "amazon-sports", partial(_file_in, load_sequences, "Sports_and_Outdoors.txt"),
        "Amazon Sports & Outdoors (S3-Rec 5-core), time-ordered sequences", "sequence", "random", False,
        (_github(*_S3REC, "data/Sports_and_Outdoors.txt",
                 "2a095e0648872beb9982408958290f5d655db5be2911c3756b5446de9f0b8de2"),)),
    DatasetInfo(
        "lastfm", "lastfm", partial(_file_in, load_lastfm, "user_artists.dat"),
        "Last.fm hetrec2011-2k user-artist play counts", "play_count", "random", False,
        (_github("Coder-Yu/QRec", "17f681800dfab9015e64eef51725277ac037c573", "dataset/lastfm-2k/user_artists.dat",
                 "254272fa721c3935e8be286d28c051b206844307128698ab4eaa41d483379416"),)),
    DatasetInfo(
        "ml-100k", "ml-100k", partial(_file_in, load_recbole_inter, "ml-100k.inter"),
        "MovieLens-100K (RecBole atomic file), ratings with timestamps", "explicit", "random", False,
        (_github("RUCAIBox/RecBole", "v1.2.1", "recbole/dataset_example/ml-100k/ml-100k.inter",
                 "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"),)),
    DatasetInfo(
        "amazon-book", "amazon-book", load_lightgcn,
        "Amazon-Book (KGAT/KGCL version), train/test given", "implicit", "random", True,
        (_github(*_KGCL, "data/amazon-book/train.txt",
                 "d94dde4b0004eba011fd26a812723d6427a23a03f42ce3e9ed92deef77861e02"),
         _github(*_KGCL, "data/amazon-book/test.txt",
                 "3d9f172ae74b59bd1050227ee2274b758961ac25a7d5e346e6b81e7c84228bb0"))),
)
_REGISTRY = {d.name: d for d in _DATASETS}


def list_datasets() -> list[str]:
    """Names of the registered datasets."""
    return list(_REGISTRY)


def get_dataset(name: str) -> DatasetInfo:
    """The registered dataset ``name``; an unknown name raises listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(_REGISTRY)}") from None


def load_raw(name: str, data_dir: str | Path | None = None) -> pd.DataFrame:
    """Raw frame of a registered dataset from ``data_dir/<subdir>``, else from ``default_cache_dir()/<name>``."""
    info = get_dataset(name)
    base = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    problems = []
    for directory in (base / info.subdir, default_cache_dir() / info.name):
        try:
            return info.loader(directory)
        except MissingDataFile as e:
            problems.append(str(e))
    raise DataError(f"dataset {name!r} not found:\n  " + "\n  ".join(problems)
                    + f"\nSet the data directory, or download it with `zsrec data fetch {name}`.")


def _raw_frame(spec: DomainSpec, data_dir: str | Path | None) -> pd.DataFrame:
    fmt = spec.file_format
    if fmt is None:
        if spec.columns is not None:
            raise ConfigError(f"{spec.dataset}: 'columns' only applies together with 'path'")
        if is_path_like(str(spec.dataset)) or spec.dataset not in _REGISTRY:
            raise DataError(f"unknown dataset {spec.dataset!r}; known: {', '.join(_REGISTRY)}. A file domain is a "
                            f"path (containing '/' or ending in {', '.join(FILE_SUFFIXES)})")
        return load_raw(spec.dataset, data_dir)
    path = Path(str(spec.path)).expanduser()
    if not path.exists() and not path.with_name(path.name + ".gz").exists():
        raise MissingDataFile(f"{path}: no such file or directory")
    if fmt != "table" and spec.columns is not None:
        raise ConfigError(f"{path}: 'columns' applies to tables (CSV/TSV/Parquet), not {fmt} files")
    if fmt == "lightgcn":
        if not path.is_dir():
            raise MissingDataFile(f"{path}: a LightGCN-style domain is a directory holding train.txt and test.txt")
        return load_lightgcn(path)
    if fmt == "recbole":
        return load_recbole_inter(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory; a table domain is a CSV/TSV/Parquet file (a directory is read as "
                        f"LightGCN-style train.txt/test.txt)")
    return load_table(path, spec.columns)


def load_interactions(spec: DomainSpec, data_dir: str | Path | None = None) -> Interactions:
    """Load a domain (registered dataset, or the file at ``spec.path``) and preprocess it."""
    data = Interactions.from_frame(_raw_frame(spec, data_dir), name=str(spec.dataset))
    pre = spec.resolved().preprocess
    try:
        return preprocess(data, k=pre.k_core, min_rating=pre.min_rating)
    except DataError as e:
        if spec.path is None:
            raise
        raise DataError(f"{spec.path}: {e}") from None


def load_split(spec: DomainSpec, data_dir: str | Path | None = None) -> Split:
    """:func:`load_interactions`, then the split of ``spec.split`` (``given`` uses the dataset's own labels)."""
    s = spec.resolved().split
    return make_split(load_interactions(spec, data_dir), s.kind, seed=s.seed,
                      valid_frac=s.valid_frac, test_frac=s.test_frac)


def domain_split(cfg: ZeroShotConfig, domain: Domain) -> Split:
    """The split of ``domain`` (a dataset name or a DomainSpec) under ``cfg``'s preprocessing and split."""
    return load_split(cfg.domain_spec(domain), cfg.resolved_data_dir())


def load_domains(cfg: ZeroShotConfig, domains: list[Domain]) -> dict[str, Split]:
    """Load and split every domain before any work on them starts; one DataError lists every
    domain that cannot be loaded (missing, unparsable, wrong columns, empty after the k-core)."""
    splits, problems = {}, []
    for d in domains:
        label = domain_label(d)
        if label in splits:
            continue
        try:
            splits[label] = domain_split(cfg, d)
        except (DataError, ConfigError) as e:
            problems.append(str(e))
    if problems:
        raise DataError("\n".join(problems) if len(problems) == 1 else
                        f"{len(problems)} domains cannot be loaded:\n  " + "\n  ".join(problems))
    return splits
