"""The three dataset formats and every rule about them — one owner, imported by admin and by templates.

* ``.zip`` — class-named image folders (``cat/1.png``, ``dog/7.jpg``, optionally under one top folder).
  Every entry is checked before any is read: no absolute paths, ``..``, drive letters or symlinks
  (zip-slip), no encryption, image count and unpacked size under the limits, at least two classes; then
  every image is decoded (a file that is not a readable image refuses the whole archive).
* ``.npz`` — arrays ``x`` (N, F) / (N, H, W) / (N, C, H, W) and integer ``y`` (N,), optional string
  ``classes``; read with ``allow_pickle=False`` so an upload cannot run code.
* ``.csv`` — a header row, numeric feature columns and a label column (named ``label``, ``class``,
  ``target`` or ``y``; otherwise the last column).

Two entry points share the rules, so what admin accepts, training can read:
:func:`inspect_dataset` (admin's upload check: counts and stats, memory bounded) and :func:`read_dataset`
(decoded ``float32``/``int64`` numpy arrays for a template to turn into tensors). Both raise
:class:`DatasetInvalid` (a ``ValueError``) saying what is wrong. No torch here; numpy and Pillow are
imported only by the formats that need them.

Example::

    info = inspect_dataset(Path("pets.zip"), "IMAGE_ZIP", Limits(max_unpacked_bytes=1 << 30, max_images=50_000))
    data = read_dataset("pets.zip", image_size=(32, 32))   # data.x: (N, 3, 32, 32) float32 in [0, 1]
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import stat
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

# Format names are the values of ``easel.db.enums.DatasetFormat`` (kept as strings so that reading a
# dataset does not import the metadata schema).
FORMAT_SUFFIXES = {"IMAGE_ZIP": ".zip", "NPZ": ".npz", "CSV": ".csv"}
SUFFIX_FORMATS = {suffix: fmt for fmt, suffix in FORMAT_SUFFIXES.items()}
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
LABEL_COLUMNS = ("label", "class", "target", "y")
MAX_IMAGE_PIXELS = 64_000_000
MAX_IMAGE_FILE_BYTES = 256 << 20  # one image file of a zip is read whole: bounded
MAX_CLASSES = 100_000  # labels are class indices below this (counting them must stay small)
MAX_CLASSES_LISTED = 1000
RATIO_FLOOR_BYTES = 1 << 20  # the compression-ratio rule spares small members (a tiny blank file packs well)
NPY_CHUNK_BYTES = 8 << 20  # .npz arrays are checked this much at a time, never loaded whole
_DRIVE = re.compile(r"^[A-Za-z]:")


class DatasetInvalid(ValueError):
    """The file is not a usable dataset; the message says why (shown to the uploader)."""


@dataclass(frozen=True)
class Limits:
    """Caps that bound the memory and time a dataset can cost (admin passes its settings)."""

    max_unpacked_bytes: int = 2 << 30
    max_images: int = 200_000  # images of a zip, rows of a CSV
    max_compression_ratio: int = 100  # unpacked / packed bytes of one archive member (zip bombs)


@dataclass
class DatasetInfo:
    """What :func:`inspect_dataset` found: the format name, sizes and per-format stats."""

    format: str
    num_samples: int
    num_classes: int
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ArrayDataset:
    """A decoded dataset: ``x`` float32 (images (N, C, H, W) in [0, 1]), ``y`` int64 class indices."""

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]


def format_for(filename: str | os.PathLike[str] | None) -> str | None:
    """The format name a file name's extension stands for (``"NPZ"``), or None."""
    if not filename:
        return None
    return SUFFIX_FORMATS.get(PurePosixPath(str(filename).replace("\\", "/")).suffix.lower())


def inspect_dataset(path: Path, fmt: str, limits: Limits) -> DatasetInfo:
    """Check every rule of ``fmt`` on the file without keeping its data; counts and stats."""
    if fmt == "IMAGE_ZIP":
        return _inspect_image_zip(path, limits)
    if fmt == "NPZ":
        return _inspect_npz(path, limits)
    if fmt == "CSV":
        return _inspect_csv(path, limits)
    raise ValueError(f"fmt must be one of {sorted(FORMAT_SUFFIXES)}, got {fmt!r}")


def read_dataset(path: str | os.PathLike[str], *, image_size: tuple[int, int] | None = (32, 32),
                 grayscale: bool = False, limits: Limits | None = None) -> ArrayDataset:
    """Decode a dataset file (format from its extension) into arrays; images resized to ``image_size``
    (H, W) — with ``None`` they must all share one size. Errors name the file."""
    path = Path(path)
    fmt = format_for(path.name)
    limits = limits or Limits()
    try:
        if fmt == "IMAGE_ZIP":
            return _read_image_zip(path, limits, image_size, grayscale)
        if fmt == "NPZ":
            return _read_npz(path, limits)
        if fmt == "CSV":
            return _read_csv(path, limits)
    except DatasetInvalid as error:
        raise DatasetInvalid(f"{path.name}: {error}") from None
    raise DatasetInvalid(f"{path.name}: unknown dataset format {path.suffix!r} (use .zip, .npz or .csv)")


def _ordered(names: list[str]) -> list[str]:
    """Class names in index order: numerically if they are all integers, else by name."""
    numeric = all(re.fullmatch(r"-?\d+", n) for n in names)
    return sorted(names, key=(lambda n: int(n)) if numeric else None)


# -- image zips ---------------------------------------------------------------------------------------
def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise DatasetInvalid(f"not a readable zip archive ({error})") from None


def _check_entry(info: zipfile.ZipInfo) -> None:
    """Zip-slip and friends: refuse an entry that could write or read outside the archive's folder."""
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


def _check_sizes(infos: list[zipfile.ZipInfo], limits: Limits) -> int:
    """Declared sizes: the total unpacked bytes and each member's compression ratio; returns the total.

    ``zipfile`` never inflates a member past its declared size (and checks its CRC), so with the declared
    sizes bounded the actual ones are too.
    """
    unpacked = sum(info.file_size for info in infos)
    if unpacked > limits.max_unpacked_bytes:
        raise DatasetInvalid(f"the archive unpacks to {unpacked} bytes, more than the limit of "
                             f"{limits.max_unpacked_bytes}")
    for info in infos:
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > limits.max_compression_ratio * max(
                info.compress_size, 1):
            raise DatasetInvalid(
                f"entry {info.filename!r} unpacks {info.file_size // max(info.compress_size, 1)}-fold, more than "
                f"the limit of {limits.max_compression_ratio} (a zip bomb?); refused")
    return unpacked


def _parts(name: str) -> list[str]:
    return [p for p in re.split(r"[\\/]", name) if p not in ("", ".")]


def _skipped(parts: list[str]) -> bool:
    # macOS resource forks and hidden files (.DS_Store) are packaging noise, not data.
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def image_entries(archive: zipfile.ZipFile, limits: Limits) -> list[tuple[str, zipfile.ZipInfo]]:
    """``(class name, entry)`` of every image, after checking every entry and the archive's shape."""
    infos = archive.infolist()
    for info in infos:
        _check_entry(info)
    files = [(info, _parts(info.filename)) for info in infos if not info.is_dir()]
    files = [(info, parts) for info, parts in files if parts and not _skipped(parts)]
    if not files:
        raise DatasetInvalid("the archive contains no images (an empty dataset)")
    # A zipped folder puts everything under one top directory: look through it.
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
    _check_sizes([info for _, info in entries], limits)
    for _, info in entries:
        if info.file_size > MAX_IMAGE_FILE_BYTES:
            raise DatasetInvalid(f"entry {info.filename!r} is {info.file_size} bytes, more than an image may be "
                                 f"({MAX_IMAGE_FILE_BYTES})")
    labels = sorted({label for label, _ in entries})
    if len(labels) < 2:
        raise DatasetInvalid(f"an image dataset needs at least 2 class folders, found {labels}")
    return entries


def decode_image(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Image.Image:
    """The entry's image, fully decoded; :class:`DatasetInvalid` naming the entry if it cannot be."""
    from PIL import Image, UnidentifiedImageError

    try:
        with archive.open(info) as member:
            raw = member.read(info.file_size + 1)  # one byte more: a lying header shows
        if len(raw) != info.file_size:
            raise DatasetInvalid(f"entry {info.filename!r} is not the size its header says")
        image = Image.open(io.BytesIO(raw))
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise DatasetInvalid(f"image {info.filename!r} is {width}x{height}, too many pixels")
        image.load()
        return image
    except DatasetInvalid:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError,
            EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as error:
        raise DatasetInvalid(f"entry {info.filename!r} is not a readable image ({error})") from None


def _inspect_image_zip(path: Path, limits: Limits) -> DatasetInfo:
    with _open_zip(path) as archive:
        entries = image_entries(archive, limits)
        sizes: set[tuple[int, int]] = set()
        modes: set[str] = set()
        for _label, info in entries:
            image = decode_image(archive, info)
            sizes.add(image.size)
            modes.add(image.mode)
            image.close()
    counts = Counter(label for label, _ in entries)
    classes = sorted(counts)
    widths = [w for w, _ in sizes]
    heights = [h for _, h in sizes]
    return DatasetInfo(
        "IMAGE_ZIP", len(entries), len(classes),
        {
            "classes": classes[:MAX_CLASSES_LISTED],
            "class_counts": {c: counts[c] for c in classes[:MAX_CLASSES_LISTED]},
            "image_size_min": [min(widths), min(heights)],
            "image_size_max": [max(widths), max(heights)],
            "image_modes": sorted(modes),
            "unpacked_bytes": sum(info.file_size for _, info in entries),
        },
    )


def _read_image_zip(path: Path, limits: Limits, image_size: tuple[int, int] | None,
                    grayscale: bool) -> ArrayDataset:
    import numpy as np
    from PIL import Image

    with _open_zip(path) as archive:
        entries = image_entries(archive, limits)
        classes = tuple(sorted({label for label, _ in entries}))
        index = {c: i for i, c in enumerate(classes)}
        pixels: list[np.ndarray] = []
        for _label, info in entries:
            image = decode_image(archive, info).convert("L" if grayscale else "RGB")
            if image_size is not None:
                image = image.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
            pixels.append(np.asarray(image, dtype=np.uint8))
    if image_size is None and len({p.shape for p in pixels}) > 1:
        raise DatasetInvalid(f"images have different sizes {sorted({p.shape for p in pixels})}; "
                             "pass image_size to resize")
    x = np.stack(pixels).astype(np.float32) / 255.0
    x = x[:, None] if grayscale else x.transpose(0, 3, 1, 2)
    y = np.array([index[label] for label, _ in entries], dtype=np.int64)
    return ArrayDataset(np.ascontiguousarray(x), y, classes)


# -- npz ----------------------------------------------------------------------------------------------
@dataclass
class _NpzSummary:
    num_samples: int
    input_shape: tuple[int, ...]
    dtype: str
    counts: dict[int, int]
    classes: list[str] | None
    unpacked: int


def _npy_header(member: Any, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of an ``.npy`` member, from its header alone."""
    import numpy as np

    try:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise DatasetInvalid(f"array {name!r} uses .npy format version {version}, not 1.0 or 2.0")
    except DatasetInvalid:
        raise
    except Exception as error:  # numpy raises ValueError, EOFError, SyntaxError, ... on a bad header
        raise DatasetInvalid(f"array {name!r} has no readable .npy header ({error})") from None
    if dtype.hasobject:
        raise DatasetInvalid(f"array {name!r} holds Python objects (pickle); refused")
    return tuple(int(d) for d in shape), dtype


def _npy_chunks(member: Any, name: str, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """The array's elements, flat, a bounded chunk at a time; the member must hold exactly that many."""
    import numpy as np

    remaining = math.prod(shape) * dtype.itemsize
    step = max(dtype.itemsize, NPY_CHUNK_BYTES // dtype.itemsize * dtype.itemsize)
    while remaining > 0:
        raw = member.read(min(step, remaining))
        if not raw:
            raise DatasetInvalid(f"array {name!r} is shorter than its header's shape {shape}")
        if len(raw) % dtype.itemsize:  # a short read mid-element: complete it
            raw += member.read(dtype.itemsize - len(raw) % dtype.itemsize)
            if len(raw) % dtype.itemsize:
                raise DatasetInvalid(f"array {name!r} is shorter than its header's shape {shape}")
        remaining -= len(raw)
        yield np.frombuffer(raw, dtype=dtype)
    if member.read(1):
        raise DatasetInvalid(f"array {name!r} is longer than its header's shape {shape}")


def _scan_npz(path: Path, limits: Limits) -> _NpzSummary:
    """Every rule of an ``.npz``, checked while streaming its members: memory stays at a few chunks."""
    import numpy as np

    with _open_zip(path) as archive:
        infos = archive.infolist()
        for info in infos:
            _check_entry(info)
        unpacked = _check_sizes(infos, limits)
        members = {info.filename.removesuffix(".npy"): info for info in infos}
        missing = {"x", "y"} - set(members)
        if missing:
            raise DatasetInvalid(f"missing array(s) {sorted(missing)}; found {sorted(members)[:20]}")
        try:
            with archive.open(members["x"]) as member:
                x_shape, x_dtype = _npy_header(member, "x")
                if x_dtype.kind not in "uif":
                    raise DatasetInvalid(f"x must be numeric, got dtype {x_dtype}")
                if len(x_shape) not in (2, 3, 4):
                    raise DatasetInvalid(f"x must be (N, F), (N, H, W) or (N, C, H, W), got shape {x_shape}")
                if x_shape[0] == 0:
                    raise DatasetInvalid("x is empty (an empty dataset)")
                for chunk in _npy_chunks(member, "x", x_shape, x_dtype):
                    if x_dtype.kind == "f" and not np.isfinite(chunk).all():
                        raise DatasetInvalid("x contains NaN or infinite values")
            counts: Counter[int] = Counter()
            with archive.open(members["y"]) as member:
                y_shape, y_dtype = _npy_header(member, "y")
                if len(y_shape) != 1 or y_shape[0] != x_shape[0]:
                    raise DatasetInvalid(f"y must have shape ({x_shape[0]},) to match x, got {y_shape}")
                if y_dtype.kind not in "iuf":
                    raise DatasetInvalid(f"y must hold integer class labels, got dtype {y_dtype}")
                for chunk in _npy_chunks(member, "y", y_shape, y_dtype):
                    if y_dtype.kind == "f" and not (np.isfinite(chunk).all() and (chunk == np.round(chunk)).all()):
                        raise DatasetInvalid("y must hold integer class labels")
                    if chunk.size and chunk.min() < 0:
                        raise DatasetInvalid(f"y has a negative label {int(chunk.min())}")
                    if chunk.size and chunk.max() >= MAX_CLASSES:
                        raise DatasetInvalid(f"y has the label {int(chunk.max())}; labels are class indices "
                                             f"below {MAX_CLASSES}")
                    values, numbers = np.unique(chunk.astype(np.int64), return_counts=True)
                    counts.update(dict(zip(values.tolist(), numbers.tolist(), strict=True)))
            classes = None
            if "classes" in members:
                with archive.open(members["classes"]) as member:
                    c_shape, c_dtype = _npy_header(member, "classes")
                    if len(c_shape) != 1 or c_dtype.kind != "U" or c_shape[0] > MAX_CLASSES:
                        raise DatasetInvalid("classes must be a 1-D array of strings")
                    classes = [str(c) for chunk in _npy_chunks(member, "classes", c_shape, c_dtype) for c in chunk]
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
            if isinstance(error, DatasetInvalid):
                raise
            raise DatasetInvalid(f"not a readable .npz archive ({error})") from None
    num_classes = max(counts) + 1
    if classes is not None and len(classes) < num_classes:
        raise DatasetInvalid(f"y uses label {num_classes - 1} but only {len(classes)} classes are named")
    return _NpzSummary(x_shape[0], x_shape[1:], str(x_dtype), dict(counts), classes, unpacked)


def _class_names(summary: _NpzSummary) -> list[str]:
    if summary.classes is not None:
        return summary.classes
    return [str(i) for i in range(max(summary.counts) + 1)]


def _inspect_npz(path: Path, limits: Limits) -> DatasetInfo:
    summary = _scan_npz(path, limits)
    names = _class_names(summary)
    return DatasetInfo(
        "NPZ", summary.num_samples, len(names),
        {
            "classes": names[:MAX_CLASSES_LISTED],
            "class_counts": {names[i]: summary.counts.get(i, 0) for i in range(min(len(names), MAX_CLASSES_LISTED))},
            "input_shape": list(summary.input_shape),
            "dtype": summary.dtype,
            "unpacked_bytes": summary.unpacked,
        },
    )


def _read_npz(path: Path, limits: Limits) -> ArrayDataset:
    """Checked first (streaming, as admin does), then loaded: the arrays are then known to be what they say."""
    import numpy as np

    names = _class_names(_scan_npz(path, limits))
    try:
        with np.load(path, allow_pickle=False) as archive:
            x, y = archive["x"], archive["y"]
    except Exception as error:  # it passed the scan: only a file changed underneath gets here
        raise DatasetInvalid(f"cannot read the arrays ({error})") from None
    labels = y.astype(np.int64)
    scale = 255.0 if x.dtype == np.uint8 else 1.0  # uint8 pixels become [0, 1] like decoded images
    features = np.ascontiguousarray(x, dtype=np.float32) / np.float32(scale)
    if features.ndim == 3:  # (N, H, W) greyscale images get their channel axis
        features = features[:, None]
    return ArrayDataset(np.ascontiguousarray(features), labels, tuple(names))


# -- csv ----------------------------------------------------------------------------------------------
def label_column(header: list[str]) -> int:
    """Index of the label column: the first named ``label``/``class``/``target``/``y``, else the last."""
    lowered = [h.strip().lower() for h in header]
    for name in LABEL_COLUMNS:
        if name in lowered:
            return lowered.index(name)
    return len(header) - 1


def _scan_csv(path: Path, limits: Limits,
              on_row: Callable[[list[float], str], None] | None = None) -> tuple[list[str], int, Counter[str]]:
    """Check every row (streamed, so validation holds one row at a time); ``on_row`` gets each one."""
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except OSError as error:
        raise DatasetInvalid(f"cannot read the file ({error})") from None
    counts: Counter[str] = Counter()
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None or not any(h.strip() for h in header):
                raise DatasetInvalid("the CSV is empty (no header row)")
            if len(header) < 2:
                raise DatasetInvalid("the CSV needs at least one feature column and a label column")
            label_at = label_column(header)
            rows = 0
            for row in reader:
                if not row or all(not cell.strip() for cell in row):
                    continue
                rows += 1
                if rows > limits.max_images:
                    raise DatasetInvalid(f"the CSV has more than {limits.max_images} rows")
                if len(row) != len(header):
                    raise DatasetInvalid(f"row {rows + 1} has {len(row)} columns, the header has {len(header)}")
                features = []
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
                    features.append(value)
                label = row[label_at].strip()
                if not label:
                    raise DatasetInvalid(f"row {rows + 1} has an empty label")
                counts[label] += 1
                if on_row is not None:
                    on_row(features, label)
        except UnicodeDecodeError:
            raise DatasetInvalid("the CSV is not UTF-8 text") from None
        except csv.Error as error:
            raise DatasetInvalid(f"the CSV cannot be parsed ({error})") from None
    if not counts:
        raise DatasetInvalid("the CSV has a header but no rows (an empty dataset)")
    return header, label_at, counts


def _inspect_csv(path: Path, limits: Limits) -> DatasetInfo:
    header, label_at, counts = _scan_csv(path, limits)
    names = _ordered(list(counts))
    return DatasetInfo(
        "CSV", sum(counts.values()), len(names),
        {
            "classes": names[:MAX_CLASSES_LISTED],
            "class_counts": {n: counts[n] for n in names[:MAX_CLASSES_LISTED]},
            "label_column": header[label_at].strip(),
            "num_features": len(header) - 1,
            "feature_columns": [h.strip() for i, h in enumerate(header) if i != label_at][:MAX_CLASSES_LISTED],
        },
    )


def _read_csv(path: Path, limits: Limits) -> ArrayDataset:
    import numpy as np

    features: list[list[float]] = []
    labels: list[str] = []

    def keep(row: list[float], label: str) -> None:
        features.append(row)
        labels.append(label)

    _, _, counts = _scan_csv(path, limits, keep)
    names = _ordered(list(counts))
    index = {name: i for i, name in enumerate(names)}
    x = np.asarray(features, dtype=np.float32)
    y = np.asarray([index[label] for label in labels], dtype=np.int64)
    return ArrayDataset(x, y, tuple(names))


__all__ = [
    "FORMAT_SUFFIXES", "IMAGE_SUFFIXES", "LABEL_COLUMNS", "SUFFIX_FORMATS", "ArrayDataset", "DatasetInfo",
    "DatasetInvalid", "Limits", "decode_image", "format_for", "image_entries", "inspect_dataset",
    "label_column", "read_dataset",
]
