"""Explanations are *right*, not just produced: on data whose evidence is known, each method points at it.

A small sliced CNN is trained here (seconds, on CPU) to tell 16x16 noise with a bright 4x4 patch from noise
without; a sliced MLP to read one planted feature out of six. Grad-CAM must peak inside the patch at every
slice rate, LIME's top superpixel must overlap the patch, and LIME must rank the planted feature first.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic import (
    FEATURES,
    PATCH,
    PLANTED,
    RATES,
    inside,
    patch_images,
    probabilities,
    train_patch_cnn,
    train_vector_mlp,
    vectors,
)

from inference_worker.explain.methods import (
    ExplainError,
    gradcam,
    lime_image,
    lime_tabular,
    peak,
    target_layer,
)


@pytest.fixture(scope="module")
def patch_cnn() -> torch.nn.Module:
    torch.set_num_threads(1)
    return train_patch_cnn()


@pytest.fixture(scope="module")
def test_images() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return patch_images(60, seed=7)


@pytest.mark.parametrize("rate", RATES)
def test_gradcam_peaks_inside_the_patch_at_every_rate(patch_cnn, test_images, rate: float) -> None:
    x, y, corners = test_images
    positives = np.flatnonzero(y)
    hits = 0
    for i in positives:
        explanation = gradcam(patch_cnn, x[i], rate, target_class=1)
        heat = explanation.heatmap
        assert heat.shape == x[i].shape[-2:] and heat.min() >= 0.0 and heat.max() <= 1.0
        hits += inside(peak(heat), corners[i])
    assert hits >= 0.9 * len(positives), f"rate {rate}: the peak is in the patch for {hits}/{len(positives)}"


def test_gradcam_targets_the_last_activated_conv_with_a_map_at_each_width(patch_cnn, test_images) -> None:
    x = torch.from_numpy(test_images[0][:1])
    names = {rate: target_layer(patch_cnn, x, rate)[0] for rate in RATES}
    assert set(names.values()) == {"features.8"}  # the ReLU after the third (last) sliced convolution
    with pytest.raises(ExplainError, match="not a convolution"):
        target_layer(patch_cnn, x, 1.0, "classifier")


def test_gradcam_refuses_a_network_without_convolutions() -> None:
    mlp = train_vector_mlp()
    with pytest.raises(ExplainError, match="no convolution layer"):
        gradcam(mlp, np.zeros(FEATURES, dtype=np.float32), 1.0)


def test_lime_top_superpixel_overlaps_the_patch(patch_cnn, test_images) -> None:
    x, y, corners = test_images
    positives = np.flatnonzero(y)[:12]
    hits = 0
    for i in positives:
        explanation = lime_image(probabilities(patch_cnn, 0.5), x[i], num_samples=300, target_class=1)
        segments = explanation.details["segments"]
        top = explanation.details["superpixels"][0]["segment"]
        patch = np.zeros(segments.shape, dtype=bool)
        r, c = corners[i]
        patch[r:r + PATCH, c:c + PATCH] = True
        hits += bool((patch & (segments == top)).any())
        assert explanation.heatmap.shape == segments.shape and explanation.heatmap.max() == pytest.approx(1.0)
    assert hits >= 0.8 * len(positives), f"the top superpixel overlaps the patch for {hits}/{len(positives)}"


@pytest.mark.parametrize("rate", [1.0, 0.25])
def test_lime_ranks_the_planted_feature_first(rate: float) -> None:
    mlp = train_vector_mlp()
    x, _y = vectors(300, seed=3)
    firsts = [lime_tabular(probabilities(mlp, rate), x[i], x, num_samples=800, seed=i).details["ranking"][0]
              for i in range(5)]
    assert firsts == [f"x{PLANTED}"] * 5


def test_lime_classifier_function_sees_batches_not_single_samples(patch_cnn, test_images) -> None:
    sizes: list[int] = []
    run = probabilities(patch_cnn, 1.0)

    def counting(batch: np.ndarray) -> np.ndarray:
        sizes.append(len(batch))
        return run(batch)

    lime_image(counting, test_images[0][0], num_samples=200, batch_size=50)
    assert max(sizes) == 50 and sum(sizes) == 1 + 200  # the instance itself, then LIME's samples in batches
