"""Grad-CAM (``pytorch_grad_cam``) and LIME (``lime``) on a deployed template, at any slice rate.

Both work on what a template offers: LIME only needs :meth:`BaseModel.predict` (class probabilities), which
it is given as a classifier function that pushes LIME's perturbed samples through the model in mini-batches;
Grad-CAM needs gradients, so it asks the template for its torch network (:meth:`BaseModel.torch_network`)
and targets the last convolution that still has a spatial map at the requested width (a sliced convolution
at rate ``r`` outputs only its first ``r`` share of channels; the hooks see exactly those).

The heavy imports (torch, lime, scikit-image, pytorch_grad_cam) happen inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ProbabilityFn = Callable[[np.ndarray], np.ndarray]  # (N, *input_shape) float32 -> (N, classes)


class ExplainError(ValueError):
    """The explanation cannot be made for this model or input (the message says why)."""


@dataclass
class Explanation:
    """What one explanation produced: the prediction it explains and the evidence, as arrays."""

    method: str
    class_index: int
    probabilities: list[float]
    heatmap: np.ndarray | None = None  # (H, W) in [0, 1], images only
    weights: list[float] | None = None  # one per feature, vectors only
    details: dict[str, Any] = field(default_factory=dict)


    @classmethod
    def from_plain(cls, data: Any) -> Explanation:
        """An explanation a sandbox sent back as plain data (checked: it was made next to untrusted code)."""
        if not isinstance(data, dict):
            raise ExplainError("the explanation came back malformed")
        heatmap, weights = data.get("heatmap"), data.get("weights")
        probabilities = data.get("probabilities")
        if (not isinstance(data.get("class_index"), int) or not isinstance(probabilities, list)
                or not all(isinstance(p, int | float) for p in probabilities)
                or not (heatmap is None or (isinstance(heatmap, np.ndarray) and heatmap.ndim == 2))
                or not (weights is None or isinstance(weights, list))):
            raise ExplainError("the explanation came back malformed")
        details = data.get("details") if isinstance(data.get("details"), dict) else {}
        return cls(str(data.get("method", "")), int(data["class_index"]), [float(p) for p in probabilities],
                   heatmap=None if heatmap is None else heatmap.astype(np.float32), weights=weights,
                   details=details)


def batched(predict: Callable[[np.ndarray], Any], batch_size: int) -> ProbabilityFn:
    """``predict`` applied ``batch_size`` samples at a time, results stacked (LIME sends thousands)."""

    def run(samples: np.ndarray) -> np.ndarray:
        outputs = [np.asarray(predict(samples[i:i + batch_size]), dtype=np.float64)
                   for i in range(0, len(samples), batch_size)]
        return np.concatenate(outputs) if outputs else np.zeros((0, 0))

    return run


def is_image(input_shape: Sequence[int]) -> bool:
    """Images are ``(C, H, W)`` or ``(H, W)``; anything one-dimensional is a feature vector."""
    return len(input_shape) in (2, 3) and min(input_shape[-2:]) > 1


# -- Grad-CAM ---------------------------------------------------------------------------------------------
def conv_layers(net: Any) -> list[tuple[str, Any]]:
    """The network's 2-D convolutions, in registration (= forward, for sequential nets) order."""
    from torch import nn

    return [(name, module) for name, module in net.named_modules() if isinstance(module, nn.Conv2d)]


def _at_rate(net: Any, rate: float) -> AbstractContextManager[Any]:
    from slicing import slice_rate as at_rate
    from slicing import sliced_layers

    if sliced_layers(net):
        return at_rate(net, rate)
    if rate != 1.0:
        raise ExplainError(f"the network is not sliced: it runs at slice rate 1.0 only, not {rate}")
    return nullcontext(net)


def target_layer(net: Any, x: Any, rate: float, name: str | None = None) -> tuple[str, Any]:
    """The layer Grad-CAM looks at: the last convolution (in forward order) whose output map at this rate is
    bigger than 1x1 (a 1x1 map carries no *where*), or the convolution called ``name``; then, as usual for
    Grad-CAM, the block's activated output: the last layer after that convolution (its norm, its ReLU) that
    keeps the convolution's output shape, before the next convolution or pooling."""
    import torch
    from torch import nn

    convs = conv_layers(net)
    if not convs:
        raise ExplainError("Grad-CAM needs a convolutional network; this model has no convolution layer")
    if name is not None and name not in dict(convs):
        raise ExplainError(f"layer {name!r} is not a convolution of this model; choose one of {sorted(dict(convs))}")
    leaves = [(n, m) for n, m in net.named_modules() if not list(m.children()) or isinstance(m, nn.Conv2d)]
    order: list[tuple[str, Any, tuple[int, ...]]] = []
    hooks = [module.register_forward_hook(
        lambda _m, _i, out, n=n, m=module: order.append((n, m, tuple(out.shape))) if torch.is_tensor(out) else None)
        for n, module in leaves]
    try:
        with torch.no_grad(), _at_rate(net, rate):
            net(x)
    finally:
        for hook in hooks:
            hook.remove()
    conv_at = [i for i, (_n, m, shape) in enumerate(order) if isinstance(m, nn.Conv2d)
               and (name is None or _n == name) and (name is not None or shape[-1] * shape[-2] > 1)]
    if not conv_at:
        conv_at = [i for i, (_n, m, _s) in enumerate(order) if isinstance(m, nn.Conv2d)]
    start = conv_at[-1]
    chosen = start
    for i in range(start + 1, len(order)):
        if isinstance(order[i][1], nn.Conv2d) or order[i][2] != order[start][2]:
            break
        chosen = i
    return order[chosen][0], order[chosen][1]


def gradcam(net: Any, instance: np.ndarray, rate: float, *, target_class: int | None = None,
            layer: str | None = None) -> Explanation:
    """Grad-CAM of one input (shaped like the model's input) at ``rate``: the heat map at the input's
    resolution, min-max normalised to [0, 1] by the library; explains ``target_class`` (default: the
    predicted class)."""
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    net.eval()
    x = torch.as_tensor(np.asarray(instance, dtype=np.float32))[None]
    name, module = target_layer(net, x, rate, layer)
    with _at_rate(net, rate):
        with torch.no_grad():
            probabilities = torch.softmax(net(x), dim=1)[0]
        predicted = int(probabilities.argmax())
        explained = predicted if target_class is None else int(target_class)
        if not 0 <= explained < len(probabilities):
            raise ExplainError(f"target_class {explained} is not a class of this model (0..{len(probabilities) - 1})")
        with GradCAM(model=net, target_layers=[module]) as cam:
            heat = cam(input_tensor=x, targets=[ClassifierOutputTarget(explained)])[0]
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32)).clip(0.0, 1.0)
    return Explanation("gradcam", explained, probabilities.tolist(), heatmap=heat,
                       details={"target_layer": name, "predicted_class": predicted})


GRADCAM_OF_TEMPLATE = "inference_worker.explain.methods:gradcam_of_template"  # what a sandbox runs


def gradcam_of_template(template: Any, instance: np.ndarray, rate: float, *, target_class: int | None = None,
                        layer: str | None = None) -> Explanation:
    """Grad-CAM on a template's torch network (where the template runs: in its sandbox, for uploaded code)."""
    network = template.torch_network()
    if network is None:
        raise ExplainError("Grad-CAM needs the model's torch network, and this template offers none")
    return gradcam(network, instance, rate, target_class=target_class, layer=layer)


# -- LIME -------------------------------------------------------------------------------------------------
def _to_hwc(image: np.ndarray) -> np.ndarray:
    """LIME segments (H, W, 3) pictures; ours are (C, H, W) or (H, W)."""
    if image.ndim == 2:
        return image.astype(np.float64)
    if image.shape[0] == 1:
        return image[0].astype(np.float64)
    return np.moveaxis(image, 0, -1).astype(np.float64)


def _from_hwc(samples: np.ndarray, input_shape: Sequence[int]) -> np.ndarray:
    """LIME's perturbed (N, H, W, 3) samples back to the model's (N, *input_shape)."""
    if len(input_shape) == 2 or input_shape[0] == 1:
        grey = samples[..., 0]  # LIME made the grey image RGB by copying it: every channel is the same
        return grey.reshape((len(samples), *input_shape)).astype(np.float32)
    return np.moveaxis(samples, -1, 1).astype(np.float32)


def segmenter(image_hw: tuple[int, int], segments: int | None) -> Any:
    """SLIC superpixels: about one per 8 pixels (at least 8, at most 100), unless ``segments`` says how many."""
    from lime.wrappers.scikit_image import SegmentationAlgorithm

    wanted = segments or max(8, min(100, (image_hw[0] * image_hw[1]) // 8))
    return SegmentationAlgorithm("slic", n_segments=int(wanted), compactness=0.5, sigma=0.0, start_label=0)


def lime_image(predict: ProbabilityFn, instance: np.ndarray, *, num_samples: int = 1000, batch_size: int = 64,
               target_class: int | None = None, segments: int | None = None, hide_value: float = 0.0,
               seed: int = 0) -> Explanation:
    """LIME over superpixels: each pixel's heat is its superpixel's weight for the explained class (negative
    evidence counts 0), scaled to [0, 1]. ``details`` lists the superpixels by weight."""
    from lime.lime_image import LimeImageExplainer

    image = np.asarray(instance, dtype=np.float32)
    shape = image.shape
    probabilities = predict(image[None])[0]
    explained = int(np.argmax(probabilities)) if target_class is None else int(target_class)
    if not 0 <= explained < len(probabilities):
        raise ExplainError(f"target_class {explained} is not a class of this model (0..{len(probabilities) - 1})")
    hwc = _to_hwc(image)
    explainer = LimeImageExplainer(random_state=seed)
    result = explainer.explain_instance(
        hwc, lambda samples: predict(_from_hwc(samples, shape)), labels=(explained,), top_labels=None,
        hide_color=hide_value, num_samples=num_samples, batch_size=batch_size,
        segmentation_fn=segmenter(hwc.shape[:2], segments), random_seed=seed,
    )
    ranked = sorted(result.local_exp[explained], key=lambda pair: -pair[1])
    weight_of = dict(ranked)
    segments_map = result.segments
    heat = np.vectorize(lambda s: max(0.0, weight_of.get(int(s), 0.0)))(segments_map).astype(np.float32)
    top = float(heat.max())
    heat = heat / top if top > 0 else heat
    return Explanation("lime", explained, [float(p) for p in probabilities], heatmap=heat, details={
        "num_samples": num_samples, "segments": segments_map.astype(np.int32),
        "superpixels": [{"segment": int(s), "weight": float(w)} for s, w in ranked],
    })


def lime_tabular(predict: ProbabilityFn, instance: np.ndarray, training_data: np.ndarray, *,
                 feature_names: Sequence[str] | None = None, num_samples: int = 2000, batch_size: int = 256,
                 target_class: int | None = None, seed: int = 0) -> Explanation:
    """LIME for a feature vector: one weight per feature for the explained class (its local linear effect,
    with LIME's quartile discretisation); ``details.ranking`` lists features by |weight|."""
    from lime.lime_tabular import LimeTabularExplainer

    row = np.asarray(instance, dtype=np.float64).reshape(-1)
    train = np.asarray(training_data, dtype=np.float64).reshape(len(training_data), -1)
    if train.shape[1] != row.shape[0]:
        raise ExplainError(f"the training data has {train.shape[1]} features, the instance {row.shape[0]}")
    names = list(feature_names) if feature_names else [f"x{i}" for i in range(row.shape[0])]
    fn = batched(lambda rows: predict(rows.astype(np.float32)), batch_size)
    probabilities = fn(row[None])[0]
    explained = int(np.argmax(probabilities)) if target_class is None else int(target_class)
    if not 0 <= explained < len(probabilities):
        raise ExplainError(f"target_class {explained} is not a class of this model (0..{len(probabilities) - 1})")
    explainer = LimeTabularExplainer(train, mode="classification", feature_names=names, random_state=seed)
    result = explainer.explain_instance(row, fn, labels=(explained,), num_features=len(names),
                                        num_samples=num_samples)
    weights = [0.0] * len(names)
    for index, weight in result.as_map()[explained]:
        weights[int(index)] = float(weight)
    ranking = sorted(range(len(names)), key=lambda i: -abs(weights[i]))
    return Explanation("lime", explained, [float(p) for p in probabilities], weights=weights, details={
        "num_samples": num_samples, "feature_names": names, "ranking": [names[i] for i in ranking],
    })


def peak(heatmap: np.ndarray) -> tuple[int, int]:
    """(row, column) of the heat map's maximum."""
    flat = int(np.argmax(heatmap))
    return flat // heatmap.shape[-1], flat % heatmap.shape[-1]


__all__ = ["GRADCAM_OF_TEMPLATE", "ExplainError", "Explanation", "batched", "conv_layers", "gradcam",
           "gradcam_of_template", "is_image", "lime_image",
           "lime_tabular", "peak", "segmenter", "target_layer"]
