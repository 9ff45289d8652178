"""The built-in sliced MLP with short training, for the multi-tenant benchmark's tabular datasets (wine, iris,
breast cancer, digits as 64 features): a real tuning problem whose trial cost differs per dataset."""

from builtin_templates.sliced import SlicedMLPTemplate
from easel.model import FixedKnob


class TenantMLP(SlicedMLPTemplate):
    TASKS = ("TABULAR_CLASSIFICATION",)
    EPOCHS = 6

    @classmethod
    def get_knob_config(cls):
        config = dict(super().get_knob_config())
        config["max_epochs"] = FixedKnob(cls.EPOCHS)
        return config


class TenantMLPLong(TenantMLP):
    """Eight times the training: the benchmark's second setting gives its larger datasets' users costlier trials."""

    EPOCHS = 48
