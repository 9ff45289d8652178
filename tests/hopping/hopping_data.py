"""Digits as ``.npz`` files for the hopping tests: the whole set, and the same set cut into shards."""

from __future__ import annotations

from pathlib import Path

from easel.datasets import ArrayDataset
from easel.datasets.sharding import shard_dataset, to_npz_bytes


def digits(limit: int | None = None) -> ArrayDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data.astype("float32") / 16.0).reshape(-1, 1, 8, 8)[:limit]
    return ArrayDataset(x, bunch.target.astype("int64")[:limit], tuple(str(c) for c in bunch.target_names))


def write_shards(folder: Path, data: ArrayDataset, shards: int, seed: int = 0) -> list[Path]:
    paths = []
    for k, part in enumerate(shard_dataset(data, shards, seed)):
        path = folder / f"shard-{k}.npz"
        path.write_bytes(to_npz_bytes(part))
        paths.append(path)
    return paths
