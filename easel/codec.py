"""Wire encodings for queue messages: JSON (readable) or msgpack (compact). Never pickle."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

import msgpack

Codec = Literal["json", "msgpack"]


def encoder(codec: Codec) -> Callable[[Any], bytes]:
    if codec == "json":
        return lambda value: json.dumps(value, separators=(",", ":")).encode()
    if codec == "msgpack":
        return lambda value: msgpack.packb(value, use_bin_type=True)
    raise ValueError(f"unknown codec {codec!r}; use 'json' or 'msgpack'")


def decoder(codec: Codec) -> Callable[[bytes], Any]:
    if codec == "json":
        return lambda raw: json.loads(raw)
    if codec == "msgpack":
        return lambda raw: msgpack.unpackb(raw, raw=False)
    raise ValueError(f"unknown codec {codec!r}; use 'json' or 'msgpack'")
