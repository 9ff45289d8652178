"""A template instance that lives in a sandbox, behind :class:`~easel.model.template.BaseModel`'s interface.

Workers swap ``template_cls(**knobs)`` for :func:`easel.sandbox.open_template`; each method becomes one
request to the child. Dataset paths are the host paths the sandbox was given (translated to where the child
sees them); query batches that are arrays travel through shared memory, anything else inline; the training
context's ``log`` and ``should_stop`` are called back in the parent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from easel.model.knobs import BaseKnob
from easel.model.template import BaseModel, TrainContext, UnitSpec
from easel.sandbox import wire
from easel.sandbox.errors import SandboxError
from easel.sandbox.process import SandboxProcess


class SandboxedTemplate(BaseModel):
    """Built by :func:`easel.sandbox.open_template`; close it (or use ``with``) to kill the sandbox."""

    def __init__(self, process: SandboxProcess, *, class_name: str, slice_rates: Sequence[float],
                 tasks: Sequence[str], units: bool = False) -> None:  # knobs are validated in the child
        self.process = process
        self._units = units  # the template has train_unit
        self._last_state: bytes | None = None  # the unit state the child returned last (it keeps it too)
        self.class_name = class_name
        self.SLICE_RATES = tuple(float(r) for r in slice_rates)
        self.TASKS = tuple(str(t) for t in tasks)
        self.knobs: dict[str, Any] = {}
        self._inside = {str(Path(host)): inside for host, inside in process.spec.files.items()}
        self.last_device_s: float | None = None  # the GPU time of the last predict_array (None on a CPU)

    @classmethod
    def get_knob_config(cls) -> Mapping[str, BaseKnob]:
        return {}

    def create(self, knobs: Mapping[str, Any]) -> SandboxedTemplate:
        """Build the template instance in the child with ``knobs`` (its own validation applies)."""
        result = self._call("create", knobs=dict(knobs))
        self._last_state = None  # a new instance: it continues from no state of the previous one
        self.knobs = dict(result.get("knobs") or {}) if isinstance(result, dict) else {}
        return self

    # -- BaseModel ---------------------------------------------------------------------------------------------
    def train(self, dataset_path: str, *, context: TrainContext | None = None, **kwargs: Any) -> None:
        context = context or TrainContext()
        self.process.call("train", timeout_s=None, dataset_path=self._path(dataset_path), kwargs=kwargs,
                          callbacks={"log": context.log, "should_stop": context.should_stop})

    def supports_units(self) -> bool:  # type: ignore[override]  # the loaded class's answer, not this proxy's
        return self._units

    def planned_epochs(self) -> int:
        epochs = self._call("planned_epochs")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise SandboxError("the template's planned_epochs returned no positive integer", kind="BadResult")
        return epochs

    def train_unit(self, dataset_path: str, state: bytes | None, unit: UnitSpec, *,
                   context: TrainContext | None = None) -> bytes:
        context = context or TrainContext()
        # The state the child returned last is not sent back: it continues from its own copy.
        same = state is not None and state is self._last_state
        result = self.process.call(
            "train_unit", timeout_s=None, dataset_path=self._path(dataset_path),
            state=None if same or state is None else bytes(state), same_state=same,
            unit={**asdict(unit), "shard_sizes": list(unit.shard_sizes)},
            callbacks={"log": context.log, "should_stop": context.should_stop})
        if not isinstance(result, bytes):
            raise SandboxError("the template's train_unit returned no bytes", kind="BadResult")
        self._last_state = result
        return result

    def evaluate(self, dataset_path: str, slice_rate: float = 1.0) -> float:
        score = self.process.call("evaluate", timeout_s=None, dataset_path=self._path(dataset_path),
                                  slice_rate=float(slice_rate))
        return _number(score, "evaluate")

    def predict(self, queries: Sequence[Any], slice_rate: float = 1.0) -> list[Any]:
        outputs = self._call("predict", queries=self._queries(queries), slice_rate=float(slice_rate))
        if not isinstance(outputs, list):
            raise SandboxError("the template's predict returned no list", kind="BadResult")
        return outputs

    def predict_array(self, queries: Sequence[Any], slice_rate: float = 1.0) -> np.ndarray | list[Any]:
        """``predict`` for the serving path: numeric predictions come back as one array (one row per query, raw
        bytes on the wire), not as lists of Python numbers that the worker would turn back into an array; other
        predictions as ``predict`` returns them. ``last_device_s`` is then the call's GPU time in the sandbox
        (CUDA events), None on a CPU."""
        reply = self._call("predict_array", queries=self._queries(queries), slice_rate=float(slice_rate))
        outputs = reply.get("outputs") if isinstance(reply, dict) else None
        if not isinstance(outputs, np.ndarray | list):
            raise SandboxError("the template's predict returned no list", kind="BadResult")
        device_s = reply.get("device_s")
        self.last_device_s = float(device_s) if isinstance(device_s, int | float) else None
        return outputs

    def dump_parameters(self) -> bytes:
        params = self._call("dump_parameters")
        if not isinstance(params, bytes):
            raise SandboxError("the template's dump_parameters returned no bytes", kind="BadResult")
        return params

    def load_parameters(self, params: bytes) -> None:
        self._call("load_parameters", params=bytes(params))

    def profile(self, dataset_path: str, slice_rates: Sequence[float] | None = None, *, batch_size: int = 64,
                queries: Sequence[Any] | None = None, repeats: int = 3) -> dict[str, list[float]]:
        result = self.process.call(
            "profile", timeout_s=None, dataset_path=self._path(dataset_path),
            slice_rates=None if slice_rates is None else [float(r) for r in slice_rates],
            batch_size=int(batch_size), repeats=int(repeats),
            queries=None if queries is None else self._queries(queries))
        if not isinstance(result, dict):
            raise SandboxError("the template's profile returned no mapping", kind="BadResult")
        return result

    def explain(self, function: str, instance: np.ndarray, rate: float, **options: Any) -> dict[str, Any]:
        """``function(template, instance, rate, **options)`` run in the child (``"module:name"`` of platform
        code, e.g. Grad-CAM, which needs the template's torch network); its result's fields as plain data."""
        result = self._call("explain", function=function, instance=wire.encode(np.asarray(instance)),
                            rate=float(rate), options=options)
        if not isinstance(result, dict):
            raise SandboxError("the explanation returned no mapping", kind="BadResult")
        return result

    # -- plumbing ----------------------------------------------------------------------------------------------
    def _call(self, op: str, **fields: Any) -> Any:
        return self.process.call(op, timeout_s=self.process.spec.limits.call_timeout_s, **fields)

    def _path(self, dataset_path: str | Path) -> str:
        inside = self._inside.get(str(Path(dataset_path)))
        if inside is None:
            raise ValueError(f"dataset_path {dataset_path} was not given to this sandbox")
        return inside

    def _queries(self, queries: Any) -> Any:
        if isinstance(queries, np.ndarray) and wire.dtype_name(queries.dtype) is not None:
            return {"shm": self.process.shm.put(queries)}
        return wire.encode(list(queries))

    def close(self) -> None:
        self.process.close()

    def __enter__(self) -> SandboxedTemplate:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SandboxError(f"the template's {what} returned no number", kind="BadResult")
    return float(value)
