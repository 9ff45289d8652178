"""The benchmarks' synthetic image set (``benchmarks/synthetic_images.py``): deterministic from its seed, read
back by the platform's own reader, balanced, and learnable (the classes are told apart well above chance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.synthetic_images import write_glyphs
from easel.datasets import read_dataset

SMALL = {"train": 400, "val": 200}


def test_same_seed_same_bytes_other_seed_other_images(tmp_path: Path) -> None:
    first, again, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for folder in (first, again, other):
        folder.mkdir()
    write_glyphs(first, seed=3, **SMALL)
    write_glyphs(again, seed=3, **SMALL)
    write_glyphs(other, seed=4, **SMALL)
    for name in ("train.npz", "val.npz"):
        assert (first / name).read_bytes() == (again / name).read_bytes()
        assert (first / name).read_bytes() != (other / name).read_bytes()


def test_read_back_as_balanced_grey_images(tmp_path: Path) -> None:
    train, val = write_glyphs(tmp_path, **SMALL)
    data = read_dataset(train)
    assert data.x.shape == (400, 1, 28, 28) and data.x.dtype == np.float32
    assert data.x.min() >= 0.0 and data.x.max() <= 1.0
    assert np.bincount(data.y).tolist() == [40] * 10
    assert len(read_dataset(val).y) == 200


def test_classes_are_told_apart_well_above_chance(tmp_path: Path) -> None:
    """Nearest class mean on the raw pixels: far above chance (0.1), far from perfect — there is something for
    a network's width, depth and learning rate to win."""
    train, val = (read_dataset(path) for path in write_glyphs(tmp_path, train=2000, val=500))
    means = np.stack([train.x[train.y == k].reshape(-1, 28 * 28).mean(0) for k in range(10)])
    distances = ((val.x.reshape(-1, 1, 28 * 28) - means[None]) ** 2).sum(-1)
    accuracy = float((distances.argmin(1) == val.y).mean())
    assert 0.3 < accuracy < 0.95


@pytest.mark.parametrize(("arguments", "named"), [({"train": 5}, "train"), ({"size": 4}, "size")])
def test_bad_arguments_are_named(tmp_path: Path, arguments: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        write_glyphs(tmp_path, **{**SMALL, **arguments})
