"""Load a model template class: built-in ones by import path, uploaded ones from their file in the blob store.

Template code runs only in workers (train and inference workers, never in admin), so this is the one place
that imports it. It lives in ``easel`` because both worker services need it and services never import each
other.

Example::

    cls = load_template_class(model_row, make_blob_store(settings))
    template = cls(**trial.knobs)
    template.load_parameters(blobs.get_bytes(trial.params_key))
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys

from easel.blobstore import BlobStore
from easel.db.enums import ModelSource
from easel.db.models import Model
from easel.model.template import BaseModel


def load_template_class(model: Model, blobs: BlobStore) -> type[BaseModel]:
    """The template class a ``models`` row names (built-in: imported; uploaded: executed from its blob)."""
    if model.source == ModelSource.BUILTIN:
        module = importlib.import_module(model.module_ref)
    else:
        path = blobs.local_path(model.module_ref)
        name = f"easel_template_{hashlib.sha1(model.id.encode()).hexdigest()[:12]}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"cannot load template file {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    cls = getattr(module, model.model_class, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        raise ValueError(f"{model.module_ref} has no BaseModel subclass named {model.model_class!r}")
    return cls


__all__ = ["load_template_class"]
