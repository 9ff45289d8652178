"""A larger synthetic image set for the benchmarks, generated deterministically from a seed ("glyphs").

Each of ``classes`` classes is a glyph of ``strokes`` line segments with random end points (drawn once from the
seed). An image of a class renders its glyph with every end point jittered (Gaussian, ``jitter`` pixels), the
whole glyph shifted by up to ``shift`` pixels, a random stroke width and contrast, one clutter stroke that
belongs to no class, and Gaussian pixel noise — so a flattening MLP has to learn small translations and
deformations, and widths, depths and learning rates end at visibly different accuracies. Pixels are stored as
``uint8`` (read back as [0, 1], as decoded images are); the same seed gives the same files, byte for byte.

Why not just more digits: scikit-learn's digits are 1,797 images of 8×8, where an epoch of the sliced MLP costs
0.02–0.3 s and the platform's per-stretch overhead is a large share of a unit; at 28×28 and a few thousand
images an epoch costs seconds, as the units of a real search do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def render_glyphs(labels: np.ndarray, glyphs: np.ndarray, rng: np.random.Generator, size: int, *,
                  jitter: float, shift: int, noise: float) -> np.ndarray:
    """Images (N, size, size) in [0, 1] of the glyphs ``glyphs[label]`` (classes × strokes × 2 end points × xy)."""
    n, strokes = len(labels), glyphs.shape[1] + 1  # + one clutter stroke per image
    ends = glyphs[labels] + rng.normal(0.0, jitter, size=(n, strokes - 1, 2, 2))
    clutter = rng.uniform(0, size - 1, size=(n, 1, 2, 2))
    ends = np.concatenate([ends, clutter], axis=1) + rng.integers(-shift, shift + 1, size=(n, 1, 1, 2))
    a, b = ends[:, :, 0, None, :], ends[:, :, 1, None, :]  # (n, strokes, 1, xy)
    yy, xx = np.mgrid[0:size, 0:size]
    pixels = np.stack([xx.ravel(), yy.ravel()], axis=-1).astype(np.float64)[None, None]  # (1, 1, P, xy)
    along = b - a
    t = np.clip(((pixels - a) * along).sum(-1) / np.maximum((along * along).sum(-1), 1e-9), 0.0, 1.0)
    distance2 = ((pixels - (a + t[..., None] * along)) ** 2).sum(-1)  # (n, strokes, P)
    width = rng.uniform(0.7, 1.4, size=(n, 1, 1))
    ink = np.exp(-distance2 / (2 * width**2)).max(axis=1)  # (n, P): the strokes' union
    contrast = rng.uniform(0.5, 1.0, size=(n, 1))
    image = contrast * ink + rng.normal(0.0, noise, size=ink.shape)
    return np.clip(image, 0.0, 1.0).reshape(n, size, size)


def write_glyphs(folder: Path, *, seed: int = 0, train: int = 8000, val: int = 1000, classes: int = 10,
                 strokes: int = 3, size: int = 28, jitter: float = 1.2, shift: int = 3,
                 noise: float = 0.25) -> tuple[Path, Path]:
    """``train.npz`` and ``val.npz`` in ``folder`` (x: N×1×size×size uint8, y: int64), balanced classes in
    random order; returns their paths."""
    if train < classes or val < classes:
        raise ValueError(f"train and val need at least one image per class ({classes}), not {train} / {val}")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, not {size}")
    rng = np.random.default_rng(seed)
    margin = shift + 2
    glyphs = rng.uniform(margin, size - 1 - margin, size=(classes, strokes, 2, 2))
    paths = []
    for name, count in (("train", train), ("val", val)):
        labels = rng.permutation(np.arange(count) % classes)
        images = np.concatenate([  # in chunks: memory stays bounded by the chunk, not the set
            render_glyphs(labels[i:i + 500], glyphs, rng, size, jitter=jitter, shift=shift, noise=noise)
            for i in range(0, count, 500)])
        path = folder / f"{name}.npz"
        np.savez(path, x=np.round(images * 255).astype(np.uint8)[:, None], y=labels.astype(np.int64))
        paths.append(path)
    return paths[0], paths[1]
