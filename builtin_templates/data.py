"""Read a dataset file into ``slicing.LabeledData``: ``easel.datasets`` decodes, slicing makes tensors."""

from __future__ import annotations

import os
from typing import Any


def load_dataset(path: str | os.PathLike[str], *, image_size: tuple[int, int] = (32, 32)) -> Any:
    """Image zip, ``.npz`` or CSV by extension; ``easel.datasets.DatasetInvalid`` (a ValueError) if bad."""
    from easel.datasets import read_dataset
    from slicing import LabeledData

    arrays = read_dataset(path, image_size=image_size)
    return LabeledData.from_arrays(arrays.x, arrays.y, arrays.classes)
