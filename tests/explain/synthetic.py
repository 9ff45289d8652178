"""Synthetic data whose ground truth is known, and the small sliced nets the explanation tests train.

Images: 16x16 grey noise; class 1 has a bright 4x4 patch at a random position, class 0 has none. A correct
explanation of a positive points at the patch. Vectors: 6 noisy features; the label is whether feature
``PLANTED`` is positive, so a correct explanation ranks that feature first.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from slicing import SlicedConv2d, SlicedLinear, SlicedModule, fit, make_norm, sliced_mlp

SIZE, PATCH = 16, 4
RATES = (1.0, 0.75, 0.5, 0.25)
PLANTED, FEATURES = 3, 6


def patch_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x (n, 1, 16, 16), y (n,), corners (n, 2))``; corners of negatives are -1."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.35, size=(n, 1, SIZE, SIZE)).astype(np.float32)
    y = (rng.random(n) < 0.5).astype(np.int64)
    corners = np.full((n, 2), -1, dtype=np.int64)
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, SIZE - PATCH + 1, size=2)
        x[i, 0, r:r + PATCH, c:c + PATCH] = rng.uniform(0.85, 1.0)
        corners[i] = (r, c)
    return x, y, corners


def inside(point: tuple[int, int], corner: np.ndarray) -> bool:
    return bool(corner[0] <= point[0] < corner[0] + PATCH and corner[1] <= point[1] < corner[1] + PATCH)


class PatchCNN(SlicedModule):
    """Three sliced 3x3 convolutions at full resolution, global max pool, a sliced linear classifier."""

    def __init__(self, width: int = 32, groups: int = 4) -> None:
        super().__init__(RATES, groups)
        layers: list[nn.Module] = []
        in_ch, slice_in = 1, False
        for channels in (width, width, width):
            layers += [SlicedConv2d(in_ch, channels, 3, padding=1, slice_groups=groups, rates=RATES,
                                    slice_in=slice_in),
                       make_norm("group", channels, slice_groups=groups, rates=RATES), nn.ReLU()]
            in_ch, slice_in = channels, True
        self.features = nn.Sequential(*layers)
        self.classifier = SlicedLinear(in_ch, 2, slice_groups=groups, rates=RATES, slice_out=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.amax(self.features(x), dim=(2, 3)))


def train_patch_cnn() -> PatchCNN:
    torch.manual_seed(0)
    x, y, _ = patch_images(400, seed=1)
    net = PatchCNN()
    fit(net, (torch.from_numpy(x), torch.from_numpy(y)), epochs=8, batch_size=32, lr=0.05, device="cpu", seed=0)
    return net.eval()


def vectors(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES)).astype(np.float32)
    return x, (x[:, PLANTED] > 0).astype(np.int64)


def train_vector_mlp() -> nn.Module:
    torch.manual_seed(0)
    x, y = vectors(800, seed=2)
    net = sliced_mlp(num_classes=2, input_shape=(FEATURES,), width=32, depth=1, groups=4, rates=RATES)
    fit(net, (torch.from_numpy(x), torch.from_numpy(y)), epochs=6, batch_size=32, lr=0.05, device="cpu", seed=0)
    return net.eval()


def probabilities(net: nn.Module, rate: float):
    """A classifier function over numpy batches at ``rate`` (what a template's ``predict`` gives)."""
    from slicing import slice_rate

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad(), slice_rate(net, rate):
            return torch.softmax(net(torch.as_tensor(batch, dtype=torch.float32)), dim=1).numpy()

    return run
