"""The built-in sliced MLP trained for the 9 epochs its learning curves were recorded with (``hopping.py``
section b), so the platform check's real trials train exactly as the recorded ones did."""

from builtin_templates.sliced import SlicedMLPTemplate
from easel.model import FixedKnob


class ReplayMLP(SlicedMLPTemplate):
    @classmethod
    def get_knob_config(cls):
        config = dict(super().get_knob_config())
        config["max_epochs"] = FixedKnob(9)
        return config
