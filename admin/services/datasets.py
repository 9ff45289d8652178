"""Dataset uploads: stream to a capped temp file, then check it against the format rules.

The rules themselves (zip of class folders, ``.npz`` ``x``/``y``, CSV with a label column; size caps,
zip-slip, unreadable images, empty sets) have one owner, :mod:`easel.datasets.formats`, which the
built-in templates read datasets with too — so what admin accepts, training can read.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import BinaryIO

from easel.datasets.formats import (
    FORMAT_SUFFIXES,
    SUFFIX_FORMATS,
    DatasetInfo,
    DatasetInvalid,
    Limits,
    inspect_dataset,
)
from easel.datasets.formats import format_for as _format_name
from easel.db.enums import DatasetFormat

CHUNK = 1 << 20

__all__ = [
    "FORMAT_SUFFIXES", "SUFFIX_FORMATS", "DatasetInfo", "DatasetInvalid", "Limits", "UploadTooLarge",
    "format_for", "spool_upload", "validate_dataset",
]


class UploadTooLarge(ValueError):
    """The upload is bigger than the configured limit."""


def format_for(filename: str | None) -> DatasetFormat | None:
    """The dataset format a file name's extension stands for, or None."""
    name = _format_name(filename)
    return DatasetFormat(name) if name else None


def validate_dataset(path: Path, fmt: DatasetFormat, limits: Limits) -> DatasetInfo:
    """Every rule of ``fmt`` checked on the spooled file; :class:`DatasetInvalid` says what is wrong."""
    info = inspect_dataset(path, fmt.value, limits)
    info.format = DatasetFormat(info.format)
    return info


def spool_upload(source: BinaryIO, directory: Path, max_bytes: int) -> tuple[Path, int]:
    """Copy ``source`` to a new temp file in ``directory``; raise :class:`UploadTooLarge` past ``max_bytes``."""
    directory.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix=".upload-", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    size = 0
    try:
        with handle:
            while chunk := source.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge(f"the file is larger than the limit of {max_bytes} bytes")
                handle.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size
