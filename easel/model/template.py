"""The model template base class: what every built-in or uploaded template implements.

A template is a Python class. The platform never looks inside it beyond this interface:

* :meth:`BaseModel.get_knob_config` (class method) declares the knob space; admin reads it in a
  sandboxed subprocess when the template is uploaded;
* ``__init__(**knobs)`` builds an untrained model for one point of that space;
* :meth:`~BaseModel.train`, :meth:`~BaseModel.evaluate` and :meth:`~BaseModel.predict` run in train and
  inference workers; ``evaluate`` and ``predict`` take a *slice rate* (the share of the network's width
  to use, ``1.0`` = the full model) so one trained sliced network serves several accuracy/latency points;
* :meth:`~BaseModel.dump_parameters` / :meth:`~BaseModel.load_parameters` move trained weights as bytes
  in a safe format (safetensors: tensors only, never pickle), see :mod:`easel.model.params`;
* :meth:`~BaseModel.profile` measures accuracy ``p_i`` and time per mini-batch ``t_i`` at each slice
  rate, which the inference scheduler needs;
* :meth:`~BaseModel.train_unit` (optional) trains one *unit* of a trial — an epoch, or a sub-epoch on one
  shard of the data — from a checkpoint and returns the next checkpoint, so a trial can pause after any
  unit and resume on another worker (:class:`UnitSpec` says which unit). A template without it trains
  each trial in one piece with :meth:`~BaseModel.train`.

Example (a minimal template)::

    from easel.model import BaseModel, FloatKnob, IntegerKnob, SchemaFit

    class Majority(BaseModel):
        TASKS = ("TABULAR_CLASSIFICATION",)
        FITS = SchemaFit(tasks=("TABULAR_CLASSIFICATION",), min_classes=2)   # chosen for any tabular data

        @classmethod
        def get_knob_config(cls):
            return {"smoothing": FloatKnob(0.0, 1.0), "seed": IntegerKnob(0, 100)}

        def train(self, dataset_path, *, context=None, **kwargs):
            self.label = 0

        def evaluate(self, dataset_path, slice_rate=1.0):
            return 0.5

        def predict(self, queries, slice_rate=1.0):
            return [self.label for _ in queries]

        def dump_parameters(self):
            return b"0"

        def load_parameters(self, params):
            self.label = int(params)

Keep heavy imports (``torch``, ``slicing``) inside methods where you can: importing the module should
be quick, because admin's template check imports it under a time limit.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from easel.datasets.schema import SchemaFit
from easel.model.knobs import BaseKnob, KnobError, check_knob_config, validate_knobs


class TrainContext:
    """What a template may ask of the platform while it trains (the train worker passes a richer one).

    ``log`` records a message with optional numeric metrics (shown as the trial's logs);
    ``should_stop`` is asked after each epoch with the epoch's validation score and returns True when
    the platform wants the trial to end early (the ``EARLY_STOP`` policy).
    """

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, float]]] = []

    def log(self, message: str, **metrics: float) -> None:
        self.records.append((message, dict(metrics)))

    def should_stop(self, epoch: int, score: float) -> bool:  # noqa: ARG002 - the default never stops
        return False


@dataclass(frozen=True)
class UnitSpec:
    """Which unit of a trial to train: sub-epoch ``shard`` (of ``shards``) of epoch ``epoch`` (of ``epochs``).

    A trial's units run in order ``index = (epoch - 1) * shards + position`` where ``position`` is the
    unit's place in its epoch; with one shard a unit is a whole epoch. ``shard_sizes`` are the sizes of every
    shard of the epoch (for a learning-rate schedule over the whole trial); empty when the data a unit is
    given is the whole epoch.
    """

    index: int
    epoch: int
    epochs: int
    shard: int = 0
    shards: int = 1
    shard_sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.epochs < 1 or not 1 <= self.epoch <= self.epochs:
            raise ValueError(f"epoch must be in [1, epochs]; got epoch={self.epoch}, epochs={self.epochs}")
        if self.shards < 1 or not 0 <= self.shard < self.shards:
            raise ValueError(f"shard must be in [0, shards); got shard={self.shard}, shards={self.shards}")
        if self.index < 0:
            raise ValueError(f"index must be >= 0, got {self.index}")
        if self.shard_sizes and (len(self.shard_sizes) != self.shards or min(self.shard_sizes) < 1):
            raise ValueError(f"shard_sizes must hold {self.shards} positive sizes, got {self.shard_sizes}")

    @property
    def total(self) -> int:
        """Units in the whole trial."""
        return self.epochs * self.shards

    @property
    def ends_epoch(self) -> bool:
        return (self.index + 1) % self.shards == 0


class BaseModel(ABC):
    """Abstract model template. Subclass it, declare knobs, implement the abstract methods."""

    #: tasks this template can be trained for (e.g. ``"IMAGE_CLASSIFICATION"``); empty = any task.
    TASKS: ClassVar[tuple[str, ...]] = ()
    #: slice rates the trained network serves; ``(1.0,)`` for an ordinary (unsliced) model.
    SLICE_RATES: ClassVar[tuple[float, ...]] = (1.0,)
    #: the dataset schemas it fits (task kinds, input shape, class counts): a train job that names no models
    #: picks the templates whose ``FITS`` accept its data. ``None``: never picked automatically.
    FITS: ClassVar[SchemaFit | None] = None

    def __init__(self, **knobs: Any) -> None:
        try:
            self.knobs = validate_knobs(check_knob_config(self.get_knob_config()), knobs)
        except KnobError as error:
            raise ValueError(f"{type(self).__name__}: {error}") from None

    @classmethod
    @abstractmethod
    def get_knob_config(cls) -> Mapping[str, BaseKnob]:
        """The knob space: ``{name: FixedKnob | IntegerKnob | FloatKnob | CategoricalKnob | PolicyKnob}``."""

    @abstractmethod
    def train(self, dataset_path: str, *, context: TrainContext | None = None, **kwargs: Any) -> None:
        """Train on the dataset at ``dataset_path`` (a local file: image zip, ``.npz`` or CSV)."""

    @abstractmethod
    def evaluate(self, dataset_path: str, slice_rate: float = 1.0) -> float:
        """Score (higher is better, e.g. accuracy in [0, 1]) on the dataset at ``slice_rate``."""

    @abstractmethod
    def predict(self, queries: Sequence[Any], slice_rate: float = 1.0) -> list[Any]:
        """One prediction per query (JSON-ready values, e.g. class probabilities) at ``slice_rate``.

        When serving, ``queries`` is one mini-batch stacked in a numpy array (``torch.as_tensor`` takes it without
        a copy); it is reused for the next mini-batch, so keep no reference to it. On a GPU it is pinned host
        memory: ``x.to(device, non_blocking=True)`` copies it to the device asynchronously."""

    @abstractmethod
    def dump_parameters(self) -> bytes:
        """The trained parameters as bytes in a safe format (see :func:`easel.model.params.tensors_to_bytes`)."""

    @abstractmethod
    def load_parameters(self, params: bytes) -> None:
        """Restore parameters written by :meth:`dump_parameters` (into a model built with the same knobs)."""

    def train_unit(self, dataset_path: str, state: bytes | None, unit: UnitSpec, *,
                   context: TrainContext | None = None) -> bytes:
        """Optional: train one unit on the data at ``dataset_path`` (the unit's shard), starting from
        ``state`` (the bytes the previous unit returned; ``None`` for the first unit), and return the state
        after it: everything needed to go on exactly where it stopped (weights, optimiser, samplers and random
        generators), in a safe format. Afterwards the object is trained as after :meth:`train`, so
        :meth:`evaluate`, :meth:`profile` and :meth:`dump_parameters` work. ``unit.epochs`` is the trial's
        planned length (a template's own epoch knob does not apply). A template that does not override it is
        trained in one piece by :meth:`train` (see :meth:`supports_units`)."""
        raise NotImplementedError(f"{type(self).__name__} trains in one piece (no train_unit)")

    def planned_epochs(self) -> int:
        """Epochs a trial of these knobs trains when run unit by unit (``UnitSpec.epochs``); 1 by default."""
        return 1

    @classmethod
    def supports_units(cls) -> bool:
        """True when the template overrides :meth:`train_unit` (trials then run unit by unit)."""
        return getattr(cls.train_unit, "__func__", cls.train_unit) is not BaseModel.train_unit

    def torch_network(self) -> Any:
        """The trained ``torch.nn.Module`` behind :meth:`predict` (returning logits for a batch shaped like
        the queries), for gradient-based explanations such as Grad-CAM; ``None`` (the default) when the
        template has none to offer. LIME needs only :meth:`predict`."""
        return None

    def profile(
        self, dataset_path: str, slice_rates: Sequence[float] | None = None, *, batch_size: int = 64,
        queries: Sequence[Any] | None = None, repeats: int = 3,
    ) -> dict[str, list[float]]:
        """Accuracy and seconds per mini-batch at each slice rate: ``{"rates", "accuracy", "batch_time_s"}``.

        The default evaluates the dataset at each rate and times ``predict`` on ``queries`` (the first
        ``batch_size`` of them) ``repeats`` times, keeping the fastest run. Templates with a faster or
        more exact measurement override it.
        """
        rates = list(slice_rates or self.SLICE_RATES)
        accuracy = [float(self.evaluate(dataset_path, rate)) for rate in rates]
        times = []
        batch = list(queries or [])[:batch_size]
        for rate in rates:
            best = float("inf")
            for _ in range(max(1, repeats) if batch else 0):
                began = time.perf_counter()
                self.predict(batch, rate)
                best = min(best, time.perf_counter() - began)
            times.append(best if batch else 0.0)
        return {"rates": rates, "accuracy": accuracy, "batch_time_s": times}
