"""S3-compatible blob store (AWS S3, MinIO, a cloud bucket) on boto3, for services on different hosts.

Atomicity comes from S3 itself: an object becomes visible only when its single PUT or its multipart upload
completes, and boto3 aborts a multipart upload whose source fails — so a reader never sees half a blob, and a
failed write leaves the previous object in place. Readers get a seekable spooled copy (bounded memory);
:meth:`S3BlobStore.local_path` downloads into a per-host cache, re-fetched when the object's ETag changes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from easel.blobstore import CHUNK, BlobStore, check_key
from easel.settings import Settings

SPOOL_BYTES = 8 << 20  # an opened blob stays in memory up to this size, then spills to a temp file
_MISSING = ("404", "NoSuchKey", "NotFound")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → (``bucket``, ``some/prefix/``); the prefix may be empty."""
    if not url.startswith("s3://"):
        raise ValueError(f"blob url {url!r} is not s3://bucket[/prefix]")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"blob url {url!r} names no bucket")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


class _Counting:
    """A read-only stream wrapper that counts the bytes boto3 pulls through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.size = stream, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.size += len(data)
        return data


class S3BlobStore(BlobStore):
    def __init__(self, client: Any, bucket: str, prefix: str, cache_dir: Path) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.cache_dir = Path(cache_dir)
        self._transfer = TransferConfig(multipart_chunksize=8 * CHUNK, use_threads=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3BlobStore:
        assert settings.blob_url is not None
        bucket, prefix = parse_s3_url(settings.blob_url)
        client = boto3.client(
            "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id, aws_secret_access_key=settings.s3_secret_access_key,
            # Path-style addressing works with MinIO and test servers that have no wildcard DNS.
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
        )
        return cls(client, bucket, prefix, settings.data_dir / "blob-cache")

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _missing(self, key: str) -> FileNotFoundError:
        return FileNotFoundError(f"no blob {key!r} in s3://{self.bucket}/{self.prefix}")

    def put_bytes(self, key: str, data: bytes) -> int:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return len(data)

    def put_stream(self, key: str, stream: BinaryIO) -> int:
        counting = _Counting(stream)
        self.client.upload_fileobj(counting, self.bucket, self._key(key), Config=self._transfer)
        return counting.size

    def _get(self, key: str) -> dict[str, Any]:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                raise self._missing(key) from None
            raise

    def get_bytes(self, key: str) -> bytes:
        body = self._get(key)["Body"]
        try:
            return body.read()
        finally:
            body.close()

    def open(self, key: str) -> BinaryIO:
        body = self._get(key)["Body"]
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - the caller closes it
        try:
            for chunk in body.iter_chunks(CHUNK):
                spool.write(chunk)
        except BaseException:
            spool.close()
            raise
        finally:
            body.close()
        spool.seek(0)
        return spool  # type: ignore[return-value]

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def delete(self, key: str) -> bool:
        if self._head(key) is None:
            return False  # S3 deletes are idempotent; the head tells whether there was one
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        return True

    def keys(self, prefix: str = "") -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        for page in pages:  # S3 lists keys in UTF-8 binary order: sorted, like the local backend
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix):]

    def local_path(self, key: str) -> Path:
        """A local copy under the cache dir, fetched atomically; refreshed when the object changed."""
        head = self._head(key)
        if head is None:
            raise self._missing(key)
        target = self.cache_dir / check_key(key)
        stamp = target.with_name(f".{target.name}.etag")
        etag = str(head.get("ETag", ""))
        if target.is_file() and stamp.is_file() and stamp.read_text() == etag:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as tmp:
                self.client.download_fileobj(self.bucket, self._key(key), tmp, Config=self._transfer)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        stamp.write_text(etag)
        return target
