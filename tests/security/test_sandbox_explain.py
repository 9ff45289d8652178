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
from inference_worker.explain.methods import GRADCAM_OF_TEMPLATE, Explanation, gradcam_of_template

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


def test_gradcam_in_the_sandbox_equals_gradcam_in_process(sandboxed) -> None:
    instance = np.random.default_rng(7).random((1, 12, 12), dtype=np.float32)
    inside = Explanation.from_plain(sandboxed.explain(GRADCAM_OF_TEMPLATE, instance, 1.0, target_class=None,
                                                      layer=None))
    here = gradcam_of_template(_in_process(), instance, 1.0)
    assert inside.class_index == here.class_index and inside.details == here.details
    assert inside.heatmap is not None and inside.heatmap.shape == (12, 12)
    np.testing.assert_allclose(inside.heatmap, here.heatmap, atol=1e-5)


def test_an_explanation_error_in_the_sandbox_keeps_its_kind_and_message(sandboxed) -> None:
    instance = np.zeros((1, 12, 12), dtype=np.float32)
    with pytest.raises(SandboxError) as caught:
        sandboxed.explain(GRADCAM_OF_TEMPLATE, instance, 1.0, target_class=9, layer=None)
    assert caught.value.kind == "ExplainError" and caught.value.detail == "target_class 9 is not a class of this model (0..2)"
