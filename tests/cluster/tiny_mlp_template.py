"""A model template for the multi-host test: the built-in sliced MLP, made tiny so one trial takes seconds.

Uploaded like any model developer's template (so its code, too, travels through the S3 blob store to the
train and serve hosts); its one tuned knob keeps the advisor's search real.
"""

from builtin_templates.sliced import SlicedMLPTemplate
from easel.model import FixedKnob, FloatKnob, PolicyKnob


class TinySlicedMLP(SlicedMLPTemplate):
    TASKS = ("IMAGE_CLASSIFICATION",)

    @classmethod
    def get_knob_config(cls):
        return {
            "width": FixedKnob(64),
            "depth": FixedKnob(1),
            "image_size": FixedKnob(8),
            "lr": FloatKnob(0.05, 0.1),
            "batch_size": FixedKnob(64),
            "weight_decay": FixedKnob(1e-4),
            "max_epochs": FixedKnob(3),
            "groups": FixedKnob(8),
            "seed": FixedKnob(0),
            "early_stop": PolicyKnob("EARLY_STOP"),
            "quick_train": PolicyKnob("QUICK_TRAIN"),
        }
