"""fetch_dataset against a local HTTP server (127.0.0.1 only)."""

import contextlib
import functools
import gzip
import hashlib
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from zsrec_ray.config import default_data_dir
from zsrec_ray.data import fetch_dataset, get_dataset, load_raw
from zsrec_ray.errors import DataError

LASTFM_GZ = default_data_dir() / "lastfm" / "user_artists.dat.gz"
pytestmark = pytest.mark.skipif(not LASTFM_GZ.is_file(), reason=f"{LASTFM_GZ} not found")


class QuietHandler(SimpleHTTPRequestHandler):
    requests_seen: list

    def log_message(self, *args):
        self.requests_seen.append(self.path)


@contextlib.contextmanager
def http_server(directory):
    """Serve ``directory`` on 127.0.0.1 (ephemeral port); yields (base URL, list of requested paths)."""
    seen: list = []
    handler = type("Handler", (QuietHandler,), {"requests_seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "user_artists.dat").write_bytes(gzip.decompress(LASTFM_GZ.read_bytes()))
    with http_server(root) as (url, seen):
        yield root, url, seen


def test_fetch_downloads_verifies_and_loads(served, tmp_path, monkeypatch):
    root, url, seen = served
    cache = tmp_path / "cache"
    dest = fetch_dataset("lastfm", cache_dir=cache, base_url=url, progress=False)
    assert dest == cache / "lastfm"
    assert [p.name for p in dest.iterdir()] == ["user_artists.dat"]  # no temporary file left behind
    expected = get_dataset("lastfm").files[0].sha256
    assert hashlib.sha256((dest / "user_artists.dat").read_bytes()).hexdigest() == expected
    assert seen == ["/user_artists.dat"]

    fetch_dataset("lastfm", cache_dir=cache, base_url=url.rstrip("/"), progress=False)
    assert len(seen) == 1  # already present with the right hash: skipped

    monkeypatch.setenv("ZSREC_CACHE_DIR", str(cache))
    (tmp_path / "empty").mkdir()
    assert len(load_raw("lastfm", data_dir=tmp_path / "empty")) == 92_834


def test_fetch_replaces_a_stale_file(served, tmp_path):
    _, url, seen = served
    (tmp_path / "cache" / "lastfm").mkdir(parents=True)
    (tmp_path / "cache" / "lastfm" / "user_artists.dat").write_text("old")
    dest = fetch_dataset("lastfm", cache_dir=tmp_path / "cache", base_url=url, progress=True)
    assert (dest / "user_artists.dat").stat().st_size == 1_203_620 and len(seen) == 1


def test_fetch_sha256_mismatch_removes_the_file(served, tmp_path):
    root, url, _ = served
    data = bytearray((root / "user_artists.dat").read_bytes())
    data[100] ^= 1
    (root / "user_artists.dat").write_bytes(bytes(data))
    with pytest.raises(DataError) as e:
        fetch_dataset("lastfm", cache_dir=tmp_path / "cache", base_url=url, progress=False)
    msg = str(e.value)
    assert "sha256 mismatch for user_artists.dat" in msg
    assert get_dataset("lastfm").files[0].sha256 in msg and hashlib.sha256(data).hexdigest() in msg
    assert list((tmp_path / "cache" / "lastfm").iterdir()) == []


def test_fetch_404_is_a_clear_error(served, tmp_path):
    root, url, _ = served
    (root / "user_artists.dat").unlink()
    with pytest.raises(DataError, match=r"user_artists\.dat: download of user_artists\.dat failed: HTTP 404"):
        fetch_dataset("lastfm", cache_dir=tmp_path / "cache", base_url=url, progress=False)
    assert list((tmp_path / "cache" / "lastfm").iterdir()) == []


@contextlib.contextmanager
def unreachable_server(kind: str):
    """A base URL on 127.0.0.1 whose failure is certain, held for the whole ``with`` block:
    ``refused``, a port bound but not listening (the kernel answers the connect with a reset, and
    no other socket can take the port meanwhile); ``silent``, a port listening whose connections
    are never accepted nor answered (the client's read times out)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        if kind == "silent":
            s.listen(8)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/"


@pytest.mark.parametrize("kind,reason", [("refused", "Connection refused"), ("silent", "timed out")])
def test_fetch_from_an_unreachable_server_is_a_data_error(tmp_path, monkeypatch, kind, reason):
    monkeypatch.setattr("zsrec_ray.data.fetch._TIMEOUT_S", 0.5)
    with unreachable_server(kind) as url:
        with pytest.raises(DataError, match=r"download of user_artists\.dat failed") as e:
            fetch_dataset("lastfm", cache_dir=tmp_path / "cache", base_url=url, progress=False)
    assert reason in str(e.value) and url in str(e.value)
    assert list((tmp_path / "cache" / "lastfm").iterdir()) == []  # no partial file left behind


def test_fetch_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="unknown dataset"):
        fetch_dataset("nope", cache_dir=tmp_path)
