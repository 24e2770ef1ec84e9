"""FeatureSet: blocks, schema, Parquet save/load, corruption errors, and the featurize cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import planted_interactions
from zsrec_ray.config import FeatureConfig, SpectralConfig
from zsrec_ray.errors import DataError
from zsrec_ray.features import FeatureSet, cached_featurize, config_hash, feature_cache_key, featurize

import zsrec_ray.features.featurizer as featurize_mod

CFG = FeatureConfig(spectral=SpectralConfig(dim=8), node_clusters=8, edge_clusters=8, cluster_bins=3)


@pytest.fixture(scope="module")
def domain():
    return planted_interactions(n_users=90, n_items=40, n_groups=3, per_user=8, name="small")


@pytest.fixture(scope="module")
def fs(domain) -> FeatureSet:
    return featurize(domain, CFG)


def assert_equal(a: FeatureSet, b: FeatureSet) -> None:
    assert (a.domain, a.schema(), a.config, a.config_hash, a.timings, a.data_hash) == \
        (b.domain, b.schema(), b.config, b.config_hash, b.timings, b.data_hash)
    for name in ("user", "item", "user_emb", "item_emb"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None)
        if x is not None:
            assert y.dtype == np.float32
            np.testing.assert_array_equal(x, y)


def test_blocks_and_schema(fs):
    assert fs.schema() == json.loads(json.dumps(fs.schema()))
    assert fs.offsets("item")["mainstream"] == (10, 20)
    np.testing.assert_array_equal(fs.block("item", "cooc_size"), fs.item[:, 20:23])
    with pytest.raises(KeyError):
        fs.block("user", "nope")
    with pytest.raises(KeyError):
        fs.block("users", "activity")
    with pytest.raises(DataError):
        FeatureSet("x", np.zeros((2, 3)), np.zeros((2, 2)), [("a", 2)], [("a", 2)], None, None, {}, "h")


def test_config_hash():
    assert len(config_hash(CFG)) == 16
    assert config_hash(CFG) == config_hash(CFG.model_dump())
    assert config_hash(CFG) != config_hash(CFG.model_copy(update={"cluster_bins": 4}))


def test_save_load_round_trip(fs, tmp_path):
    fs.save(tmp_path / "fs")
    assert_equal(fs, FeatureSet.load(tmp_path / "fs"))
    # Without embeddings too.
    act = FeatureSet("a", fs.user[:, :10], fs.item[:, :10], [("activity", 10)], [("activity", 10)],
                     None, None, {"k": 1}, "abc")
    act.save(tmp_path / "act")
    assert_equal(act, FeatureSet.load(tmp_path / "act"))
    assert sorted(p.name for p in (tmp_path / "act").iterdir()) == ["item.parquet", "manifest.json", "user.parquet"]


@pytest.mark.parametrize("victim", ["user.parquet", "item_emb.parquet", "manifest.json"])
def test_corrupt_or_missing_file_raises_naming_it(fs, tmp_path, victim):
    for how in ("corrupt", "missing"):
        d = tmp_path / how
        fs.save(d)
        path = d / victim
        if how == "missing":
            path.unlink()
        else:
            raw = bytearray(path.read_bytes())
            raw[len(raw) // 2] ^= 0xFF
            path.write_bytes(bytes(raw[: len(raw) - 3]))
        with pytest.raises(DataError, match=victim.replace(".", r"\.")):
            FeatureSet.load(d)


def test_load_of_empty_directory(tmp_path):
    with pytest.raises(DataError, match="manifest.json"):
        FeatureSet.load(tmp_path)


def test_cache_key():
    key = feature_cache_key("ml 1m/x", "random:0.1:0.1:seed0", CFG)
    assert "/" not in key and " " not in key and key.endswith(config_hash(CFG))
    assert key != feature_cache_key("ml 1m/x", "random:0.1:0.1:seed1", CFG)
    assert key != feature_cache_key("ml 1m/x", "random:0.1:0.1:seed0", CFG.model_copy(update={"seed": 1}))


def test_cached_featurize_computes_once_then_loads(domain, tmp_path, monkeypatch):
    calls = []
    real = featurize_mod.featurize

    def counting(train, config):
        calls.append(config)
        return real(train, config)

    monkeypatch.setattr(featurize_mod, "featurize", counting)
    key = feature_cache_key("small", "split", CFG)
    first = cached_featurize(domain, CFG, tmp_path, key)
    second = cached_featurize(domain, CFG, tmp_path, key)
    assert len(calls) == 1
    assert_equal(first, second)
    # the temp dir was renamed, nothing left over but the (empty) lock file
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{key}.lock", key]
    # Another config under the same key, or other training data: recomputed and replaced.
    other = CFG.model_copy(update={"cluster_bins": 4})
    assert cached_featurize(domain, other, tmp_path, key).config_hash == config_hash(other)
    assert len(calls) == 2
    fewer = domain.subset(np.arange(len(domain) - 5))
    cached_featurize(fewer, other, tmp_path, key)
    assert len(calls) == 3
    # A corrupt cache entry is recomputed, not an error.
    (tmp_path / key / "user.parquet").write_bytes(b"junk")
    cached_featurize(fewer, other, tmp_path, key)
    assert len(calls) == 4
    assert FeatureSet.load(tmp_path / key).config_hash == config_hash(other)
