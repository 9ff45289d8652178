"""Built-in model templates: sliced MLP, CNN, VGG and ResNet from the ``slicing`` zoo.

A package of its own, outside the platform core: it depends on ``easel.model`` (the template API),
``easel.datasets`` (the dataset formats) and ``slicing`` (the networks); nothing in ``easel`` imports it.
Importing this package imports no torch and no ``slicing``: the templates import them inside their
methods, so admin can register them (name, class path, knob config) at start-up cheaply. A ``models``
row keeps the module (``builtin_templates.sliced``) that workers import.

Example::

    from builtin_templates import BUILTIN_TEMPLATES, load_template_class
    for spec in BUILTIN_TEMPLATES:
        cls = load_template_class(spec.class_path)
        print(spec.name, spec.task, sorted(cls.get_knob_config()))
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from typing import Any

from easel.model.knobs import knob_config_to_dict

IMAGE_CLASSIFICATION = "IMAGE_CLASSIFICATION"
TABULAR_CLASSIFICATION = "TABULAR_CLASSIFICATION"


@dataclass(frozen=True)
class BuiltinTemplate:
    name: str
    task: str
    class_path: str  # "module:Class"

    @property
    def class_name(self) -> str:
        return self.class_path.rpartition(":")[2]

    @property
    def module(self) -> str:
        """The module to import (what a ``models`` row keeps in ``module_ref``)."""
        return self.class_path.partition(":")[0]

    def knob_config(self) -> dict[str, Any]:
        return knob_config_to_dict(load_template_class(self.class_path).get_knob_config())

    def fits(self) -> dict[str, Any] | None:
        """The class's declared fit, narrowed to this entry's task (a class registered once per task)."""
        declared = load_template_class(self.class_path).FITS
        if declared is None or self.task not in declared.tasks:
            return None
        return replace(declared, tasks=(self.task,)).to_json()


BUILTIN_TEMPLATES: tuple[BuiltinTemplate, ...] = (
    BuiltinTemplate("SlicedMLP", IMAGE_CLASSIFICATION, "builtin_templates.sliced:SlicedMLPTemplate"),
    BuiltinTemplate("SlicedMLP-tabular", TABULAR_CLASSIFICATION, "builtin_templates.sliced:SlicedMLPTemplate"),
    BuiltinTemplate("SlicedCNN", IMAGE_CLASSIFICATION, "builtin_templates.sliced:SlicedCNNTemplate"),
    BuiltinTemplate("SlicedVGG", IMAGE_CLASSIFICATION, "builtin_templates.sliced:SlicedVGGTemplate"),
    BuiltinTemplate("SlicedResNet", IMAGE_CLASSIFICATION, "builtin_templates.sliced:SlicedResNetTemplate"),
)


def catalogue() -> list[dict[str, Any]]:
    """Every built-in as plain data: name, task, module, class name, knob config and declared fit (JSON-ready).

    ``python -m builtin_templates`` prints it; admin registers the built-ins from that output, so template
    code (built-in or uploaded) never runs inside admin.
    """
    return [{"name": spec.name, "task": spec.task, "module": spec.module, "class_name": spec.class_name,
             "knob_config": spec.knob_config(), "fits": spec.fits()} for spec in BUILTIN_TEMPLATES]


def load_template_class(class_path: str) -> type:
    """The class at ``"package.module:ClassName"`` (built-in templates only: trusted code)."""
    module_name, sep, class_name = class_path.partition(":")
    if not sep or not module_name.startswith(f"{__name__}."):
        raise ValueError(f"{class_path!r} is not a built-in template path ('{__name__}.<module>:<Class>')")
    return getattr(importlib.import_module(module_name), class_name)
