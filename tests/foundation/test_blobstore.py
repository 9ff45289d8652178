import io
from pathlib import Path

import pytest

from easel.blobstore import LocalBlobStore


def test_round_trip_and_listing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    assert store.put_bytes("datasets/a/train.npz", b"abc") == 3
    assert store.put_stream("params/t1.safetensors", io.BytesIO(b"x" * 5000)) == 5000
    assert store.get_bytes("datasets/a/train.npz") == b"abc"
    assert list(store.keys("params/")) == ["params/t1.safetensors"]
    assert store.delete("datasets/a/train.npz") and not store.exists("datasets/a/train.npz")
    assert not store.delete("datasets/a/train.npz")


@pytest.mark.parametrize("key", ["../escape", "/abs/path", "a/../../b", "", "a//b", ".hidden"])
def test_keys_cannot_escape(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        LocalBlobStore(tmp_path).put_bytes(key, b"x")


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put_bytes("k", b"old")

    class Broken(io.RawIOBase):
        def readinto(self, buffer: bytearray) -> int:
            raise OSError("disk went away")

    with pytest.raises(OSError):
        store.put_stream("k", Broken())
    assert store.get_bytes("k") == b"old", "the old blob is intact"
    assert [p.name for p in tmp_path.iterdir()] == ["k"], "no temp file left behind"


def test_missing_blob(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no blob 'nope'"):
        LocalBlobStore(tmp_path).get_bytes("nope")
