"""The labelled dataset type training takes.

Importing this package has no side effects. Dataset
files (image zips, ``.npz``, CSV) are decoded by the platform (``easel.datasets``) into arrays, which
:meth:`LabeledData.from_arrays` turns into tensors.
"""

from .types import LabeledData, as_tensors, is_tensor_data

__all__ = [
    "LabeledData",
    "as_tensors",
    "is_tensor_data",
]
