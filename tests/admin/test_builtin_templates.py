"""A built-in sliced template end to end on a tiny dataset: train, evaluate, profile, dump/load, predict."""

from __future__ import annotations

from pathlib import Path

import pytest

from builtin_templates.sliced import SlicedMLPTemplate
from easel.model import TrainContext, default_knobs
from easel.model.params import is_safetensors, read_metadata
from tests.support import csv_file, image_zip, npz_file

pytest.importorskip("torch")


class StopAfterOne(TrainContext):
    def should_stop(self, epoch: int, score: float) -> bool:
        return True


def _knobs(**changes: object) -> dict:
    knobs = default_knobs(SlicedMLPTemplate.get_knob_config())
    knobs.update({"width": 64, "depth": 1, "batch_size": 32, "max_epochs": 20, "lr": 0.05, **changes})
    return knobs


def test_sliced_mlp_on_npz(tmp_path: Path) -> None:
    data = npz_file(tmp_path / "d.npz", n=60, shape=(8, 8), num_classes=3)
    template = SlicedMLPTemplate(**_knobs(quick_train=True))
    context = TrainContext()
    template.train(str(data), context=context)
    assert len(context.records) == 1 and "held_out_accuracy" in context.records[0][1]
    for rate in SlicedMLPTemplate.SLICE_RATES:
        assert 0.0 <= template.evaluate(str(data), rate) <= 1.0
    profile = template.profile(str(data), batch_size=16, repeats=2)
    assert profile["rates"] == list(SlicedMLPTemplate.SLICE_RATES)
    assert len(profile["accuracy"]) == len(profile["batch_time_s"]) == 4
    assert profile["params"][0] > profile["params"][-1]  # narrower slices are smaller
    params = template.dump_parameters()
    assert is_safetensors(params) and read_metadata(params)["arch"] == "mlp"
    restored = SlicedMLPTemplate(**_knobs(quick_train=True))
    restored.load_parameters(params)
    queries = [[[0.5] * 8] * 8, [[0.1] * 8] * 8]
    for rate in (1.0, 0.25):
        for got, want in zip(restored.predict(queries, rate), template.predict(queries, rate), strict=True):
            assert got == pytest.approx(want)
    assert len(restored.predict(queries)[0]) == 3 and restored.classes == ("0", "1", "2")


def test_early_stop_and_other_formats(tmp_path: Path) -> None:
    template = SlicedMLPTemplate(**_knobs(early_stop=True))
    context = StopAfterOne()
    template.train(str(csv_file(tmp_path / "t.csv", rows=40, features=5)), context=context)
    assert "stopped early" in context.records[-1][0] and len(context.records) == 2
    assert template.classes == ("a", "b")
    zipped = SlicedMLPTemplate(**_knobs(quick_train=True))
    zipped.train(str(image_zip(tmp_path / "i.zip", {"cat": 4, "dog": 4})))
    assert zipped.classes == ("cat", "dog")
    with pytest.raises(RuntimeError, match="train\\(\\) or load_parameters\\(\\) first"):
        SlicedMLPTemplate(**_knobs()).predict([[0.0]])
