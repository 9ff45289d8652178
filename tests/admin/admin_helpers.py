"""Constants and small helpers shared by the admin tests (imported as ``admin_helpers``)."""

from __future__ import annotations

import json
import struct

SUPERADMIN_EMAIL = "root@easel.test"
SUPERADMIN_PASSWORD = "root-password-123"
PASSWORD = "a-fine-password"
MAX_UPLOAD = 256 * 1024
TASK = "IMAGE_CLASSIFICATION"


def fake_safetensors(seed: int) -> bytes:
    """A tiny, valid safetensors blob (one float32 tensor of 2 values)."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "__metadata__": {"seed": str(seed)}}).encode()
    return struct.pack("<Q", len(header)) + header + struct.pack("<ff", 1.0, float(seed))
