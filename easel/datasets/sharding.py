"""Shuffle a dataset once and cut it into shards, one ``.npz`` file each (model hopper parallelism).

In MOP mode each train worker reads only its own shard; a unit of a trial is one pass over one shard. The
shards are decoded arrays (images already at the template's size), so a shard file is read like any
``.npz`` dataset. Shard ``k`` of ``n`` holds rows ``order[k::n]`` of one seeded permutation: sizes differ
by at most one, and the same seed always gives the same shards.
"""

from __future__ import annotations

import io
import os

from easel.datasets.formats import ArrayDataset, read_dataset


def shard_order(num_samples: int, shards: int, seed: int) -> list[list[int]]:
    """Row indices of each shard: one seeded permutation dealt round-robin."""
    import numpy as np

    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    if num_samples < shards:
        raise ValueError(f"cannot cut {num_samples} samples into {shards} non-empty shards")
    order = np.random.default_rng(seed).permutation(num_samples)
    return [order[k::shards].tolist() for k in range(shards)]


def shard_dataset(data: ArrayDataset, shards: int, seed: int) -> list[ArrayDataset]:
    return [ArrayDataset(data.x[rows], data.y[rows], data.classes) for rows in shard_order(len(data.y), shards, seed)]


def to_npz_bytes(data: ArrayDataset) -> bytes:
    """An ``.npz`` that :func:`easel.datasets.read_dataset` reads back as ``data``."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, x=data.x, y=data.y, classes=np.array(data.classes, dtype=np.str_))
    return buffer.getvalue()


def shard_file(path: str | os.PathLike[str], shards: int, seed: int, *,
               image_size: tuple[int, int] | None = (32, 32)) -> list[ArrayDataset]:
    """Read the dataset at ``path`` and cut it into ``shards`` (write each with :func:`to_npz_bytes`)."""
    return shard_dataset(read_dataset(path, image_size=image_size), shards, seed)


__all__ = ["shard_dataset", "shard_file", "shard_order", "to_npz_bytes"]
