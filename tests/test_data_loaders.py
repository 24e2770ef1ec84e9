"""Format readers on small files: parsing, .gz transparency and DataError messages."""

import gzip
import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from scipy.io import savemat

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
from zsrec_ray.errors import DataError


def write(path, text, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t4\t100\n2\t10\t3\t50\n1\t11\t5\t200\n"


# ---------------------------------------------------------------- resolve_file
@pytest.mark.parametrize("gz", [False, True])
def test_resolve_file_finds_plain_or_gz(tmp_path, gz):
    real = write(tmp_path / "x.txt", "a", gz=gz)
    assert resolve_file(tmp_path / "x.txt") == real
    assert resolve_file(tmp_path / "x.txt.gz") == real


def test_resolve_file_missing_names_dir_and_candidates(tmp_path):
    (tmp_path / "other.csv").write_text("")
    with pytest.raises(MissingDataFile) as e:
        resolve_file(tmp_path / "x.txt")
    msg = str(e.value)
    assert str(tmp_path) in msg and "x.txt or x.txt.gz" in msg and "other.csv" in msg
    with pytest.raises(DataError, match="does not exist"):
        resolve_file(tmp_path / "nope" / "x.txt")


# ---------------------------------------------------------------- RecBole .inter
@pytest.mark.parametrize("gz", [False, True])
def test_recbole_inter(tmp_path, gz):
    df = load_recbole_inter(write(tmp_path / "d.inter", INTER, gz=gz))
    assert list(df.columns) == ["user", "item", "rating", "timestamp"]
    assert df["user"].tolist() == [1, 2, 1] and df["item"].tolist() == [10, 10, 11]
    assert df["rating"].dtype == np.float64 and df["timestamp"].tolist() == [100.0, 50.0, 200.0]


def test_recbole_inter_maps_fields_by_name_in_any_order(tmp_path):
    text = "timestamp:float\titem_id:token\tuser_id:token\n7\ti1\tu1\n8\ti2\tu1\n"
    df = load_recbole_inter(write(tmp_path / "d.inter", text))
    assert df["user"].tolist() == ["u1", "u1"] and df["item"].tolist() == ["i1", "i2"]
    assert "rating" not in df.columns


def test_recbole_inter_bad_rating_names_line_and_value(tmp_path):
    text = INTER + "\n3\t12\tfive\t300\n"   # a blank line before the bad one: it is line 6
    with pytest.raises(DataError, match=r"d\.inter: line 6: rating 'five' is not a number"):
        load_recbole_inter(write(tmp_path / "d.inter", text))


def test_recbole_inter_missing_column(tmp_path):
    with pytest.raises(DataError) as e:
        load_recbole_inter(write(tmp_path / "d.inter", "user_id:token\trating:float\n1\t3\n"))
    msg = str(e.value)
    assert "missing column(s) ['item_id']" in msg and "found ['user_id', 'rating']" in msg


def test_recbole_inter_too_many_fields(tmp_path):
    with pytest.raises(DataError, match=r"d\.inter: cannot parse.*line 3"):
        load_recbole_inter(write(tmp_path / "d.inter", "user_id:token\titem_id:token\n1\t2\n1\t2\t3\t4\n"))


@pytest.mark.parametrize("text,reason", [("", "file is empty"), ("user_id:token\titem_id:token\n", "no data rows")])
def test_recbole_inter_empty(tmp_path, text, reason):
    with pytest.raises(DataError, match=reason):
        load_recbole_inter(write(tmp_path / "d.inter", text))


def test_recbole_inter_missing_item_names_line(tmp_path):
    with pytest.raises(DataError, match=r"line 3: item id is missing"):
        load_recbole_inter(write(tmp_path / "d.inter", "user_id:token\titem_id:token\n1\t2\n5\n"))


# ---------------------------------------------------------------- LightGCN train/test
def test_lightgcn_reads_both_files_skipping_blank_and_user_only_lines(tmp_path):
    write(tmp_path / "train.txt", "0 1 2 3\n\n1 2\n2\n3 0 1")  # no trailing newline
    write(tmp_path / "test.txt", "0 4\n1\n3 2 ", gz=True)
    df = load_lightgcn(tmp_path)
    assert df["split"].tolist() == ["train"] * 6 + ["test"] * 2
    assert df["user"].tolist() == [0, 0, 0, 1, 3, 3, 0, 3]
    assert df["item"].tolist() == [1, 2, 3, 2, 0, 1, 4, 2]
    assert df["user"].dtype == np.int64


def test_lightgcn_missing_file_names_dir_and_expected(tmp_path):
    write(tmp_path / "train.txt", "0 1\n")
    with pytest.raises(MissingDataFile) as e:
        load_lightgcn(tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg and "expected train.txt(.gz) and test.txt(.gz)" in msg and "missing test.txt" in msg


def test_lightgcn_bad_id_names_file_line_and_value(tmp_path):
    write(tmp_path / "train.txt", "0 1 2\n1 3 x7 4\n")
    write(tmp_path / "test.txt", "0 5\n")
    with pytest.raises(DataError, match=r"train\.txt: line 2: id 'x7' is not an integer"):
        load_lightgcn(tmp_path)


def test_lightgcn_only_user_ids_is_empty(tmp_path):
    write(tmp_path / "train.txt", "0 1\n")
    write(tmp_path / "test.txt", "0\n1\n")
    with pytest.raises(DataError, match=r"test\.txt: no interactions"):
        load_lightgcn(tmp_path)


def test_corrupt_gzip_is_a_data_error(tmp_path):
    (tmp_path / "s.txt.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"s\.txt\.gz: cannot read"):
        load_sequences(tmp_path / "s.txt")


# ---------------------------------------------------------------- S3Rec sequences
@pytest.mark.parametrize("gz", [False, True])
def test_sequences_positions(tmp_path, gz):
    df = load_sequences(write(tmp_path / "s.txt", "1 5 6 5\n2 7\n3\n", gz=gz))
    assert df["user"].tolist() == [1, 1, 1, 2]
    assert df["item"].tolist() == [5, 6, 5, 7]
    assert df["timestamp"].tolist() == [0.0, 1.0, 2.0, 0.0]


def test_sequences_empty_file(tmp_path):
    with pytest.raises(DataError, match=r"s\.txt: no interactions"):
        load_sequences(write(tmp_path / "s.txt", ""))


# ---------------------------------------------------------------- Last.fm
def test_lastfm(tmp_path):
    df = load_lastfm(write(tmp_path / "user_artists.dat", "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n",
                           gz=True))
    assert df.to_dict("list") == {"user": [2, 2], "item": [51, 52], "rating": [13883.0, 11690.0]}


def test_lastfm_wrong_columns_lists_expected_and_found(tmp_path):
    with pytest.raises(DataError) as e:
        load_lastfm(write(tmp_path / "user_artists.dat", "userID\tartist\tcount\n2\t51\t1\n"))
    msg = str(e.value)
    assert "user_artists.dat" in msg
    assert "expected ['userID', 'artistID', 'weight']" in msg and "found ['userID', 'artist', 'count']" in msg


def test_lastfm_non_integer_id(tmp_path):
    with pytest.raises(DataError, match=r"line 3: user id 'u9' is not an integer"):
        load_lastfm(write(tmp_path / "user_artists.dat", "userID\tartistID\tweight\n2\t51\t1\nu9\t52\t1\n"))


# ---------------------------------------------------------------- ratings.tsv
def test_ratings_tsv_epinions_layout(tmp_path):
    text = "user_id\titem_id\tcategory_id\trating\n1\t1\t3\t2\n1\t2\t2\t5\n"
    df = load_ratings_tsv(write(tmp_path / "ratings.tsv", text, gz=True))
    assert df.to_dict("list") == {"user": [1, 1], "item": [1, 2], "rating": [2.0, 5.0]}


def test_ratings_tsv_douban_layout_with_split(tmp_path):
    text = "user_idx\titem_idx\trating\tsplit\n0\t22\t4\ttrain\n0\t3\t1\ttest\n"
    df = load_ratings_tsv(write(tmp_path / "ratings.tsv", text))
    assert df["split"].tolist() == ["train", "test"] and df["item"].tolist() == [22, 3]


def test_ratings_tsv_bad_split_label(tmp_path):
    with pytest.raises(DataError, match=r"line 3: split label 'tset' is not one of"):
        load_ratings_tsv(write(tmp_path / "ratings.tsv",
                               "user_idx\titem_idx\trating\tsplit\n0\t1\t4\ttrain\n0\t2\t1\ttset\n"))


def test_ratings_tsv_missing_rating_value(tmp_path):
    with pytest.raises(DataError, match=r"line 2: rating \(empty\) is not a number"):
        load_ratings_tsv(write(tmp_path / "ratings.tsv", "user_id\titem_id\trating\n1\t2\t\n"))


def test_ratings_tsv_missing_columns(tmp_path):
    with pytest.raises(DataError, match=r"missing column\(s\) \['item_id or item_idx'\]"):
        load_ratings_tsv(write(tmp_path / "ratings.tsv", "user_id\trating\n1\t2\n"))


# ---------------------------------------------------------------- Epinions .mat
def _mat_bytes(**arrays):
    buf = io.BytesIO()
    savemat(buf, arrays)
    return buf.getvalue()


def test_epinions_mat_inside_zip(tmp_path):
    rows = np.array([[1, 1, 3, 2], [1, 2, 2, 5], [4, 1, 3, 1]], dtype=np.int32)
    with zipfile.ZipFile(tmp_path / "epinions.zip", "w") as zf:
        zf.writestr("epinions/rating.mat", _mat_bytes(rating=rows))
    df = load_epinions_mat(tmp_path / "epinions.zip")
    assert df.to_dict("list") == {"user": [1, 1, 4], "item": [1, 2, 1], "rating": [2.0, 5.0, 1.0]}


def test_epinions_mat_errors(tmp_path):
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("epinions/trustnetwork.mat", _mat_bytes(trustnetwork=np.ones((2, 2))))
    with pytest.raises(DataError, match=r"a\.zip: no rating\.mat inside"):
        load_epinions_mat(tmp_path / "a.zip")
    (tmp_path / "rating.mat").write_bytes(_mat_bytes(rating=np.ones((3, 2))))
    with pytest.raises(DataError, match=r"expected a variable 'rating' of shape \(n, 4\).*found \(3, 2\)"):
        load_epinions_mat(tmp_path / "rating.mat")
    (tmp_path / "junk.mat").write_bytes(b"\x00" * 10)
    with pytest.raises(DataError, match=r"junk\.mat: cannot read rating\.mat"):
        load_epinions_mat(tmp_path / "junk.mat")
    with pytest.raises(MissingDataFile, match="expected epinions.zip"):
        load_epinions_mat(tmp_path / "epinions.zip")


# ---------------------------------------------------------------- generic tables
COLS = {"user": "uid", "item": "iid", "rating": "stars", "timestamp": "ts"}


@pytest.mark.parametrize("name,sep", [("d.csv", ","), ("d.tsv", "\t"), ("d.txt", "  "), ("d.csv.gz", ",")])
def test_table_separator_from_extension(tmp_path, name, sep):
    text = sep.join(["uid", "iid", "stars", "ts"]) + "\n" + sep.join(["a", "x", "4", "10"]) + "\n"
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    df = load_table(path, COLS)
    assert df.to_dict("list") == {"user": ["a"], "item": ["x"], "rating": [4.0], "timestamp": [10.0]}


def test_table_explicit_separator_and_default_mapping(tmp_path):
    df = load_table(write(tmp_path / "d.dat", "user;item\n1;2\n3;4\n"), sep=";")
    assert df.to_dict("list") == {"user": [1, 3], "item": [2, 4]}


def test_table_parquet(tmp_path):
    pd.DataFrame({"uid": [1, 2], "iid": ["p", "q"], "ts": [5.0, 6.0]}).to_parquet(tmp_path / "d.parquet")
    df = load_table(tmp_path / "d.parquet", {"user": "uid", "item": "iid", "timestamp": "ts"})
    assert df.to_dict("list") == {"user": [1, 2], "item": ["p", "q"], "timestamp": [5.0, 6.0]}


def test_table_parquet_bad_value_names_row(tmp_path):
    pd.DataFrame({"user": [1, 2], "item": [3, 4], "rating": ["1", "bad"]}).to_parquet(tmp_path / "d.parquet")
    with pytest.raises(DataError, match=r"row 2: rating 'bad' is not a number"):
        load_table(tmp_path / "d.parquet")


def test_table_errors(tmp_path):
    with pytest.raises(DataError, match="cannot infer the separator"):
        load_table(write(tmp_path / "d.xyz", "user,item\n1,2\n"))
    with pytest.raises(DataError, match=r"missing column\(s\) \['iid'\].*found \['uid', 'item'\]"):
        load_table(write(tmp_path / "d.csv", "uid,item\n1,2\n"), {"user": "uid", "item": "iid"})
    with pytest.raises(DataError, match=r"missing column\(s\) \['stars'\]"):
        load_table(tmp_path / "d.csv", {"user": "uid", "item": "item", "rating": "stars"})
    with pytest.raises(DataError, match=r"needs \['item'\]"):
        load_table(tmp_path / "d.csv", {"user": "uid"})
    with pytest.raises(DataError, match=r"unknown column mapping key\(s\) \['score'\]"):
        load_table(tmp_path / "d.csv", {"user": "uid", "item": "item", "score": "s"})
    with pytest.raises(MissingDataFile, match="expected d.parquet"):
        load_table(tmp_path / "d.parquet")
    (tmp_path / "d.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"d\.parquet: cannot read Parquet"):
        load_table(tmp_path / "d.parquet")
