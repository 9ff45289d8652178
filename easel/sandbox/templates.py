"""Where a template runs: :func:`open_template` gives workers an instance — in a sandbox for uploaded code
(always) and for built-ins when ``EASEL_SANDBOX_BUILTIN`` says so or in runner mode, otherwise in-process.

Example::

    template = open_template(model_row, blobs, settings, trial.knobs, files=[train_path, val_path])
    try:
        template.train(train_path, context=context)
    finally:
        close_template(template)
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from easel.model.template import BaseModel
from easel.sandbox.bwrap import SandboxSpec, inside_path
from easel.sandbox.limits import SandboxLimits
from easel.sandbox.process import SandboxProcess
from easel.sandbox.proxy import SandboxedTemplate
from easel.settings import SandboxMode

if TYPE_CHECKING:
    from easel.blobstore import BlobStore
    from easel.db.models import Model
    from easel.settings import Settings


def is_sandboxed(model: Model, settings: Settings) -> bool:
    """Uploaded code always; shipped built-ins if ``EASEL_SANDBOX_BUILTIN``, or in runner mode — there the
    runner's container is where models run (in Kubernetes it holds the pod's CPUs, memory and GPUs)."""
    from easel.db.enums import ModelSource

    return (model.source != ModelSource.BUILTIN or settings.sandbox_builtin
            or settings.sandbox_mode == SandboxMode.RUNNER)


def gpu_devices(settings: Settings) -> list[str]:
    """The NVIDIA device nodes a sandbox needs to use the GPU (none on a CPU machine or with device=cpu)."""
    if settings.device == "cpu":
        return []
    return sorted(glob.glob("/dev/nvidia*"))


def start_sandbox(settings: Settings, *, files: Sequence[str | Path] = (), cpu_capped: bool,
                  timeout_s: float | None = None, memory_mb: int | None = None,
                  cpu_s: int | None = None, threads: int | None = None, show_output: bool = True) -> SandboxProcess:
    """A bare sandbox (no template yet) that can read ``files``, with the settings' limits (``timeout_s``,
    ``memory_mb``, ``cpu_s`` override the call timeout, address-space and CPU caps; ``show_output=False`` drops
    the template's prints instead of passing them to this process's stderr)."""
    limits = SandboxLimits.from_settings(settings, cpu_capped=cpu_capped)
    overrides = {"call_timeout_s": timeout_s, "memory_mb": memory_mb, "cpu_s": cpu_s}
    limits = SandboxLimits(**{**limits.to_json(), **{k: v for k, v in overrides.items() if v is not None}})
    given = {Path(f).resolve(): inside_path(Path(f), i) for i, f in enumerate(dict.fromkeys(map(str, files)))}
    devices = gpu_devices(settings)
    if devices:  # CUDA reserves far more address space than it uses: an address-space cap would break it
        limits = SandboxLimits(**{**limits.to_json(), "memory_mb": 0})
    threads = threads or int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0)))
    spec = SandboxSpec(limits=limits, uid=settings.sandbox_uid, uid_count=settings.sandbox_uid_count, files=given,
                       threads=threads,
                       devices=devices, show_output=show_output)
    if settings.sandbox_mode == SandboxMode.RUNNER:  # only the start differs: the runner's child, not ours
        return SandboxProcess.connect(spec, settings.sandbox_runner_dir)
    return SandboxProcess.start(spec)


def open_sandboxed(model: Model, blobs: BlobStore, settings: Settings, knobs: Mapping[str, Any], *,
                   files: Sequence[str | Path] = (), cpu_capped: bool = True,
                   threads: int | None = None) -> SandboxedTemplate:
    """Start a sandbox, load ``model``'s template in it and build an instance with ``knobs``."""
    from easel.db.enums import ModelSource

    process = start_sandbox(settings, files=files, cpu_capped=cpu_capped, threads=threads)
    try:
        if model.source == ModelSource.BUILTIN:
            load = {"module": model.module_ref, "source": None}
        else:
            load = {"source": blobs.get_bytes(model.module_ref), "module": None}
        info = process.call("load", timeout_s=process.spec.limits.call_timeout_s, class_name=model.model_class,
                            **load)
        template = SandboxedTemplate(process, class_name=str(info["class_name"]),
                                     slice_rates=info["slice_rates"], tasks=info["tasks"],
                                     units=bool(info.get("units")))
        return template.create(knobs)
    except BaseException:
        process.close()
        raise


def open_template(model: Model, blobs: BlobStore, settings: Settings, knobs: Mapping[str, Any], *,
                  files: Sequence[str | Path] = (), cpu_capped: bool = True, threads: int | None = None) -> BaseModel:
    """An instance of ``model``'s template with ``knobs``, sandboxed unless it is a trusted built-in.

    ``files`` are the dataset files the template may read (by their host paths); ``cpu_capped`` says whether
    the CPU-seconds cap applies (not to a serving sandbox, which lives as long as its worker); ``threads`` is
    the sandbox's torch/OpenMP thread count. Release the instance with :func:`close_template`.
    """
    if is_sandboxed(model, settings):
        return open_sandboxed(model, blobs, settings, knobs, files=files, cpu_capped=cpu_capped, threads=threads)
    from easel.model.loading import load_template_class

    return load_template_class(model, blobs)(**knobs)


def close_template(template: BaseModel) -> None:
    """Kill the template's sandbox, if it has one."""
    if isinstance(template, SandboxedTemplate):
        template.close()
