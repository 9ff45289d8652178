"""Read a dataset file (image zip, ``.npz`` or CSV) into ``slicing.data.LabeledData`` (imports torch)."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

LABEL_COLUMNS = ("label", "class", "target", "y")


def load_dataset(path: str | Path, *, image_size: tuple[int, int] = (32, 32)) -> Any:
    """Dispatch on the file's extension; each loader raises ValueError on a bad file."""
    from slicing import load_image_zip, load_npz

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return load_image_zip(path, image_size=image_size)
    if suffix == ".npz":
        return load_npz(path)
    if suffix == ".csv":
        return load_csv(path)
    raise ValueError(f"{path.name}: unknown dataset format {suffix!r} (use .zip, .npz or .csv)")


def load_csv(path: str | Path) -> Any:
    """Numeric feature columns and a label column (``label``/``class``/``target``/``y``, else the last)."""
    import torch

    from slicing import LabeledData

    path = Path(path)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise ValueError(f"{path.name}: needs a header row and at least one data row")
    header, body = rows[0], rows[1:]
    lowered = [h.strip().lower() for h in header]
    label_at = next((lowered.index(n) for n in LABEL_COLUMNS if n in lowered), len(header) - 1)
    labels = [row[label_at].strip() for row in body]
    names = sorted(set(labels), key=(lambda n: int(n)) if all(re.fullmatch(r"-?\d+", n) for n in labels) else None)
    index = {name: i for i, name in enumerate(names)}
    try:
        x = torch.tensor([[float(c) for i, c in enumerate(row) if i != label_at] for row in body], dtype=torch.float32)
    except ValueError as error:
        raise ValueError(f"{path.name}: a feature is not a number ({error})") from None
    y = torch.tensor([index[label] for label in labels], dtype=torch.int64)
    return LabeledData(x, y, tuple(names))
