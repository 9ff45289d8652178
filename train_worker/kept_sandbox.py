"""MOP mode: one sandbox per train worker, not one per unit.

A MOP worker trains one unit at a time of many trials, all of the same sub-job — one model template, one owner —
and always on its own shard. Starting a sandbox and importing an uploaded template for every unit costs seconds
each, so the worker keeps the sandboxed child alive and, for each unit, builds a fresh template instance in it
with the unit's trial's knobs (``create``); the unit's state comes from its checkpoint, as on any other worker.
A new child is started when the files it may read change (the worker took over another shard) or the child died
between units, and the child is closed after a unit that failed (its state is then unknown). In-process (trusted
built-in) templates are cheap to build and are not kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from easel.model import BaseModel
from easel.sandbox import close_template, open_template
from easel.sandbox.errors import SandboxError
from easel.sandbox.proxy import SandboxedTemplate

if TYPE_CHECKING:
    from easel.blobstore import BlobStore
    from easel.db.models import Model
    from easel.settings import Settings


class KeptSandbox:
    def __init__(self) -> None:
        self._template: SandboxedTemplate | None = None
        self._key: tuple[str, tuple[str, ...]] | None = None
        self.started = 0  # sandboxes started, for tests and logs

    def open(self, model: Model, blobs: BlobStore, settings: Settings, knobs: Mapping[str, Any],
             files: Sequence[str]) -> BaseModel:
        """A template instance with ``knobs`` that may read ``files``: in the kept child when it still fits."""
        key = (model.id, tuple(files))
        if self._template is not None and (self._key != key or self._template.process.closed):
            self.close()
        if self._template is not None:
            try:
                return self._template.create(knobs)
            except SandboxError:
                if not self._template.process.closed:
                    raise  # the child is alive and refused the knobs: the trial's error
                self.close()  # the child died between units: a new one below
        template = open_template(model, blobs, settings, knobs, files=files)
        if isinstance(template, SandboxedTemplate):
            self._template, self._key = template, key
            self.started += 1
        return template

    def close(self) -> None:
        if self._template is not None:
            close_template(self._template)
        self._template, self._key = None, None


__all__ = ["KeptSandbox"]
