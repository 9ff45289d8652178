"""The labelled dataset type training takes, and the bundled digits.

Importing this package has no side effects; scikit-learn is only imported by ``load_digits``. Dataset
files (image zips, ``.npz``, CSV) are decoded by the platform (``easel.datasets``) into arrays, which
:meth:`LabeledData.from_arrays` turns into tensors.
"""

from .digits import load_digits
from .types import LabeledData, as_tensors, is_tensor_data

__all__ = [
    "LabeledData",
    "as_tensors",
    "is_tensor_data",
    "load_digits",
]
