"""Dataset loaders shared by training, tests and the admin service's upload validation.

Importing this package has no side effects; scikit-learn is only imported by ``load_digits``.
"""

from .digits import load_digits
from .image_zip import IMAGE_SUFFIXES, load_image_zip
from .npz import load_npz
from .types import LabeledData, as_tensors, is_tensor_data

__all__ = [
    "IMAGE_SUFFIXES",
    "LabeledData",
    "as_tensors",
    "is_tensor_data",
    "load_digits",
    "load_image_zip",
    "load_npz",
]
