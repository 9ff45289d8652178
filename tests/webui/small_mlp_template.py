"""A small model template for the dashboard's end-to-end test: the built-in sliced MLP on 8x8 digits, a
few epochs, one tuned choice of width so that two trials differ. Uploaded through the dashboard like any
model developer's template (the checker's verdict is part of the test)."""

from builtin_templates.sliced import SlicedMLPTemplate
from easel.model import CategoricalKnob, FixedKnob, FloatKnob, PolicyKnob


class SmallSlicedMLP(SlicedMLPTemplate):
    TASKS = ("IMAGE_CLASSIFICATION",)

    @classmethod
    def get_knob_config(cls):
        return {
            "width": CategoricalKnob([64, 128]),
            "depth": FixedKnob(2),
            "image_size": FixedKnob(8),
            "lr": FloatKnob(0.03, 0.08),
            "batch_size": FixedKnob(64),
            "weight_decay": FixedKnob(1e-4),
            "max_epochs": FixedKnob(2),
            "groups": FixedKnob(8),
            "seed": FixedKnob(0),
            "early_stop": PolicyKnob("EARLY_STOP"),
            "quick_train": PolicyKnob("QUICK_TRAIN"),
        }
