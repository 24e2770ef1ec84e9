"""The shared file helpers (zsrec_ray.files) and the upload reader (zsrec_ray.data.loaders.read_upload)."""

import hashlib
import io
import json
import os

import numpy as np
import pandas as pd
import pytest

from zsrec_ray.data.loaders import read_upload
from zsrec_ray.errors import DataError
from zsrec_ray.files import atomic_dir, atomic_file, format_table, sha256_file, write_json


class Boom(RuntimeError):
    pass


def test_atomic_file_replaces_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"  # parent created
    with atomic_file(target) as tmp:
        assert tmp.parent == target.parent and tmp != target and tmp.exists()
        tmp.write_text("new")
        assert not target.exists()  # nothing visible before the body finishes
    assert target.read_text() == "new"
    assert os.listdir(target.parent) == ["out.txt"]


def test_atomic_file_keeps_the_old_content_and_no_temp_when_the_body_raises(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(Boom):
        with atomic_file(target) as tmp:
            tmp.write_text("half-written")
            raise Boom
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_file_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "f") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_atomic_dir_replaces_an_existing_directory(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "stale.txt").write_text("stale")
    with atomic_dir(target) as tmp:
        assert tmp.is_dir() and tmp.parent == tmp_path and not any(tmp.iterdir())
        (tmp / "fresh.txt").write_text("fresh")
        assert (target / "stale.txt").exists()  # the old one serves until the end
    assert sorted(p.name for p in target.iterdir()) == ["fresh.txt"]
    assert os.listdir(tmp_path) == ["d"]


def test_atomic_dir_cleans_up_on_error_and_keeps_the_old_directory(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(Boom):
        with atomic_dir(target) as tmp:
            (tmp / "partial.txt").write_text("partial")
            raise Boom
    assert os.listdir(tmp_path) == ["d"]
    assert (target / "old.txt").read_text() == "old" and not (target / "partial.txt").exists()


def test_sha256_file_matches_hashlib_on_a_multi_chunk_file(tmp_path):
    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 12345)  # several 1 MiB chunks plus a tail
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_file(str(path)) == hashlib.sha256(data).hexdigest()


def test_write_json_round_trips(tmp_path):
    obj = {"a": 1, "b": [1.5, "x", None], "c": {"n": np.float32(0.25), "i": np.int64(3)}}
    path = write_json(obj, tmp_path / "deep" / "out.json")
    assert path == tmp_path / "deep" / "out.json"
    text = path.read_text()
    assert text.endswith("}\n") and '\n  "a": 1' in text  # indent=2, trailing newline
    assert json.loads(text) == {"a": 1, "b": [1.5, "x", None], "c": {"n": 0.25, "i": 3.0}}
    assert os.listdir(path.parent) == ["out.json"]


def test_format_table_aligns_columns_and_leaves_missing_cells_blank():
    rows = [{"model": "mostpop", "ndcg@20": 0.123456}, {"model": "lightgcn", "wall_s": 1234.5}]
    lines = format_table(rows).splitlines()
    assert len(lines) == 4
    assert len({len(line) for line in lines}) == 1  # every row has the same width
    assert [c.strip() for c in lines[0].strip("|").split("|")] == ["model", "ndcg@20", "wall_s"]
    assert set(lines[1]) == {"|", "-"}
    assert [c.strip() for c in lines[2].strip("|").split("|")] == ["mostpop", "0.1235", ""]
    assert [c.strip() for c in lines[3].strip("|").split("|")] == ["lightgcn", "", "1234.5"]
    assert [line.index("|", 1) for line in lines] == [len("| lightgcn ")] * 4  # first column aligned
    assert format_table(rows, ["wall_s"]).splitlines()[2] == "|        |"
    assert format_table([]) == "(no rows)"


def _frame():
    return pd.DataFrame({"user": [1, 2, 2], "item": ["a", "b", "c"]})


@pytest.mark.parametrize("fmt,sep", [("csv", ","), ("tsv", "\t")])
def test_read_upload_parses_delimited_text(fmt, sep):
    body = _frame().to_csv(index=False, sep=sep).encode()
    df = read_upload(body, fmt)
    assert list(df.columns) == ["user", "item"]
    assert df["user"].tolist() == [1, 2, 2] and df["item"].tolist() == ["a", "b", "c"]


def test_read_upload_parses_parquet():
    buf = io.BytesIO()
    _frame().to_parquet(buf, index=False)
    df = read_upload(buf.getvalue(), "parquet")
    assert df["user"].tolist() == [1, 2, 2] and df["item"].tolist() == ["a", "b", "c"]


@pytest.mark.parametrize("body,fmt", [
    (b"PAR1" + np.random.default_rng(1).bytes(64) + b"PAR1", "parquet"),  # valid magic, garbage inside
    (b"PAR1PAR1", "parquet"),
    (b"not parquet at all", "parquet"),
    (b"", "parquet"),
    (b"", "csv"),
    (b"", "tsv"),
    (b"user,item\n\xff\xfe,\x80\n", "csv"),  # not UTF-8
    (b'user,item\n"1,a\n', "csv"),  # unterminated quote
])
def test_read_upload_raises_data_error_on_unparsable_content(body, fmt):
    with pytest.raises(DataError, match=f"uploaded {fmt.upper()}"):
        read_upload(body, fmt)


def test_read_upload_rejects_an_unknown_format():
    with pytest.raises(DataError, match="unsupported upload format"):
        read_upload(b"user,item\n1,2\n", "xlsx")
