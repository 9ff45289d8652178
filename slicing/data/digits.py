"""scikit-learn's bundled 8x8 handwritten digits: a real dataset that needs no download."""

from __future__ import annotations

import torch

from .types import LabeledData


def load_digits(*, as_image: bool = True) -> LabeledData:
    """1,797 digits scaled to [0, 1]: ``(N, 1, 8, 8)`` images, or ``(N, 64)`` with ``as_image=False``."""
    from sklearn.datasets import load_digits as _sk_load_digits  # lazy: only this loader needs sklearn

    bunch = _sk_load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float32) / 16.0
    x = x.reshape(-1, 1, 8, 8) if as_image else x
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    return LabeledData(x, y, tuple(str(c) for c in bunch.target_names))
