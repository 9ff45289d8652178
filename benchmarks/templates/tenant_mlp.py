"""The built-in sliced MLP with short training, for the multi-tenant benchmark's tabular datasets (wine, iris,
breast cancer, digits as 64 features): a real tuning problem whose trial cost differs per dataset."""

from builtin_templates.sliced import SlicedMLPTemplate
from easel.model import FixedKnob


class TenantMLP(SlicedMLPTemplate):
    TASKS = ("TABULAR_CLASSIFICATION",)

    @classmethod
    def get_knob_config(cls):
        config = dict(super().get_knob_config())
        config["max_epochs"] = FixedKnob(6)
        return config
