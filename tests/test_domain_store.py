"""The serving app's on-disk domain registry (no Ray): atomic meta, versions, cross-process visibility."""

import pandas as pd
import pytest

from zsrec_ray.serving.domains import DomainConflict, DomainNotFound, DomainStore

ROWS = pd.DataFrame({"user": ["u1", "u1", "u2"], "item": ["a", "b", "a"]})


def test_meta_written_by_another_process_is_seen(tmp_path):
    reader, writer = DomainStore(tmp_path), DomainStore(tmp_path)  # two replicas on one storage dir
    writer.create("shop", ROWS)
    assert reader.meta("shop")["pending_version"] == 1
    meta = writer.meta("shop")
    meta.update(status="ready", current_version=1, pending_version=None)
    writer.write_meta("shop", meta)
    assert reader.meta("shop")["current_version"] == 1
    writer.append("shop", pd.DataFrame({"user": ["u3"], "item": ["c"]}))
    assert reader.meta("shop")["pending_version"] == 2
    assert len(reader.interactions("shop", 2, reader.meta("shop")["generation"])) == 4


def test_meta_is_a_fresh_copy_and_delete_is_seen(tmp_path):
    store, other = DomainStore(tmp_path), DomainStore(tmp_path)
    store.create("shop", ROWS)
    store.meta("shop")["status"] = "mutated by a caller"
    assert store.meta("shop")["status"] == "pending"
    other.delete("shop")
    with pytest.raises(DomainNotFound):
        store.meta("shop")
    store.create("shop", ROWS)  # the name is free again
    with pytest.raises(DomainConflict):
        other.create("shop", ROWS)
