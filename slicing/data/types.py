"""The in-memory labelled dataset every loader returns, and adapters to plain tensors.

Reading dataset *files* is not slicing's job (the platform's ``easel.datasets`` owns the formats and
decodes them into arrays); :meth:`LabeledData.from_arrays` turns those arrays into tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import TensorDataset


@dataclass(frozen=True)
class LabeledData:
    """``x``: float32 (N, ...) features/images; ``y``: int64 (N,) labels indexing ``classes``."""

    x: Tensor
    y: Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}")
        if self.y.dim() != 1:
            raise ValueError(f"y must be 1-D, got shape {tuple(self.y.shape)}")

    @classmethod
    def from_arrays(cls, x: Any, y: Any, classes: Sequence[str]) -> LabeledData:
        """Tensors from decoded arrays (numpy or nested lists): ``x`` as float32, ``y`` as int64 labels."""
        return cls(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64),
                   tuple(str(c) for c in classes))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def tensor_dataset(self) -> TensorDataset:
        return TensorDataset(self.x, self.y)

    def subset(self, index: Tensor) -> LabeledData:
        return LabeledData(self.x[index], self.y[index], self.classes)

    def split(self, val_fraction: float = 0.2, seed: int = 0) -> tuple[LabeledData, LabeledData]:
        """Stratified random split into (train, validation): every class keeps its proportion."""
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        g = torch.Generator().manual_seed(seed)
        train_idx, val_idx = [], []
        for label in torch.unique(self.y):
            idx = torch.nonzero(self.y == label).flatten()
            idx = idx[torch.randperm(len(idx), generator=g)]
            n_val = int(round(len(idx) * val_fraction))
            val_idx.append(idx[:n_val])
            train_idx.append(idx[n_val:])
        train, val = torch.cat(train_idx), torch.cat(val_idx)
        if len(val) == 0 and len(train) > 1:  # tiny classes all rounded to zero: still validate on one
            pick = int(torch.randint(len(train), (1,), generator=g))
            val, train = train[pick : pick + 1], torch.cat([train[:pick], train[pick + 1 :]])
        if len(train) == 0 or len(val) == 0:
            raise ValueError(f"cannot split {len(self)} examples into non-empty train and validation sets")
        # Shuffle across classes so a sequential pass is not sorted by label.
        train = train[torch.randperm(len(train), generator=g)]
        val = val[torch.randperm(len(val), generator=g)]
        return self.subset(train), self.subset(val)


def is_tensor_data(data: Any) -> bool:
    """True for data held as whole tensors: ``LabeledData``, ``TensorDataset`` or an ``(x, y)`` pair."""
    if isinstance(data, LabeledData | TensorDataset):
        return True
    return isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, Tensor) for t in data)


def as_tensors(data: Any) -> tuple[Tensor, Tensor]:
    """``(x, y)`` tensors of a ``LabeledData``, a two-tensor ``TensorDataset`` or an ``(x, y)`` pair."""
    if isinstance(data, LabeledData):
        return data.x, data.y
    if isinstance(data, TensorDataset):
        if len(data.tensors) != 2:
            raise ValueError(f"expected a TensorDataset of (x, y), got {len(data.tensors)} tensors")
        return data.tensors[0], data.tensors[1]
    if is_tensor_data(data):
        return data[0], data[1]
    raise TypeError(
        f"expected LabeledData, TensorDataset or an (x, y) tensor pair, got {type(data).__name__}"
    )
