"""The model-template API: knobs, the template base class, safe parameter bytes, the template checker.

Importing this package is light (no torch): admin and the template checker import it; templates import
torch themselves, inside their methods where they can.
"""

from easel.datasets.schema import SchemaFit
from easel.model.knobs import (
    BaseKnob,
    CategoricalKnob,
    FixedKnob,
    FloatKnob,
    IntegerKnob,
    KnobError,
    Policy,
    PolicyKnob,
    check_knob_config,
    default_knobs,
    knob_config_from_dict,
    knob_config_to_dict,
    knob_from_dict,
    validate_knobs,
)
from easel.model.template import BaseModel, TrainContext, UnitSpec

__all__ = [
    "BaseKnob", "BaseModel", "CategoricalKnob", "FixedKnob", "FloatKnob", "IntegerKnob", "KnobError",
    "Policy", "PolicyKnob", "SchemaFit", "TrainContext", "UnitSpec", "check_knob_config", "default_knobs", "knob_config_from_dict",
    "knob_config_to_dict", "knob_from_dict", "validate_knobs",
]
