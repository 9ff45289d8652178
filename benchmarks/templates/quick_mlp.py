"""The built-in sliced MLP with short training (3 epochs): a real but affordable tuning problem."""

from builtin_templates.sliced import SlicedMLPTemplate
from easel.model import FixedKnob


class QuickSlicedMLP(SlicedMLPTemplate):
    @classmethod
    def get_knob_config(cls):
        config = dict(super().get_knob_config())
        config["max_epochs"] = FixedKnob(3)
        return config


class EvenSlicedMLP(SlicedMLPTemplate):
    """Every trial costs about the same (architecture and batch size fixed, only the optimiser tuned), so
    the 1-vs-2-worker comparison measures worker parallelism, not which long trial happened to come last."""

    @classmethod
    def get_knob_config(cls):
        config = dict(super().get_knob_config())
        config.update(width=FixedKnob(256), depth=FixedKnob(3), batch_size=FixedKnob(64), max_epochs=FixedKnob(80))
        return config
