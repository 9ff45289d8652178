"""Trained parameters as bytes in a safe format: safetensors (tensors and string metadata only).

Parameters travel from train workers to the blob store and on to inference workers, and a user may
download them: they must never be able to run code when loaded, so pickle is out.

Example::

    blob = tensors_to_bytes(model.state_dict(), metadata={"arch": "mlp"})
    state, metadata = bytes_to_tensors(blob)
    model.load_state_dict(state)
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

FORMAT = "safetensors"
MAX_HEADER_BYTES = 100 << 20


def tensors_to_bytes(tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> bytes:
    """Serialise a ``{name: torch.Tensor}`` mapping (e.g. a ``state_dict``) to safetensors bytes."""
    from safetensors.torch import save

    # safetensors refuses shared or non-contiguous storage: give it independent contiguous copies.
    plain = {name: tensor.detach().contiguous().clone() for name, tensor in tensors.items()}
    return save(plain, metadata=dict(metadata) if metadata else None)


def bytes_to_tensors(data: bytes) -> tuple[dict[str, Any], dict[str, str]]:
    """Read bytes written by :func:`tensors_to_bytes`: ``(tensors, metadata)``."""
    from safetensors.torch import load

    return load(data), read_metadata(data)


def read_metadata(data: bytes) -> dict[str, str]:
    """The string metadata of safetensors bytes, read from the header alone (no torch needed)."""
    header = _header(data)
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()}


def is_safetensors(data: bytes) -> bool:
    """True if ``data`` starts with a well-formed safetensors header."""
    try:
        _header(data)
        return True
    except ValueError:
        return False


def _header(data: bytes) -> dict[str, Any]:
    if len(data) < 8:
        raise ValueError("too short to be safetensors")
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(MAX_HEADER_BYTES, len(data) - 8):
        raise ValueError("bad safetensors header length")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"bad safetensors header: {error}") from None
    if not isinstance(header, dict):
        raise ValueError("bad safetensors header: not an object")
    return header


def tensor_shapes(header_bytes: bytes) -> dict[str, list[int]]:
    """Each tensor's shape, from the header of safetensors bytes (the header is enough; no torch needed)."""
    return {name: [int(d) for d in entry.get("shape", [])] for name, entry in _header(header_bytes).items()
            if name != "__metadata__" and isinstance(entry, dict)}


def conv_layers(shapes: dict[str, list[int]]) -> list[str]:
    """Names of the 2-D convolutions among a state dict's tensors: modules whose ``weight`` is 4-D."""
    return [name[: -len(".weight")] for name, shape in shapes.items() if name.endswith(".weight") and len(shape) == 4]
