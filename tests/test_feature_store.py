"""The feature store: per-domain manifests, skip-if-present, force, remote (non-local) filesystems."""

import numpy as np
import pyarrow.fs as pafs
import pytest

from conftest import planted_interactions
from test_pretrained import FEAT
from zsrec_ray.config import DomainSpec, SplitConfig
from zsrec_ray.errors import DataError
from zsrec_ray.features.featurizer import featurize
from zsrec_ray.features.store import FeatureStore, featurize_domain


@pytest.fixture
def domain_file(tmp_path):
    import pandas as pd

    data = planted_interactions(120, 60, 4, 12, seed=5, name="shop")
    path = tmp_path / "shop.csv"
    pd.DataFrame({"user": data.user_ids[data.user], "item": data.item_ids[data.item]}).to_csv(path, index=False)
    return DomainSpec(dataset="shop", path=str(path), split=SplitConfig(seed=0))


def count_calls():
    calls = []

    def fn(graph, config):
        calls.append(graph.name)
        return featurize(graph, config)
    return fn, calls


def test_domain_is_featurized_once_then_skipped_until_forced(tmp_path, domain_file):
    store = FeatureStore(tmp_path / "store")
    fn, calls = count_calls()
    m = featurize_domain(domain_file, FEAT, store, graph_frac=0.8, compute=fn)
    assert not m["skipped"] and len(calls) == 2  # full training split + feature graph
    assert set(m["sets"]) == {"full", "graph"} and m["counts"]["users"] == 120
    assert store.domains() == ["shop"] and store.read_manifest("shop")["config_hash"] == m["config_hash"]
    again = featurize_domain(domain_file, FEAT, store, graph_frac=0.8, compute=fn)
    assert again["skipped"] and len(calls) == 2
    featurize_domain(domain_file, FEAT, store, graph_frac=0.8, force=True, compute=fn)
    assert len(calls) == 4
    other = FEAT.model_copy(update={"activity_bins": 4})
    m2 = featurize_domain(domain_file, other, store, graph_frac=0.8, compute=fn)
    assert not m2["skipped"] and m2["config_hash"] != m["config_hash"] and len(calls) == 6


def test_stored_features_equal_the_core_featurizer(tmp_path, domain_file):
    from zsrec_ray.data.registry import load_split

    store = FeatureStore(f"file://{tmp_path}/store")
    m = featurize_domain(domain_file, FEAT, store, graph_frac=1.0)
    assert set(m["sets"]) == {"full"}
    train = load_split(domain_file).train
    got = store.get_or_compute(train, FEAT, compute=lambda g, c: pytest.fail("should be stored"))
    want = featurize(train, FEAT)
    np.testing.assert_array_equal(got.user, want.user)
    np.testing.assert_array_equal(got.item, want.item)


def test_remote_filesystem_round_trip(tmp_path, domain_file):
    from zsrec_ray.data.registry import load_split

    remote = pafs._MockFileSystem()
    train = load_split(domain_file).train
    fn, calls = count_calls()
    first = FeatureStore("store", staging_dir=tmp_path / "a", filesystem=remote).get_or_compute(train, FEAT, fn)
    # A second client with an empty staging dir reads what the first one uploaded.
    second = FeatureStore("store", staging_dir=tmp_path / "b", filesystem=remote).get_or_compute(train, FEAT, fn)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.user, second.user)
    assert remote.get_file_info("store/sets").type == pafs.FileType.Directory


def test_corrupt_manifest_is_a_clear_error(tmp_path, domain_file):
    store = FeatureStore(tmp_path / "store")
    featurize_domain(domain_file, FEAT, store, graph_frac=1.0)
    (tmp_path / "store" / "domains" / "shop.json").write_text("{not json")
    with pytest.raises(DataError, match="corrupt"):
        store.read_manifest("shop")
