"""The labelled-data type: built from decoded arrays, the bundled digits, the stratified split.

Reading dataset files is tested with their one owner, ``easel.datasets`` (tests/foundation/test_dataset_formats.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sample_digits import load_digits

from slicing import LabeledData


def test_from_arrays_makes_float_features_and_int_labels():
    data = LabeledData.from_arrays(np.ones((3, 1, 2, 2), dtype=np.float64), np.array([0, 2, 1], dtype=np.int32),
                                   np.array(["a", "b", "c"]))
    assert data.x.dtype == torch.float32 and data.y.dtype == torch.int64
    assert data.input_shape == (1, 2, 2) and data.classes == ("a", "b", "c") and data.y.tolist() == [0, 2, 1]
    with pytest.raises(ValueError, match="x has 3 rows but y has 2"):
        LabeledData.from_arrays(np.ones((3, 2)), np.array([0, 1]), ("a", "b"))


def test_digits_and_stratified_split():
    data = load_digits()
    assert isinstance(data, LabeledData)
    assert data.x.shape == (1797, 1, 8, 8) and data.num_classes == 10
    assert float(data.x.min()) >= 0.0 and float(data.x.max()) == 1.0
    assert load_digits(as_image=False).input_shape == (64,)
    train, val = data.split(0.2, seed=0)
    assert len(train) + len(val) == 1797
    per_class = torch.bincount(val.y, minlength=10).float() / torch.bincount(data.y, minlength=10).float()
    assert torch.all((per_class - 0.2).abs() < 0.02)  # every class keeps its share
    train2, _ = data.split(0.2, seed=0)
    assert torch.equal(train.y, train2.y)  # deterministic under a seed


def test_split_of_tiny_classes_still_validates_on_something():
    data = LabeledData(torch.randn(20, 3), torch.arange(10).repeat(2), tuple("abcdefghij"))
    train, val = data.split(0.1, seed=0)  # 10% of 2 per class rounds to 0 everywhere
    assert len(val) == 1 and len(train) == 19
    with pytest.raises(ValueError, match="cannot split 1 examples"):
        LabeledData(torch.randn(1, 3), torch.zeros(1, dtype=torch.int64), ("a",)).split(0.5)
