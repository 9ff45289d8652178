"""Load a *built-in* model template class in this process, by import path.

Built-in templates are shipped, trusted code: workers may run them in-process (unless
``EASEL_SANDBOX_BUILTIN``). Uploaded templates never load here — their code runs only in a sandbox
(:func:`easel.sandbox.open_template`), so this refuses them.

Example::

    cls = load_template_class(model_row, make_blob_store(settings))
    template = cls(**trial.knobs)
    template.load_parameters(blobs.get_bytes(trial.params_key))
"""

from __future__ import annotations

import importlib

from easel.blobstore import BlobStore
from easel.db.enums import ModelSource
from easel.db.models import Model
from easel.model.template import BaseModel


class UntrustedTemplateError(ValueError):
    """An uploaded template was about to be loaded into a platform process."""


def load_template_class(model: Model, blobs: BlobStore) -> type[BaseModel]:  # noqa: ARG001 - kept for callers
    """The template class a built-in ``models`` row names, imported."""
    if model.source != ModelSource.BUILTIN:
        raise UntrustedTemplateError(f"model {model.id} is uploaded code: it runs only in a sandbox "
                                     "(easel.sandbox.open_template), never in this process")
    module = importlib.import_module(model.module_ref)
    cls = getattr(module, model.model_class, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        raise ValueError(f"{model.module_ref} has no BaseModel subclass named {model.model_class!r}")
    return cls


__all__ = ["UntrustedTemplateError", "load_template_class"]
