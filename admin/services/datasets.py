"""Dataset uploads: stream to a capped temp file, validate without torch, store in the blob store.

Three formats, chosen by the file's extension:

* ``.zip`` — class-named image folders (``cat/1.png``, ``dog/7.jpg``, optionally under one top folder).
  Every entry is checked before any is read: no absolute paths, ``..``, drive letters or symlinks
  (zip-slip), no encryption, unpacked size and image count under the limits; then every image is decoded.
* ``.npz`` — arrays ``x`` (N, F) / (N, H, W) / (N, C, H, W) and integer ``y`` (N,), optional string
  ``classes``; read with ``allow_pickle=False``.
* ``.csv`` — a header row, numeric feature columns and a label column (named ``label``, ``class``,
  ``target`` or ``y``; otherwise the last column).

The rules match the loaders in ``slicing.data`` that train workers use, so what admin accepts, training
can read.
"""

from __future__ import annotations

import csv
import io
import math
import re
import stat
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from easel.db.enums import DatasetFormat

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
SUFFIX_FORMATS = {".zip": DatasetFormat.IMAGE_ZIP, ".npz": DatasetFormat.NPZ, ".csv": DatasetFormat.CSV}
FORMAT_SUFFIXES = {fmt: suffix for suffix, fmt in SUFFIX_FORMATS.items()}
LABEL_COLUMNS = ("label", "class", "target", "y")
MAX_IMAGE_PIXELS = 64_000_000
MAX_CLASSES_LISTED = 1000
CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


class DatasetInvalid(ValueError):
    """The file is not a usable dataset; the message says why (shown to the uploader)."""


class UploadTooLarge(ValueError):
    """The upload is bigger than the configured limit."""


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int
    max_unpacked_bytes: int
    max_images: int


@dataclass
class DatasetInfo:
    format: DatasetFormat
    num_samples: int
    num_classes: int
    stats: dict[str, Any] = field(default_factory=dict)


def format_for(filename: str | None) -> DatasetFormat | None:
    """The dataset format a file name's extension stands for, or None."""
    if not filename:
        return None
    return SUFFIX_FORMATS.get(PurePosixPath(filename.replace("\\", "/")).suffix.lower())


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


def validate_dataset(path: Path, fmt: DatasetFormat, limits: Limits) -> DatasetInfo:
    if fmt == DatasetFormat.IMAGE_ZIP:
        return validate_image_zip(path, limits)
    if fmt == DatasetFormat.NPZ:
        return validate_npz(path, limits)
    return validate_csv(path, limits)


# -- image zips ---------------------------------------------------------------------------------------
def _parts(name: str) -> list[str]:
    return [p for p in re.split(r"[\\/]", name) if p not in ("", ".")]


def _check_entry(info: zipfile.ZipInfo) -> None:
    name = info.filename
    if name.startswith(("/", "\\")) or _DRIVE.match(name) or ".." in re.split(r"[\\/]", name):
        raise DatasetInvalid(f"entry {name!r} escapes the archive's folder (absolute path or '..'); refused")
    if "\x00" in name:
        raise DatasetInvalid(f"entry {name!r} has a NUL character in its name")
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        raise DatasetInvalid(f"entry {name!r} is a symbolic link; links are refused")
    if info.flag_bits & 0x1:
        raise DatasetInvalid(f"entry {name!r} is encrypted")


def _skipped(parts: list[str]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise DatasetInvalid(f"not a readable zip archive ({error})") from None


def validate_image_zip(path: Path, limits: Limits) -> DatasetInfo:
    from PIL import Image, UnidentifiedImageError

    with _open_zip(path) as archive:
        infos = archive.infolist()
        for info in infos:
            _check_entry(info)
        files = [(info, _parts(info.filename)) for info in infos if not info.is_dir()]
        files = [(info, parts) for info, parts in files if parts and not _skipped(parts)]
        if not files:
            raise DatasetInvalid("the archive contains no images (an empty dataset)")
        tops = {parts[0] for _, parts in files}
        if len(tops) == 1 and all(len(parts) >= 3 for _, parts in files):
            files = [(info, parts[1:]) for info, parts in files]
        entries: list[tuple[str, zipfile.ZipInfo]] = []
        for info, parts in files:
            if len(parts) < 2:
                raise DatasetInvalid(f"entry {info.filename!r} is not inside a class folder (expected class/image)")
            if PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
                raise DatasetInvalid(
                    f"entry {info.filename!r} is not an image (extension not in {sorted(IMAGE_SUFFIXES)})"
                )
            entries.append((parts[0], info))
        if len(entries) > limits.max_images:
            raise DatasetInvalid(f"the archive has {len(entries)} images, more than the limit of {limits.max_images}")
        unpacked = sum(info.file_size for _, info in entries)
        if unpacked > limits.max_unpacked_bytes:
            raise DatasetInvalid(
                f"the archive unpacks to {unpacked} bytes, more than the limit of {limits.max_unpacked_bytes}"
            )
        counts = Counter(label for label, _ in entries)
        if len(counts) < 2:
            raise DatasetInvalid(f"an image dataset needs at least 2 class folders, found {sorted(counts)}")
        sizes: set[tuple[int, int]] = set()
        modes: set[str] = set()
        for _label, info in entries:
            try:
                with archive.open(info) as member:
                    raw = member.read(info.file_size + 1)
                if len(raw) != info.file_size:
                    raise DatasetInvalid(f"entry {info.filename!r} is not the size its header says")
                with Image.open(io.BytesIO(raw)) as image:
                    width, height = image.size
                    if width * height > MAX_IMAGE_PIXELS:
                        raise DatasetInvalid(f"image {info.filename!r} is {width}x{height}, too many pixels")
                    image.load()
                    sizes.add((width, height))
                    modes.add(image.mode)
            except DatasetInvalid:
                raise
            except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError,
                    EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as error:
                raise DatasetInvalid(f"entry {info.filename!r} is not a readable image ({error})") from None
    classes = sorted(counts)
    widths = [w for w, _ in sizes]
    heights = [h for _, h in sizes]
    return DatasetInfo(
        DatasetFormat.IMAGE_ZIP, len(entries), len(classes),
        {
            "classes": classes[:MAX_CLASSES_LISTED],
            "class_counts": {c: counts[c] for c in classes[:MAX_CLASSES_LISTED]},
            "image_size_min": [min(widths), min(heights)],
            "image_size_max": [max(widths), max(heights)],
            "image_modes": sorted(modes),
            "unpacked_bytes": unpacked,
        },
    )


# -- npz ----------------------------------------------------------------------------------------------
def validate_npz(path: Path, limits: Limits) -> DatasetInfo:
    import numpy as np

    with _open_zip(path) as archive:
        members = archive.infolist()
        for info in members:
            _check_entry(info)
        unpacked = sum(info.file_size for info in members)
    if unpacked > limits.max_unpacked_bytes:
        raise DatasetInvalid(f"the arrays unpack to {unpacked} bytes, more than the limit of {limits.max_unpacked_bytes}")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as error:  # numpy raises OSError, ValueError, BadZipFile, EOFError, ...
        raise DatasetInvalid(f"not a readable .npz archive ({error})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetInvalid("a single .npy array, not an .npz archive with 'x' and 'y'")
    with archive:
        missing = {"x", "y"} - set(archive.files)
        if missing:
            raise DatasetInvalid(f"missing array(s) {sorted(missing)}; found {sorted(archive.files)[:20]}")
        try:
            x, y = archive["x"], archive["y"]
            classes = archive["classes"] if "classes" in archive.files else None
        except Exception as error:  # object arrays (pickle) are refused; corrupt members
            raise DatasetInvalid(f"cannot read the arrays ({error})") from None
    if x.dtype.kind not in "uif":
        raise DatasetInvalid(f"x must be numeric, got dtype {x.dtype}")
    if x.ndim not in (2, 3, 4):
        raise DatasetInvalid(f"x must be (N, F), (N, H, W) or (N, C, H, W), got shape {x.shape}")
    if len(x) == 0:
        raise DatasetInvalid("x is empty (an empty dataset)")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DatasetInvalid("x contains NaN or infinite values")
    if y.ndim != 1 or len(y) != len(x):
        raise DatasetInvalid(f"y must have shape ({len(x)},) to match x, got {y.shape}")
    if y.dtype.kind == "f":
        if not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise DatasetInvalid("y must hold integer class labels")
    elif y.dtype.kind not in "iu":
        raise DatasetInvalid(f"y must hold integer class labels, got dtype {y.dtype}")
    labels = y.astype(np.int64)
    if labels.min() < 0:
        raise DatasetInvalid(f"y has a negative label {labels.min()}")
    num_classes = int(labels.max()) + 1
    if classes is not None:
        if classes.ndim != 1 or classes.dtype.kind != "U":
            raise DatasetInvalid("classes must be a 1-D array of strings")
        if len(classes) < num_classes:
            raise DatasetInvalid(f"y uses label {num_classes - 1} but only {len(classes)} classes are named")
        names = [str(c) for c in classes]
        num_classes = len(names)
    else:
        names = [str(i) for i in range(num_classes)]
    counts = np.bincount(labels, minlength=num_classes)
    return DatasetInfo(
        DatasetFormat.NPZ, int(len(x)), num_classes,
        {
            "classes": names[:MAX_CLASSES_LISTED],
            "class_counts": {names[i]: int(counts[i]) for i in range(min(num_classes, MAX_CLASSES_LISTED))},
            "input_shape": [int(d) for d in x.shape[1:]],
            "dtype": str(x.dtype),
            "unpacked_bytes": unpacked,
        },
    )


# -- csv ----------------------------------------------------------------------------------------------
def _label_index(header: list[str]) -> int:
    lowered = [h.strip().lower() for h in header]
    for name in LABEL_COLUMNS:
        if name in lowered:
            return lowered.index(name)
    return len(header) - 1


def validate_csv(path: Path, limits: Limits) -> DatasetInfo:
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except OSError as error:
        raise DatasetInvalid(f"cannot read the file ({error})") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None or not any(h.strip() for h in header):
                raise DatasetInvalid("the CSV is empty (no header row)")
            if len(header) < 2:
                raise DatasetInvalid("the CSV needs at least one feature column and a label column")
            label_at = _label_index(header)
            counts: Counter[str] = Counter()
            rows = 0
            for row in reader:
                if not row or all(not cell.strip() for cell in row):
                    continue
                rows += 1
                if len(row) != len(header):
                    raise DatasetInvalid(
                        f"row {rows + 1} has {len(row)} columns, the header has {len(header)}"
                    )
                for column, cell in enumerate(row):
                    if column == label_at:
                        continue
                    try:
                        value = float(cell)
                    except ValueError:
                        raise DatasetInvalid(
                            f"row {rows + 1}, column {header[column]!r}: {cell[:40]!r} is not a number"
                        ) from None
                    if not math.isfinite(value):
                        raise DatasetInvalid(f"row {rows + 1}, column {header[column]!r} is not finite")
                label = row[label_at].strip()
                if not label:
                    raise DatasetInvalid(f"row {rows + 1} has an empty label")
                counts[label] += 1
                if rows > limits.max_images:
                    raise DatasetInvalid(f"the CSV has more than {limits.max_images} rows")
        except UnicodeDecodeError:
            raise DatasetInvalid("the CSV is not UTF-8 text") from None
        except csv.Error as error:
            raise DatasetInvalid(f"the CSV cannot be parsed ({error})") from None
    if rows == 0:
        raise DatasetInvalid("the CSV has a header but no rows (an empty dataset)")
    names = list(counts)
    numeric = all(re.fullmatch(r"-?\d+", n) for n in names)
    names.sort(key=(lambda n: int(n)) if numeric else None)
    return DatasetInfo(
        DatasetFormat.CSV, rows, len(names),
        {
            "classes": names[:MAX_CLASSES_LISTED],
            "class_counts": {n: counts[n] for n in names[:MAX_CLASSES_LISTED]},
            "label_column": header[label_at].strip(),
            "num_features": len(header) - 1,
            "feature_columns": [h.strip() for i, h in enumerate(header) if i != label_at][:MAX_CLASSES_LISTED],
        },
    )
