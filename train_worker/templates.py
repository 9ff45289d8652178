"""Template loading for the train worker: re-exported from :mod:`easel.model.loading`, where it lives so
that the inference worker can use the same code without importing this service."""

from __future__ import annotations

from easel.model.loading import load_template_class

__all__ = ["load_template_class"]
