"""Which device to train and infer on: CUDA when present, CPU otherwise — the same code path."""

from __future__ import annotations

import os

import torch

DEVICE_ENV = "EASEL_DEVICE"


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Resolve ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` to a ``torch.device``.

    ``auto`` defers to ``$EASEL_DEVICE`` (the platform's setting) and, if that is unset or also
    ``auto``, picks CUDA when available. Asking for CUDA on a machine without it is an error, not a
    silent fallback, so a misconfigured GPU worker fails loudly.
    """
    if isinstance(name, torch.device):
        name = str(name)
    choice = name.strip().lower()
    if choice == "auto":
        choice = os.environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} requested but CUDA is not available")
        device = torch.device(choice)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {choice!r} requested but only {torch.cuda.device_count()} GPU(s) exist"
            )
        return device
    raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
