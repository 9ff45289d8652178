"""A sandboxed template serves the same answers as in-process: predict batches through shared memory, and
Grad-CAM run next to its network in the sandbox (the explainer's path for uploaded templates)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from easel.blobstore import LocalBlobStore
from easel.db.enums import ModelSource
from easel.db.models import Model
from easel.sandbox import SandboxError, open_sandboxed
from easel.settings import Settings
from inference_worker.explain.methods import (
    GRADCAM_OF_TEMPLATE,
    ExplainError,
    gradcam_of_template,
)
from inference_worker.explain.service import Explainer, ExplainerConfig
from inference_worker.model import ServedModel

TEMPLATE = Path(__file__).with_name("conv_template.py")


def _in_process() -> object:
    spec = importlib.util.spec_from_file_location("tiny_conv_here", TEMPLATE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TinyConv(unused=0.5)


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory: pytest.TempPathFactory):
    blobs = LocalBlobStore(tmp_path_factory.mktemp("blobs"))
    blobs.put_bytes("models/tiny.py", TEMPLATE.read_bytes())
    model = Model(id="tiny", name="tiny", task="TEST", source=ModelSource.UPLOADED, model_class="TinyConv",
                  module_ref="models/tiny.py", knob_config={})
    with open_sandboxed(model, blobs, Settings(), {"unused": 0.5}, cpu_capped=False) as template:
        yield template


def test_predict_through_the_sandbox_equals_predict_in_process(sandboxed) -> None:
    here = _in_process()
    for size in (32, 1, 200):  # 200 images outgrow the first shared-memory region: it grows
        batch = np.random.default_rng(size).random((size, 1, 28, 28), dtype=np.float32)
        got = sandboxed.predict(batch, 1.0)
        assert len(got) == size
        np.testing.assert_allclose(np.stack(got), np.stack(here.predict(batch, 1.0)), rtol=1e-5)  # type: ignore[attr-defined]


def test_the_serving_path_gets_the_predictions_back_as_one_array(sandboxed) -> None:
    """``predict_array`` (what a serving worker's ``ServedModel`` calls): the same numbers as ``predict``, as one
    array of one row per query; the template's rows are not taken apart into Python numbers on the way."""
    batch = np.random.default_rng(5).random((32, 1, 28, 28), dtype=np.float32)
    got = sandboxed.predict_array(batch, 1.0)
    assert isinstance(got, np.ndarray) and got.shape == (32, 3)
    np.testing.assert_array_equal(got, np.stack(sandboxed.predict(batch, 1.0)))
    assert sandboxed.last_device_s is None, "no GPU time on a CPU"
    model = ServedModel(sandboxed, [1.0], [0.5], [0.01])
    served = model.predict(batch, 1.0)
    assert isinstance(served, np.ndarray) and served.shape == (32, 3)
    assert model.last_device_s is None


def _explainer(template) -> Explainer:
    model = ServedModel(template, [1.0], [0.5], [0.01])
    config = ExplainerConfig(job_id="job", consumer="c", input_shape=(1, 12, 12), classes=("a", "b", "c"),
                             reclaim_s=3, max_attempts=1, batch_size=16)
    return Explainer(config, model, None, None, None)  # type: ignore[arg-type] - compute needs none of them


def test_the_explainer_runs_gradcam_in_the_sandbox_and_lime_through_it(sandboxed) -> None:
    explainer = _explainer(sandboxed)
    instance = np.random.default_rng(3).random((1, 12, 12), dtype=np.float32)
    cam = explainer.compute("gradcam", instance, 1.0, {})
    here = gradcam_of_template(_in_process(), instance, 1.0)
    assert cam.class_index == here.class_index and cam.details == here.details and cam.heatmap.shape == (12, 12)
    np.testing.assert_allclose(cam.heatmap, here.heatmap, atol=1e-5)
    with pytest.raises(ExplainError, match=r"^target_class 9 is not a class of this model \(0..2\)$"):
        explainer.compute("gradcam", instance, 1.0, {"target_class": 9})
    lime = explainer.compute("lime", instance, 1.0, {"num_samples": 32, "segments": 8})
    assert lime.heatmap.shape == (12, 12) and 0 <= lime.class_index < 3


def test_an_explanation_error_in_the_sandbox_keeps_its_kind_and_message(sandboxed) -> None:
    instance = np.zeros((1, 12, 12), dtype=np.float32)
    with pytest.raises(SandboxError) as caught:
        sandboxed.explain(GRADCAM_OF_TEMPLATE, instance, 1.0, target_class=9, layer=None)
    assert caught.value.kind == "ExplainError" and caught.value.detail == "target_class 9 is not a class of this model (0..2)"
