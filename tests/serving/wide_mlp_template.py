"""A model template for the serving tests and benchmark: the built-in sliced MLP, made wide.

The built-in ``SlicedMLP`` caps its width at 512 units, where a mini-batch of 32 digits takes well under a
millisecond on a CPU — less than the request's trip through HTTP and Kafka, so deadlines would measure the
pipeline, not the model. At 2048 units x 3 hidden layers a full-width mini-batch costs several milliseconds
and a quarter-width one about a tenth of that (time falls with the square of the width), which is the regime
the slice-rate scheduler is for. Everything else (training, profile, parameters) is the built-in template's.
It is uploaded like any model developer's template; its one tuned knob keeps the advisor's search real.
"""

from builtin_templates.sliced import SlicedMLPTemplate
from easel.model import FixedKnob, FloatKnob, PolicyKnob


class WideSlicedMLP(SlicedMLPTemplate):
    TASKS = ("IMAGE_CLASSIFICATION",)

    @classmethod
    def get_knob_config(cls):
        return {
            "width": FixedKnob(2048),
            "depth": FixedKnob(3),
            "image_size": FixedKnob(8),
            "lr": FloatKnob(0.04, 0.06),
            "batch_size": FixedKnob(64),
            "weight_decay": FixedKnob(1e-4),
            "max_epochs": FixedKnob(2),
            "groups": FixedKnob(8),
            "seed": FixedKnob(0),
            "early_stop": PolicyKnob("EARLY_STOP"),
            "quick_train": PolicyKnob("QUICK_TRAIN"),
        }
