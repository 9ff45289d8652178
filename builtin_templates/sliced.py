"""Sliced-network templates (MLP, VGG, ResNet): one trained network serves every slice rate.

``torch`` and ``slicing`` are imported inside methods only; declaring the knob space costs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from easel.datasets.schema import IMAGE_CLASSIFICATION, TABULAR_CLASSIFICATION, SchemaFit
from easel.model.knobs import BaseKnob, CategoricalKnob, FixedKnob, FloatKnob, IntegerKnob, PolicyKnob
from easel.model.template import BaseModel, TrainContext, UnitSpec

SLICE_RATES = (1.0, 0.75, 0.5, 0.25)


class _EarlyStop(Exception):
    """Raised from the per-epoch callback when the platform asks the trial to stop."""


def _training_knobs(max_epochs: int) -> dict[str, BaseKnob]:
    return {
        "lr": FloatKnob(1e-3, 0.3, log_scale=True),
        "batch_size": CategoricalKnob([32, 64, 128]),
        "weight_decay": FloatKnob(1e-6, 1e-3, log_scale=True),
        "max_epochs": FixedKnob(max_epochs),
        "groups": FixedKnob(8),
        "seed": FixedKnob(0),
        "early_stop": PolicyKnob("EARLY_STOP"),
        "quick_train": PolicyKnob("QUICK_TRAIN"),
    }


class SlicedTemplate(BaseModel):
    """Shared train/evaluate/predict/dump/load for the sliced zoo; subclasses set the architecture."""

    ARCH: ClassVar[str] = ""
    TASKS: ClassVar[tuple[str, ...]] = ("IMAGE_CLASSIFICATION",)
    # Any image size and channel count: images are resized to the image_size knob; the net is built to the data.
    FITS: ClassVar[SchemaFit | None] = SchemaFit(tasks=(IMAGE_CLASSIFICATION,))
    SLICE_RATES: ClassVar[tuple[float, ...]] = SLICE_RATES
    IMAGE_INPUT: ClassVar[bool] = True

    def __init__(self, **knobs: Any) -> None:
        super().__init__(**knobs)
        self._net: Any = None
        self._classes: tuple[str, ...] = ()
        self._input_shape: tuple[int, ...] = ()
        self._trainer: Any = None  # unit-wise training: the live trainer and the state it last returned
        self._last_state: bytes | None = None

    # -- what subclasses choose -------------------------------------------------------------------------
    def _arch_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def _image_size(self) -> tuple[int, int]:
        size = int(self.knobs.get("image_size", 32))
        return size, size

    # -- helpers --------------------------------------------------------------------------------------
    def _load(self, dataset_path: str) -> Any:
        from builtin_templates.data import load_dataset

        return load_dataset(dataset_path, image_size=self._image_size())

    def _build(self, num_classes: int, input_shape: Sequence[int]) -> Any:
        from slicing import build_model

        return build_model(
            self.ARCH, num_classes=num_classes, input_shape=tuple(input_shape), rates=self.SLICE_RATES,
            groups=int(self.knobs["groups"]), **self._arch_kwargs(),
        )

    def _require_net(self) -> Any:
        if self._net is None:
            raise RuntimeError(f"{type(self).__name__}: train() or load_parameters() first")
        return self._net

    def _device(self) -> Any:
        from slicing import resolve_device

        return resolve_device("auto")

    # -- the template interface -----------------------------------------------------------------------
    def train(self, dataset_path: str, *, context: TrainContext | None = None, **kwargs: Any) -> None:
        """Slice-rate training (``slicing.fit``). A tenth of the data is held out to score each epoch, and
        ``context.should_stop`` is asked after every epoch (early stopping, or the job being stopped)."""
        import torch

        from slicing import evaluate_rates, fit

        context = context or TrainContext()
        data = self._load(dataset_path)
        self._classes, self._input_shape = tuple(data.classes), tuple(data.input_shape)
        seed = int(self.knobs["seed"])
        torch.manual_seed(seed)
        self._net = self._build(len(self._classes), self._input_shape)
        epochs = 1 if self.knobs.get("quick_train") else int(self.knobs["max_epochs"])
        if len(data) >= 20:
            train_data, held_out = data.split(0.1, seed=seed)
        else:
            train_data, held_out = data, data
        device = self._device()

        def on_epoch(entry: Mapping[str, Any]) -> None:
            epoch = int(entry["epoch"])
            score = float(evaluate_rates(self._net, held_out, rates=[1.0], device=device)[1.0])
            context.log(f"epoch {epoch}: loss {float(entry['loss']):.4f}, held-out accuracy {score:.4f}",
                        epoch=float(epoch), loss=float(entry["loss"]), held_out_accuracy=score)
            if epoch < epochs and context.should_stop(epoch, score):
                raise _EarlyStop

        try:
            fit(
                self._net, train_data, epochs=epochs, batch_size=int(self.knobs["batch_size"]),
                lr=float(self.knobs["lr"]), weight_decay=float(self.knobs["weight_decay"]),
                device=device, seed=seed, on_epoch=on_epoch,
            )
        except _EarlyStop:
            context.log("training stopped early at the platform's request")

    def planned_epochs(self) -> int:
        return 1 if self.knobs.get("quick_train") else int(self.knobs["max_epochs"])

    def train_unit(self, dataset_path: str, state: bytes | None, unit: UnitSpec, *,
                   context: TrainContext | None = None) -> bytes:
        """One unit of slice-rate training (``slicing.UnitTrainer``): one shuffled pass over the unit's data
        from ``state``; the returned state holds the weights, SGD momentum, the cosine schedule's position and
        the shuffling and rate-sampling generators, so units on different workers train as one run would."""
        import math

        import torch

        from easel.model.params import bytes_to_tensors, tensors_to_bytes
        from slicing import UnitTrainer, as_tensors

        context = context or TrainContext()
        data = self._load(dataset_path)
        seed, batch_size = int(self.knobs["seed"]), int(self.knobs["batch_size"])
        if state is not None and state is self._last_state and self._trainer is not None:
            trainer = self._trainer  # the state this object returned last: go on in memory, nothing to parse
        else:
            tensors: dict[str, Any] = {}
            meta: dict[str, str] = {}
            if state is None:
                self._classes, self._input_shape = tuple(data.classes), tuple(data.input_shape)
                torch.manual_seed(seed)
            else:
                tensors, meta = bytes_to_tensors(state)
                if meta.get("arch") != self.ARCH:
                    raise ValueError(f"training state is for {meta.get('arch')!r}, not {self.ARCH!r}")
                self._classes = tuple(json.loads(meta["classes"]))
                self._input_shape = tuple(json.loads(meta["input_shape"]))
            self._net = self._build(len(self._classes), self._input_shape)
            sizes = unit.shard_sizes or (len(data),) * unit.shards
            total_steps = unit.epochs * sum(math.ceil(size / batch_size) for size in sizes)
            trainer = UnitTrainer(self._net, total_steps=total_steps, lr=float(self.knobs["lr"]),
                                  weight_decay=float(self.knobs["weight_decay"]), seed=seed, device=self._device())
            if state is not None:
                trainer.load_state(tensors, meta)
        x, y = as_tensors(data)
        stats = trainer.run(x, y, batch_size)
        context.log(f"unit {unit.index + 1}/{unit.total} (epoch {unit.epoch}, shard {unit.shard}): "
                    f"loss {stats.loss:.4f}", unit=float(unit.index), epoch=float(unit.epoch), loss=stats.loss)
        out_tensors, out_meta = trainer.state()
        out_meta.update({"arch": self.ARCH, "classes": json.dumps(list(self._classes)),
                         "input_shape": json.dumps(list(self._input_shape))})
        self._trainer, self._last_state = trainer, tensors_to_bytes(out_tensors, metadata=out_meta)
        return self._last_state

    def evaluate(self, dataset_path: str, slice_rate: float = 1.0) -> float:
        from slicing import evaluate_rates

        net = self._require_net()
        data = self._load(dataset_path)
        return float(evaluate_rates(net, data, rates=[slice_rate], device=self._device())[slice_rate])

    def predict(self, queries: Sequence[Any], slice_rate: float = 1.0) -> list[Any]:
        """Class probabilities for each query (a nested list shaped like one input, e.g. C×H×W)."""
        import torch

        from slicing import slice_rate as at_rate

        net = self._require_net()
        if not queries:
            return []
        x = torch.as_tensor(queries, dtype=torch.float32).reshape(len(queries), *self._input_shape)
        device = self._device()
        net.to(device).eval()
        with torch.no_grad(), at_rate(net, slice_rate):
            # Asynchronous when the worker's buffer is pinned host memory (it is on a GPU); .cpu() waits for it.
            probs = torch.softmax(net(x.to(device, non_blocking=True)), dim=1).cpu()
        return probs.tolist()

    def profile(
        self, dataset_path: str, slice_rates: Sequence[float] | None = None, *, batch_size: int = 64,
        queries: Sequence[Any] | None = None, repeats: int = 10,
    ) -> dict[str, Any]:
        """``slicing.profile``: accuracy and mean/p99 seconds per mini-batch at each rate, params, FLOPs."""
        from slicing import profile

        net = self._require_net()
        data = self._load(dataset_path)
        result = profile(net, data, batch_size, rates=list(slice_rates or self.SLICE_RATES), device=self._device(),
                         repeats=max(1, repeats)).to_dict()
        return {
            "rates": result["rates"], "accuracy": result["accuracies"], "batch_time_s": result["mean_batch_time_s"],
            "p99_batch_time_s": result["p99_batch_time_s"], "params": result["params"], "flops": result["flops"],
            "batch_size": result["batch_size"], "device": result["device"],
        }

    def dump_parameters(self) -> bytes:
        from easel.model.params import tensors_to_bytes

        net = self._require_net()
        meta = {"arch": self.ARCH, "classes": json.dumps(list(self._classes)),
                "input_shape": json.dumps(list(self._input_shape)), "knobs": json.dumps(self.knobs)}
        return tensors_to_bytes(net.state_dict(), metadata=meta)

    def load_parameters(self, params: bytes) -> None:
        from easel.model.params import bytes_to_tensors

        state, meta = bytes_to_tensors(params)
        if meta.get("arch") != self.ARCH:
            raise ValueError(f"parameters are for {meta.get('arch')!r}, not {self.ARCH!r}")
        self._classes = tuple(json.loads(meta["classes"]))
        self._input_shape = tuple(json.loads(meta["input_shape"]))
        self._net = self._build(len(self._classes), self._input_shape)
        self._net.load_state_dict(state)

    @property
    def classes(self) -> tuple[str, ...]:
        return self._classes

    def torch_network(self) -> Any:
        """The sliced network (logits); Grad-CAM runs it at a slice rate with ``slicing.slice_rate``."""
        return self._require_net()


class SlicedMLPTemplate(SlicedTemplate):
    """A sliced multi-layer perceptron (images are flattened; CSV rows are used as they are)."""

    ARCH = "mlp"
    TASKS = ("IMAGE_CLASSIFICATION", "TABULAR_CLASSIFICATION")
    FITS = SchemaFit(tasks=(IMAGE_CLASSIFICATION, TABULAR_CLASSIFICATION))

    @classmethod
    def get_knob_config(cls) -> dict[str, BaseKnob]:
        return {
            "width": CategoricalKnob([64, 128, 256, 512]),
            "depth": IntegerKnob(1, 4),
            "image_size": FixedKnob(32),
            **_training_knobs(max_epochs=20),
        }

    def _arch_kwargs(self) -> dict[str, Any]:
        return {"width": int(self.knobs["width"]), "depth": int(self.knobs["depth"])}


class SlicedVGGTemplate(SlicedTemplate):
    """A sliced VGG for image classification."""

    ARCH = "vgg"

    @classmethod
    def get_knob_config(cls) -> dict[str, BaseKnob]:
        return {
            "depth": CategoricalKnob([11, 13, 16, 19]),
            "width": CategoricalKnob([16, 32, 64]),
            "image_size": FixedKnob(32),
            **_training_knobs(max_epochs=30),
        }

    def _arch_kwargs(self) -> dict[str, Any]:
        return {"width": int(self.knobs["width"]), "depth": int(self.knobs["depth"])}


class SlicedCNNTemplate(SlicedTemplate):
    """A small sliced CNN (one 3x3 convolution per stage) for small images such as 8x8 digits: trains in
    seconds, and its slice rates differ in time; Grad-CAM explains it at every rate."""

    ARCH = "cnn"

    @classmethod
    def get_knob_config(cls) -> dict[str, BaseKnob]:
        return {
            "width": CategoricalKnob([16, 32, 64]),
            "depth": IntegerKnob(2, 3),
            "image_size": FixedKnob(32),
            **_training_knobs(max_epochs=4),
            "lr": FloatKnob(0.005, 0.1, log_scale=True),  # SGD with momentum diverges above ~0.15 here
        }

    def _arch_kwargs(self) -> dict[str, Any]:
        return {"width": int(self.knobs["width"]), "depth": int(self.knobs["depth"])}


class SlicedResNetTemplate(SlicedTemplate):
    """A sliced CIFAR-style ResNet (6n+2 layers) for image classification."""

    ARCH = "resnet"

    @classmethod
    def get_knob_config(cls) -> dict[str, BaseKnob]:
        return {
            "depth": CategoricalKnob([20, 32, 56]),
            "width": CategoricalKnob([16, 32]),
            "image_size": FixedKnob(32),
            **_training_knobs(max_epochs=30),
        }

    def _arch_kwargs(self) -> dict[str, Any]:
        return {"width": int(self.knobs["width"]), "depth": int(self.knobs["depth"])}


def template_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__name__}"


__all__ = ["SlicedCNNTemplate", "SlicedMLPTemplate", "SlicedResNetTemplate", "SlicedTemplate", "SlicedVGGTemplate", "template_path"]
