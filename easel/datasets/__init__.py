"""Dataset files: the formats Easel accepts and their rules (``formats``), torch-free.

Admin validates uploads with :func:`inspect_dataset`; templates read files into numpy arrays with
:func:`read_dataset` and build their tensors from those arrays.
"""

from easel.datasets.formats import (
    FORMAT_SUFFIXES,
    IMAGE_SUFFIXES,
    LABEL_COLUMNS,
    SUFFIX_FORMATS,
    ArrayDataset,
    DatasetInfo,
    DatasetInvalid,
    Limits,
    format_for,
    inspect_dataset,
    read_dataset,
)

__all__ = [
    "FORMAT_SUFFIXES", "IMAGE_SUFFIXES", "LABEL_COLUMNS", "SUFFIX_FORMATS", "ArrayDataset", "DatasetInfo",
    "DatasetInvalid", "Limits", "format_for", "inspect_dataset", "read_dataset",
]
