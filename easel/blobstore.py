"""Blob store for datasets and parameters: one interface, two backends.

* :class:`LocalBlobStore` — a folder on one host, or a shared volume (a ReadWriteMany PVC) on every node;
* :class:`easel.s3_blobstore.S3BlobStore` — an S3-compatible bucket, for services spread over hosts.

:func:`make_blob_store` picks one from ``EASEL_BLOB_URL``. The contract both keep: writes are atomic (a reader
never sees half a blob, a failed write leaves nothing under the key and the previous blob intact).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from easel.settings import Settings

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
CHUNK = 1 << 20


def check_key(key: str) -> str:
    """Keys are relative slash-separated names; nothing that could escape the store."""
    if not _KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"invalid blob key {key!r}: use letters, digits, '.', '_', '-' and '/' separators")
    return key


class BlobStore(ABC):
    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> int: ...

    @abstractmethod
    def put_stream(self, key: str, stream: BinaryIO) -> int: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def open(self, key: str) -> BinaryIO: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> bool: ...

    @abstractmethod
    def keys(self, prefix: str = "") -> Iterator[str]: ...

    @abstractmethod
    def local_path(self, key: str) -> Path:
        """A filesystem path of an existing blob, for libraries that need one (raises FileNotFoundError)."""


class LocalBlobStore(BlobStore):
    """A folder on local disk, or a shared volume (NFS/PVC) mounted at the same path on every node."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def local_path(self, key: str) -> Path:
        return self._existing(key)

    def _write_atomically(self, key: str, write: Callable[[BinaryIO], object]) -> int:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as tmp:
                write(tmp)
                tmp.flush()
                os.fsync(tmp.fileno())
                size = tmp.tell()
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return size

    def put_bytes(self, key: str, data: bytes) -> int:
        return self._write_atomically(key, lambda tmp: tmp.write(data))

    def put_stream(self, key: str, stream: BinaryIO) -> int:
        return self._write_atomically(key, lambda tmp: shutil.copyfileobj(stream, tmp, CHUNK))

    def get_bytes(self, key: str) -> bytes:
        return self._existing(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        return self._existing(key).open("rb")

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        path = self._path(key)
        if not path.is_file():
            return False
        path.unlink()
        return True

    def keys(self, prefix: str = "") -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key

    def _existing(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"no blob {key!r} in {self.root}")
        return path


def make_blob_store(settings: Settings) -> BlobStore:
    """The blob store ``settings`` name: ``EASEL_BLOB_URL=s3://bucket/prefix``, else the data dir's folder."""
    if settings.blob_url is not None and settings.blob_url.startswith("s3://"):
        from easel.s3_blobstore import S3BlobStore  # boto3 is loaded only where S3 is used

        return S3BlobStore.from_settings(settings)
    return LocalBlobStore(settings.blob_dir)
