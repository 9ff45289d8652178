"""``.npz`` datasets: arrays ``x`` (N, features) / (N, H, W) / (N, C, H, W) and ``y`` (N,) integer labels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .types import LabeledData


def _fail(path: Path, problem: str) -> ValueError:
    return ValueError(f"{path.name}: {problem}")


def load_npz(path: str | os.PathLike[str]) -> LabeledData:
    """Load and validate an ``.npz`` with ``x`` and ``y`` (and optional string ``classes``).

    ``uint8`` inputs are scaled to [0, 1]; ``(N, H, W)`` gets a channel axis. Pickled objects are never
    loaded (``allow_pickle=False``): an upload must not be able to run code.
    """
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises many types (OSError, ValueError, BadZipFile, EOFError)
        raise _fail(path, f"not a readable .npz archive ({exc})") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _fail(path, "is a single .npy array, not an .npz archive with 'x' and 'y'")
    with archive:
        missing = {"x", "y"} - set(archive.files)
        if missing:
            raise _fail(path, f"missing array(s) {sorted(missing)}; found {sorted(archive.files)}")
        try:
            x, y = archive["x"], archive["y"]
            classes = archive["classes"] if "classes" in archive.files else None
        except Exception as exc:  # object arrays need pickle, which we refuse; corrupt members
            raise _fail(path, f"cannot read arrays ({exc})") from exc
    return LabeledData(_features(path, x), *_labels(path, y, classes, len(x)))


def _features(path: Path, x: np.ndarray) -> torch.Tensor:
    if x.dtype.kind not in "uif":
        raise _fail(path, f"x must be numeric, got dtype {x.dtype}")
    if x.ndim not in (2, 3, 4):
        raise _fail(path, f"x must be (N, F), (N, H, W) or (N, C, H, W), got shape {x.shape}")
    if len(x) == 0:
        raise _fail(path, "x is empty (no rows)")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise _fail(path, "x contains NaN or infinite values")
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) / scale
    return t.unsqueeze(1) if t.dim() == 3 else t


def _labels(
    path: Path, y: np.ndarray, classes: np.ndarray | None, n: int
) -> tuple[torch.Tensor, tuple[str, ...]]:
    if y.ndim != 1 or len(y) != n:
        raise _fail(path, f"y must have shape ({n},) to match x, got {y.shape}")
    if y.dtype.kind == "f":
        if not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise _fail(path, "y must hold integer class labels")
    elif y.dtype.kind not in "iu":
        raise _fail(path, f"y must hold integer class labels, got dtype {y.dtype}")
    labels = y.astype(np.int64)
    if labels.min() < 0:
        raise _fail(path, f"y has a negative label {labels.min()}")
    n_classes = int(labels.max()) + 1
    if classes is None:
        names = tuple(str(i) for i in range(n_classes))
    else:
        if classes.ndim != 1 or classes.dtype.kind not in "U":
            raise _fail(path, "classes must be a 1-D array of strings")
        if len(classes) < n_classes:
            raise _fail(path, f"y uses label {n_classes - 1} but only {len(classes)} classes are named")
        names = tuple(str(c) for c in classes)
    return torch.from_numpy(labels), names
