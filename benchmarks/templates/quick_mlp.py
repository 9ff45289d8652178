"""The built-in sliced MLP with short training (3 epochs): a real but affordable tuning problem."""

from easel.model import FixedKnob
from easel.model.builtin.sliced import SlicedMLPTemplate


class QuickSlicedMLP(SlicedMLPTemplate):
    @classmethod
    def get_knob_config(cls):
        config = dict(super().get_knob_config())
        config["max_epochs"] = FixedKnob(3)
        return config
