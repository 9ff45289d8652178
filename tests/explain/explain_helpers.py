"""Shared by the end-to-end explanation tests (imported by name, like ``serving_helpers``: a bare
``conftest`` import would resolve to another folder's conftest in a whole-suite run)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from demo.life_cycle import DemoResult
from sdk import Client

ROOT = ("explain-root@easel.test", "explain-root-password")


@dataclass
class DemoRun:
    client: Client
    result: DemoResult
    out: Path
    x: np.ndarray  # validation images (N, 1, 8, 8)
    y: np.ndarray


def auth(run: DemoRun) -> dict[str, str]:
    """Headers that carry the API key the demo created for its inference job (for calls to the predictor)."""
    assert run.result.api_key, "the demo created an API key"
    return {"Authorization": f"Bearer {run.result.api_key}"}
