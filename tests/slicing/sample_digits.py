"""scikit-learn's bundled digits as a ``LabeledData``: real data for the slicing tests, no download.

It lives with the tests (not in the pure library) so that ``slicing`` imports torch alone.
"""

from __future__ import annotations

from slicing import LabeledData


def load_digits(*, as_image: bool = True) -> LabeledData:
    """1,797 digits scaled to [0, 1]: ``(N, 1, 8, 8)`` images, or ``(N, 64)`` with ``as_image=False``."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = bunch.data.astype("float32") / 16.0
    return LabeledData.from_arrays(x.reshape(-1, 1, 8, 8) if as_image else x, bunch.target, bunch.target_names)
