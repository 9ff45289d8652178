"""Instances to predict, read from files or stdin, as the nested lists ``Client.predict`` sends.

* JSON (a ``.json`` file, or stdin when no file or ``-`` is given): a list of instances, or
  ``{"instances": [...]}``. Needs nothing beyond the standard library.
* ``.npy``: an array whose first axis is the instances; ``.npz``: its array ``x`` (like a dataset file).
  Needs numpy (``pip install 'easel-sdk[files]'``); pickled objects are never loaded.
* Images (``.png``, ``.jpg``, ...): one instance each, channels first (C, H, W), values in [0, 1] —
  the layout the built-in templates train on. Needs Pillow (and numpy).

Example: ``read_instances(["digits.npy"], sys.stdin)`` → ``[[[0.0, 0.1, ...], ...], ...]``
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
EXTRA = "pip install 'easel-sdk[files]'"


def read_instances(files: Sequence[str], stdin: IO[str], *, size: Sequence[int] | None = None,
                   grayscale: bool = False) -> list[Any]:
    """Every instance of ``files`` in order (stdin's JSON for ``-`` or no files); ``ValueError`` if bad."""
    instances: list[Any] = []
    for name in files or ["-"]:
        if name == "-":
            instances += _from_json(stdin.read(), "stdin")
            continue
        path = Path(name)
        suffix = path.suffix.lower()
        if not path.is_file():
            raise ValueError(f"{name}: no such file")
        if suffix == ".json":
            instances += _from_json(path.read_text(), name)
        elif suffix in (".npy", ".npz"):
            instances += _from_array_file(path)
        elif suffix in IMAGE_SUFFIXES:
            instances.append(_from_image(path, size, grayscale))
        else:
            raise ValueError(f"{name}: cannot read {suffix or 'a file without an extension'!r} "
                             f"(use .json, .npy, .npz or an image)")
    if not instances:
        raise ValueError("no instances to predict")
    return instances


def _from_json(text: str, source: str) -> list[Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{source}: not JSON ({error})") from None
    if isinstance(data, dict) and "instances" in data:
        data = data["instances"]
    if not isinstance(data, list):
        raise ValueError(f"{source}: expected a list of instances or {{\"instances\": [...]}}")
    return data


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        raise ValueError(f"reading .npy/.npz files and images needs numpy: {EXTRA}") from None
    return numpy


def _from_array_file(path: Path) -> list[Any]:
    np = _numpy()
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as error:  # numpy raises OSError, ValueError, BadZipFile, ...
        raise ValueError(f"{path.name}: not a readable array file ({error})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            if "x" not in loaded.files:
                raise ValueError(f"{path.name}: no array 'x' (found {sorted(loaded.files)[:10]})")
            loaded = loaded["x"]
    if loaded.ndim < 1 or loaded.dtype.kind not in "uif":
        raise ValueError(f"{path.name}: expected a numeric array of instances, got {loaded.dtype} {loaded.shape}")
    return loaded.tolist()


def _from_image(path: Path, size: Sequence[int] | None, grayscale: bool) -> Any:
    np = _numpy()
    try:
        from PIL import Image
    except ImportError:
        raise ValueError(f"reading images needs Pillow: {EXTRA}") from None
    try:
        with Image.open(path) as image:
            image = image.convert("L" if grayscale else "RGB")
            if size:
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"{path.name}: not a readable image ({error})") from None
    pixels = pixels[None] if grayscale else pixels.transpose(2, 0, 1)
    return pixels.tolist()
