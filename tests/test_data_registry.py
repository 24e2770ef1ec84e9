"""The dataset registry against the real datasets under shared/datasets."""

import gzip
import hashlib
import re
import shutil

import numpy as np
import pytest

from zsrec_ray.config import DomainSpec, PreprocessConfig, SplitConfig, default_data_dir
from zsrec_ray.data import get_dataset, list_datasets, load_interactions, load_raw, load_split
from zsrec_ray.errors import ConfigError, DataError

DATA = default_data_dir()
NAMES = ["epinions", "yelp", "ml-1m", "douban-movie", "amazon-sports", "lastfm", "ml-100k", "amazon-book"]
SLOW = {"epinions", "amazon-book"}
#: Raw row counts (and train/test counts for pre-split datasets) from the datasets' MANIFEST.md.
ROWS = {"ml-100k": 100_000, "lastfm": 92_834, "ml-1m": 895_699, "amazon-book": 846_434, "douban-movie": 136_891,
        "epinions": 922_267, "yelp": 316_354, "amazon-sports": 296_337}
SPLITS = {"ml-1m": (796_244, 99_455), "amazon-book": (652_514, 193_920), "douban-movie": (123_202, 13_689)}
USERS = {"ml-100k": 943, "lastfm": 1_892, "ml-1m": 6_022, "amazon-book": 70_679, "douban-movie": 2_999,
         "epinions": 22_164, "yelp": 30_431, "amazon-sports": 35_598}

pytestmark = pytest.mark.skipif(not (DATA / "lastfm").is_dir(), reason=f"real datasets not found at {DATA}")


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "cache"))


def test_names_and_lookup():
    assert list_datasets() == NAMES
    info = get_dataset("ml-1m")
    assert info.has_given_split and info.default_split == "random"
    assert {n for n in NAMES if get_dataset(n).has_given_split} == {"ml-1m", "amazon-book", "douban-movie"}
    with pytest.raises(DataError, match="unknown dataset 'ml-10m'; known: epinions, yelp, ml-1m"):
        get_dataset("ml-10m")


def _local_sha256(name: str, filename: str) -> str:
    """sha256 of the shared copy of a source file, decompressing a .gz copy."""
    path = DATA / get_dataset(name).subdir / filename
    raw = path.read_bytes() if path.is_file() else gzip.decompress(path.with_name(filename + ".gz").read_bytes())
    return hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize("name", NAMES)
def test_remote_files_match_the_shared_copies(name):
    files = get_dataset(name).files
    assert files
    for f in files:
        assert re.fullmatch(r"https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[\w.]+/\S+", f.url)
        assert f.url.endswith("/" + f.filename)
        assert _local_sha256(name, f.filename) == f.sha256


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in NAMES])
def test_load_raw_matches_manifest_counts(name):
    df = load_raw(name)
    assert len(df) == ROWS[name]
    assert df["user"].nunique() == USERS[name]
    assert df["user"].dtype == np.int64 and df["item"].dtype == np.int64
    if name in SPLITS:
        counts = df["split"].value_counts()
        assert (counts["train"], counts["test"]) == SPLITS[name]
    else:
        assert "split" not in df.columns
    if get_dataset(name).feedback == "sequence":
        assert df["timestamp"].groupby(df["user"]).min().eq(0).all()


@pytest.mark.slow
def test_epinions_falls_back_to_the_mat_in_the_zip(tmp_path):
    (tmp_path / "epinions").mkdir()
    shutil.copy(DATA / "epinions" / "epinions.zip", tmp_path / "epinions")
    from_mat = load_raw("epinions", data_dir=tmp_path)
    assert from_mat.equals(load_raw("epinions"))


def test_douban_with_only_the_hdf5_mat_explains_what_is_needed(tmp_path):
    (tmp_path / "douban-movie").mkdir()
    (tmp_path / "douban-movie" / "training_test_dataset.mat").write_bytes(b"\x89HDF")
    with pytest.raises(DataError, match=r"needs h5py.*ratings\.tsv\.gz"):
        load_raw("douban-movie", data_dir=tmp_path)


def test_missing_dataset_names_both_places_and_fetch(tmp_path):
    with pytest.raises(DataError) as e:
        load_raw("yelp", data_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "yelp") in msg and str(tmp_path / "cache" / "yelp") in msg
    assert "Yelp.txt or Yelp.txt.gz" in msg and "zsrec data fetch yelp" in msg


def test_load_raw_falls_back_to_the_cache(tmp_path):
    (tmp_path / "cache" / "lastfm").mkdir(parents=True)
    shutil.copy(DATA / "lastfm" / "user_artists.dat.gz", tmp_path / "cache" / "lastfm")
    assert len(load_raw("lastfm", data_dir=tmp_path / "empty")) == ROWS["lastfm"]


def test_load_interactions_preprocesses():
    data = load_interactions(DomainSpec(dataset="ml-100k"))
    assert data.name == "ml-100k" and data.user_degree().min() >= 5 and data.item_degree().min() >= 5
    assert (data.n_users, len(data)) == (943, 99_287)
    pos = load_interactions(DomainSpec(dataset="ml-100k", preprocess=PreprocessConfig(k_core=1, min_rating=4)))
    assert len(pos) == 21_201 + 34_174 and pos.rating.min() == 4


def test_load_interactions_from_a_generic_file(tmp_path):
    rows = "\n".join(f"{u},{i},{(u + i) % 5 + 1}" for u in range(6) for i in range(6))
    (tmp_path / "d.csv").write_text("who,what,stars\n" + rows + "\n")
    spec = DomainSpec(dataset="mine", path=str(tmp_path / "d.csv"),
                      columns={"user": "who", "item": "what", "rating": "stars"})
    data = load_interactions(spec)
    assert (data.name, data.n_users, data.n_items, len(data)) == ("mine", 6, 6, 36)
    with pytest.raises(ConfigError, match="only applies together with 'path'"):
        load_interactions(DomainSpec(dataset="ml-100k", columns={"user": "u", "item": "i"}))
    with pytest.raises(DataError, match="unknown dataset 'mine'"):
        load_interactions(DomainSpec(dataset="mine"))


def test_load_split_random_and_given():
    rnd = load_split(DomainSpec(dataset="lastfm", split=SplitConfig(kind="random", seed=3)))
    total = len(rnd.train) + len(rnd.valid) + len(rnd.test)
    assert rnd.kind == "random" and total == 71_355 and 0.08 < len(rnd.test) / total < 0.12
    given = load_split(DomainSpec(dataset="douban-movie", split=SplitConfig(kind="given")))
    assert given.kind == "given" and set(given.test.split_label) == {"test"}
    assert set(given.train.split_label) == set(given.valid.split_label) == {"train"}
    assert len(given.test) == int((given.test.split_label == "test").sum()) > 13_000
    with pytest.raises(DataError, match="ships no split of its own"):
        load_split(DomainSpec(dataset="lastfm", split=SplitConfig(kind="given")))


def test_load_split_leave_last_out_on_a_sequence_dataset():
    s = load_split(DomainSpec(dataset="amazon-sports", split=SplitConfig(kind="leave_last_out")))
    assert len(s.test) == len(s.valid) == s.n_users == 35_598
