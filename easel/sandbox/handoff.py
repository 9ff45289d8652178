"""Runner mode's start of a sandbox: one frame from the platform to the model-runner, one reply back.

The platform connects to the runner's Unix socket and sends a *start* frame (:mod:`easel.sandbox.wire`) whose
ancillary data (``SCM_RIGHTS``) carries descriptors: first the shared batch buffer (a memfd,
:mod:`easel.sandbox.shm`), then each file the sandbox may read, opened read-only by the platform. Descriptors
rather than paths: the runner mounts none of the platform's volumes and can read exactly what it is handed,
and no batch buffer lies in a shared directory where another sandbox could open it. The runner answers
``{"ok": true, "files": [where the child sees each file]}`` (or ``ok: false`` and a message); from then on the
same connection is the template child's socket, and closing it is what ends the sandbox.

Example::

    send_start(sock, {"op": "start", "limits": {...}, "files": ["train.npz"]}, [shm.fd, dataset_fd])
    reply = wire.receive(sock, max_bytes=MAX_START_BYTES)
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

from easel.sandbox import wire

SOCKET_NAME = "runner.sock"
MAX_START_BYTES = 64 << 10
MAX_FILES = 64  # descriptors of given files in one start frame (plus the batch buffer's)


def send_start(sock: socket.socket, request: dict[str, Any], fds: Sequence[int]) -> None:
    """Send the start frame with ``fds`` attached to its first byte."""
    data = wire.frame(request)
    if len(data) > MAX_START_BYTES:
        raise ValueError(f"a sandbox start of {len(data)} bytes is over the limit of {MAX_START_BYTES}")
    if len(fds) > MAX_FILES + 1:
        raise ValueError(f"files: at most {MAX_FILES} files can be given to one sandbox")
    sent = socket.send_fds(sock, [data], list(fds))
    sock.sendall(data[sent:])


def receive_start(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The start frame and the descriptors that came with it (the caller owns and closes them)."""
    data, fds, flags, _address = socket.recv_fds(sock, MAX_START_BYTES, MAX_FILES + 1)
    try:
        if flags & socket.MSG_CTRUNC:
            raise wire.ProtocolError("more descriptors than a sandbox start may carry")
        if not data:
            raise EOFError("the platform closed the connection before starting a sandbox")
        while len(data) < wire.HEADER.size:
            data += _more(sock, wire.HEADER.size - len(data))
        (size,) = wire.HEADER.unpack(data[:wire.HEADER.size])
        if size > MAX_START_BYTES:
            raise wire.ProtocolError(f"a start frame of {size} bytes is over the limit of {MAX_START_BYTES}")
        body = data[wire.HEADER.size:]
        if len(body) > size:
            raise wire.ProtocolError("bytes after the start frame (a request before the sandbox started)")
        while len(body) < size:
            body += _more(sock, size - len(body))
        return wire.unpack_frame(body), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _more(sock: socket.socket, size: int) -> bytes:
    chunk = sock.recv(size)
    if not chunk:
        raise EOFError("the platform closed the connection in the middle of a start frame")
    return chunk
