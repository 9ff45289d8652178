"""Zip archives of class-named image folders: ``cat/1.png, dog/7.jpg`` (optionally under one top folder)."""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .types import LabeledData

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
_DRIVE = re.compile(r"^[A-Za-z]:")


def _fail(path: Path, problem: str) -> ValueError:
    return ValueError(f"{path.name}: {problem}")


def _parts(name: str) -> list[str]:
    return [p for p in re.split(r"[\\/]", name) if p not in ("", ".")]


def _check_safe(path: Path, name: str) -> None:
    """Zip-slip guard: refuse absolute paths, drive letters and '..' before touching any entry."""
    if name.startswith(("/", "\\")) or _DRIVE.match(name) or ".." in re.split(r"[\\/]", name):
        raise _fail(path, f"entry {name!r} escapes the archive root (absolute path or '..')")


def _skipped(parts: list[str]) -> bool:
    # macOS resource forks and hidden files (.DS_Store) are packaging noise, not data.
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def load_image_zip(
    path: str | os.PathLike[str],
    *,
    image_size: tuple[int, int] | None = (32, 32),
    grayscale: bool = False,
    max_images: int = 200_000,
    max_total_bytes: int = 2 << 30,
) -> LabeledData:
    """Load ``class_name/image`` entries into ``(N, C, H, W)`` floats in [0, 1]; classes sorted by name.

    Images are resized to ``image_size`` (H, W); with ``None`` they must all share one size.
    Every entry is checked before any is decoded; any bad entry fails the whole archive.
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _fail(path, f"not a readable zip archive ({exc})") from exc
    with archive:
        entries = _list_images(path, archive.infolist(), max_images, max_total_bytes)
        classes = tuple(sorted({label for label, _ in entries}))
        if len(classes) < 2:
            raise _fail(path, f"needs at least 2 class folders, found {list(classes)}")
        index = {c: i for i, c in enumerate(classes)}
        images, labels = [], []
        for label, info in entries:
            images.append(_decode(path, archive, info, image_size, grayscale))
            labels.append(index[label])
    if image_size is None:
        sizes = {img.shape for img in images}
        if len(sizes) > 1:
            raise _fail(path, f"images have different sizes {sorted(sizes)}; pass image_size to resize")
    x = torch.from_numpy(np.stack(images)).float().div_(255.0)
    x = x.unsqueeze(1) if grayscale else x.permute(0, 3, 1, 2).contiguous()
    return LabeledData(x, torch.tensor(labels, dtype=torch.int64), classes)


def _list_images(
    path: Path, infos: list[zipfile.ZipInfo], max_images: int, max_total_bytes: int
) -> list[tuple[str, zipfile.ZipInfo]]:
    for info in infos:
        _check_safe(path, info.filename)
    files = [(info, _parts(info.filename)) for info in infos if not info.is_dir()]
    files = [(info, parts) for info, parts in files if not _skipped(parts)]
    if not files:
        raise _fail(path, "contains no images")
    # A zipped folder puts everything under one top directory: look through it.
    tops = {parts[0] for _, parts in files}
    if len(tops) == 1 and all(len(parts) >= 3 for _, parts in files):
        files = [(info, parts[1:]) for info, parts in files]
    entries = []
    for info, parts in files:
        if len(parts) < 2:
            raise _fail(path, f"entry {info.filename!r} is not inside a class folder")
        if Path(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
            raise _fail(
                path, f"entry {info.filename!r} is not an image (extension not in {sorted(IMAGE_SUFFIXES)})"
            )
        entries.append((parts[0], info))
    if len(entries) > max_images:
        raise _fail(path, f"has {len(entries)} images, more than the limit of {max_images}")
    total = sum(info.file_size for _, info in entries)
    if total > max_total_bytes:
        raise _fail(path, f"unpacks to {total} bytes, more than the limit of {max_total_bytes}")
    return entries


def _decode(
    path: Path,
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    image_size: tuple[int, int] | None,
    grayscale: bool,
) -> np.ndarray:
    try:
        raw = archive.read(info)
        with Image.open(io.BytesIO(raw)) as img:
            img = img.convert("L" if grayscale else "RGB")
            if image_size is not None:
                img = img.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        ValueError,
        SyntaxError,
        zipfile.BadZipFile,
    ) as exc:
        raise _fail(path, f"entry {info.filename!r} is not a readable image ({exc})") from exc
