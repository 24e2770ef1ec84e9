"""Interactions construction, preprocessing and splits on small hand-made tables."""

import numpy as np
import pandas as pd
import pytest

from zsrec_ray.data import Interactions, make_split, preprocess
from zsrec_ray.data.preprocess import drop_duplicates, k_core
from zsrec_ray.errors import DataError


def frame(rows, cols=("user", "item")):
    return pd.DataFrame(rows, columns=list(cols))


def pairs(t: Interactions) -> set:
    return set(zip(t.user_ids[t.user].tolist(), t.item_ids[t.item].tolist()))


@pytest.fixture
def table():
    """40 users with 10 distinct items each (of 60), distinct timestamps."""
    rng = np.random.default_rng(3)
    rows = [(f"u{u}", int(i), float(rng.random())) for u in range(40) for i in rng.choice(60, 10, replace=False)]
    return Interactions.from_frame(frame(rows, ("user", "item", "timestamp")), "toy")


# ---------------------------------------------------------------- Interactions.from_frame
def test_from_frame_sorted_contiguous_ids_independent_of_row_order():
    df = frame([("b", 20), ("a", 10), ("b", 10)])
    t = Interactions.from_frame(df)
    assert t.user_ids.tolist() == ["a", "b"] and t.item_ids.tolist() == [10, 20]
    assert t.user.tolist() == [1, 0, 1] and t.item.tolist() == [1, 0, 0]
    assert pairs(Interactions.from_frame(df.iloc[::-1])) == pairs(t)


@pytest.mark.parametrize("df,message", [
    (frame([(1, 2)], ("user", "thing")), r"missing required column\(s\) \['item'\]"),
    (frame([(1, 2), (None, 3)]), "column 'user' is empty at row 1"),
    (frame([(1, 2, "4"), (1, 3, "x")], ("user", "item", "rating")),
     "column 'rating' has a missing or non-numeric value 'x' at row 1"),
])
def test_from_frame_validation(df, message):
    with pytest.raises(DataError, match=message):
        Interactions.from_frame(df, "toy")


def test_from_frame_carries_split_labels():
    t = Interactions.from_frame(frame([(1, 2, "train"), (1, 3, "test")], ("user", "item", "split")))
    assert t.split_label.tolist() == ["train", "test"]


# ---------------------------------------------------------------- preprocess
def test_drop_duplicates_keeps_earliest_by_timestamp_else_first_seen():
    t = Interactions.from_frame(frame([(1, 1, 5.0, 9.0), (1, 1, 3.0, 2.0), (1, 2, 4.0, 1.0)],
                                      ("user", "item", "rating", "timestamp")))
    d = drop_duplicates(t)
    assert len(d) == 2 and sorted(d.rating.tolist()) == [3.0, 4.0]
    no_ts = Interactions.from_frame(frame([(1, 1, 5.0), (1, 1, 3.0)], ("user", "item", "rating")))
    assert drop_duplicates(no_ts).rating.tolist() == [5.0]


def test_min_rating_rule():
    df = frame([(u, i, float(r)) for u in range(3) for i, r in enumerate([1, 3, 4, 5])], ("user", "item", "rating"))
    t = preprocess(Interactions.from_frame(df), k=1, min_rating=4)
    assert len(t) == 6 and t.rating.min() >= 4 and t.item_ids.tolist() == [2, 3]
    assert len(preprocess(Interactions.from_frame(df), k=1)) == 12
    with pytest.raises(DataError, match="no rating column"):
        preprocess(Interactions.from_frame(df[["user", "item"]]), k=1, min_rating=4)


def test_k_core_is_iterative():
    # 2-core: item z has one user, so (c, z) goes; then c has one row left, so (c, y) goes too.
    # A single pass would keep (c, y), since c had degree 2 before (c, z) was removed.
    t = Interactions.from_frame(frame([("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", "y"), ("c", "z")]))
    core = k_core(t, 2)
    assert pairs(core) == {("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")}
    assert core.user_degree()[core.user_degree() > 0].min() >= 2


def test_preprocess_reindexes_contiguously_keeping_external_ids():
    t = Interactions.from_frame(frame([("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", "y"), ("c", "z")]))
    out = preprocess(t, k=2)
    assert out.user_ids.tolist() == ["a", "b"] and out.item_ids.tolist() == ["x", "y"]
    assert out.n_users == 2 and out.n_items == 2 and set(out.user.tolist()) == {0, 1}
    assert pairs(out) == {("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")}
    assert out.to_frame().shape == (4, 2)


def test_preprocess_empty_after_filtering():
    t = Interactions.from_frame(frame([("a", "x"), ("b", "y")]), "tiny")
    with pytest.raises(DataError, match=r"tiny: empty after filtering .*5-core.*2 rows in, 0 left"):
        preprocess(t, k=5)


# ---------------------------------------------------------------- splits
def assert_partition(data, s, parts=("train", "valid", "test")):
    sets = [pairs(getattr(s, p)) for p in parts]
    assert sum(len(x) for x in sets) == len(data)
    assert set().union(*sets) == pairs(data)
    for a in range(len(sets)):
        for b in range(a + 1, len(sets)):
            assert not sets[a] & sets[b]


def test_random_split_seeded_per_user_80_10_10(table):
    s = make_split(table, "random", seed=7)
    assert_partition(table, s)
    for part, n in (("train", 8), ("valid", 1), ("test", 1)):
        assert np.all(getattr(s, part).user_degree() == n)
    again = make_split(table, "random", seed=7)
    assert pairs(again.test) == pairs(s.test) and pairs(again.valid) == pairs(s.valid)
    assert pairs(make_split(table, "random", seed=8).test) != pairs(s.test)
    assert s.train.n_items == table.n_items  # one id space


def test_leave_last_out_uses_timestamps(table):
    perm = np.random.default_rng(0).permutation(len(table))
    shuffled = table.subset(perm)
    s = make_split(shuffled, "leave_last_out")
    assert_partition(shuffled, s)
    for u in range(table.n_users):
        ts = np.sort(table.timestamp[table.user == u])
        assert s.test.timestamp[s.test.user == u].tolist() == [ts[-1]]
        assert s.valid.timestamp[s.valid.user == u].tolist() == [ts[-2]]
    with pytest.raises(DataError, match="needs a timestamp"):
        make_split(Interactions.from_frame(frame([(1, 2)])), "leave_last_out")


def test_given_split_keeps_test_and_carves_valid_from_train(table):
    labels = np.where(np.arange(len(table)) % 5 == 0, "test", "train")
    data = Interactions(table.user, table.item, table.user_ids, table.item_ids, timestamp=table.timestamp,
                        name="toy", split_label=labels)
    s = make_split(data, "given", seed=1)
    assert_partition(data, s)
    assert pairs(s.test) == pairs(data.subset(labels == "test"))
    assert pairs(s.valid) <= pairs(data.subset(labels == "train")) and len(s.valid) > 0
    assert set(s.valid.split_label) == {"train"}
    with pytest.raises(DataError, match="ships no split of its own"):
        make_split(table, "given")


def test_given_split_uses_valid_labels_when_present():
    t = Interactions.from_frame(frame([(1, 1, "train"), (1, 2, "valid"), (1, 3, "test")], ("user", "item", "split")))
    s = make_split(t, "given")
    assert (len(s.train), len(s.valid), len(s.test)) == (1, 1, 1)


def test_heldout_users_never_in_train_or_valid(table):
    s = make_split(table, "heldout_users", seed=2)
    held = set(s.heldout_users.tolist())
    assert len(held) == 4
    assert not held & set(s.train.user.tolist()) and not held & set(s.valid.user.tolist())
    assert set(s.test.user.tolist()) == held and set(s.fold_in.user.tolist()) == held
    assert_partition(table, s, ("train", "valid", "test", "fold_in"))
    assert len(s.known()) == len(s.train) + len(s.fold_in)
