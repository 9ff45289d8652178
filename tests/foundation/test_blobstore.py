"""The blob store contract, run against both backends: a local folder and an S3 bucket (moto's server)."""

import io
import itertools
from pathlib import Path

import pytest
from s3_server import ACCESS_KEY, SECRET_KEY, S3Server

from easel.blobstore import BlobStore, LocalBlobStore, make_blob_store
from easel.settings import Settings

_buckets = itertools.count()


def _s3_settings(s3: S3Server, tmp_path: Path, prefix: str = "easel") -> Settings:
    return Settings(data_dir=tmp_path, blob_url=f"s3://test-bucket-{next(_buckets)}/{prefix}",
                    s3_endpoint_url=s3.url, s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY)


def _s3_store(s3: S3Server, tmp_path: Path) -> BlobStore:
    settings = _s3_settings(s3, tmp_path)
    store = make_blob_store(settings)
    store.client.create_bucket(Bucket=store.bucket)  # type: ignore[attr-defined]
    return store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    return _s3_store(request.getfixturevalue("s3_server"), tmp_path)


def test_round_trip_and_listing(store: BlobStore) -> None:
    assert store.put_bytes("datasets/a/train.npz", b"abc") == 3
    assert store.put_stream("params/t1.safetensors", io.BytesIO(b"x" * 5000)) == 5000
    assert store.get_bytes("datasets/a/train.npz") == b"abc"
    with store.open("params/t1.safetensors") as handle:
        assert handle.read() == b"x" * 5000
    assert list(store.keys("params/")) == ["params/t1.safetensors"]
    assert list(store.keys()) == ["datasets/a/train.npz", "params/t1.safetensors"]
    assert store.exists("datasets/a/train.npz")
    assert store.delete("datasets/a/train.npz") and not store.exists("datasets/a/train.npz")
    assert not store.delete("datasets/a/train.npz")


def test_a_large_stream_round_trips(store: BlobStore) -> None:
    # Over the multipart threshold of the S3 backend: the object appears whole, or not at all.
    data = bytes(range(256)) * (40 * 1024 * 4)
    assert store.put_stream("big/blob", io.BytesIO(data)) == len(data)
    assert store.get_bytes("big/blob") == data


def test_local_path_is_a_readable_copy(store: BlobStore) -> None:
    store.put_bytes("models/m.py", b"print('v1')\n")
    assert store.local_path("models/m.py").read_bytes() == b"print('v1')\n"
    store.put_bytes("models/m.py", b"print('v2')\n")
    assert store.local_path("models/m.py").read_bytes() == b"print('v2')\n", "a changed blob is re-read"


@pytest.mark.parametrize("key", ["../escape", "/abs/path", "a/../../b", "", "a//b", ".hidden"])
def test_keys_cannot_escape(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        store.put_bytes(key, b"x")


class Broken(io.RawIOBase):
    """A source that fails part-way: after ``good`` bytes, the disk goes away."""

    def __init__(self, good: int) -> None:
        self.left = good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        if self.left <= 0:
            raise OSError("disk went away")
        size = min(len(buffer), self.left)
        buffer[:size] = b"n" * size
        self.left -= size
        return size


@pytest.mark.parametrize("good", [0, 20 << 20], ids=["at-once", "mid-multipart"])
def test_failed_write_leaves_the_old_blob(store: BlobStore, good: int) -> None:
    store.put_bytes("k", b"old")
    with pytest.raises(OSError, match="disk went away"):
        store.put_stream("k", io.BufferedReader(Broken(good)))
    assert store.get_bytes("k") == b"old", "the old blob is intact"
    assert list(store.keys()) == ["k"], "nothing half-written is visible"


def test_failed_local_write_leaves_no_temp_file(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(OSError):
        store.put_stream("k", io.BufferedReader(Broken(10)))
    assert list(tmp_path.iterdir()) == []


def test_missing_blob(store: BlobStore) -> None:
    for read in (store.get_bytes, store.open, store.local_path):
        with pytest.raises(FileNotFoundError, match="no blob 'nope'"):
            read("nope")


def test_two_s3_stores_with_different_prefixes_do_not_see_each_other(s3_server: S3Server, tmp_path: Path) -> None:
    first = _s3_store(s3_server, tmp_path)
    bucket = first.bucket  # type: ignore[attr-defined]
    second = make_blob_store(Settings(data_dir=tmp_path, blob_url=f"s3://{bucket}/other", s3_endpoint_url=s3_server.url,
                                      s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY))
    first.put_bytes("a", b"1")
    second.put_bytes("b", b"2")
    assert list(first.keys()) == ["a"] and list(second.keys()) == ["b"]


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "http://bucket", "s3://UPPER/x"])
def test_bad_blob_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="blob_url"):
        Settings(blob_url=url)


