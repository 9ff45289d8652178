"""The heat map drawn over the input, as a PNG (``pytorch_grad_cam``'s colour overlay, upscaled for small
inputs so an 8x8 digit is visible; LIME's superpixel borders marked with scikit-image)."""

from __future__ import annotations

import io

import numpy as np

MIN_SIDE = 128  # pixels: smaller inputs are enlarged (nearest neighbour, so pixels stay visible)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) of any range → (H, W, 3) float32 in [0, 1]."""
    picture = image[0] if image.ndim == 3 and image.shape[0] == 1 else image
    if picture.ndim == 3:
        picture = np.moveaxis(picture[:3], 0, -1)
    picture = picture.astype(np.float32)
    low, high = float(picture.min()), float(picture.max())
    picture = (picture - low) / (high - low) if high > low else np.zeros_like(picture)
    return np.repeat(picture[..., None], 3, axis=-1) if picture.ndim == 2 else picture


def overlay_png(image: np.ndarray, heatmap: np.ndarray, segments: np.ndarray | None = None) -> bytes:
    """PNG bytes of ``heatmap`` (H, W in [0, 1]) over ``image``; ``segments`` (H, W labels) draws borders."""
    from PIL import Image
    from pytorch_grad_cam.utils.image import show_cam_on_image

    rgb = _as_rgb(np.asarray(image))
    mixed = show_cam_on_image(rgb, np.asarray(heatmap, dtype=np.float32), use_rgb=True, image_weight=0.5)
    scale = max(1, -(-MIN_SIDE // min(mixed.shape[:2])))
    picture = Image.fromarray(mixed).resize((mixed.shape[1] * scale, mixed.shape[0] * scale), Image.NEAREST)
    if segments is not None:
        from skimage.segmentation import mark_boundaries

        big = np.kron(np.asarray(segments), np.ones((scale, scale), dtype=np.asarray(segments).dtype))
        marked = mark_boundaries(np.asarray(picture, dtype=np.float32) / 255.0, big, color=(1.0, 1.0, 1.0))
        picture = Image.fromarray((marked * 255).astype(np.uint8))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
