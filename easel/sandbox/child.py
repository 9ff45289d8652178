"""The sandbox's side: ``python -m easel.sandbox.child --socket-fd N --shm-fd M --limits JSON [--uid U]``.

Started only by :class:`easel.sandbox.process.SandboxProcess` inside bubblewrap. It first gives up what it
may not keep (root: becomes ``--uid``; then lowers its rlimits), then loads the template and serves the
parent's requests one at a time until the socket closes. Everything it answers is plain data
(:mod:`easel.sandbox.wire`); a failure is answered with the template's own exception, type, message and
traceback tail — the parent decides what to show.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

from easel.batch_buffers import BatchBuffers, DeviceTimer
from easel.sandbox import wire
from easel.sandbox.limits import SandboxLimits, apply_limits
from easel.sandbox.shm import SharedBuffer

MAX_REQUEST_BYTES = 2 << 30
PR_SET_DUMPABLE = 4


def template_file() -> Path:
    """Where the uploaded source is written: the child's private scratch dir (``/tmp`` inside bubblewrap, the
    connection's own dir under a model-runner without it)."""
    return Path(os.environ.get("TMPDIR") or "/tmp") / "template.py"


def drop_privileges(uid: int) -> None:
    """root (with only CAP_SETUID/CAP_SETGID, left by bwrap) → ``uid``/``uid``, no groups, no capabilities."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise SystemExit("could not drop privileges")


def not_dumpable() -> None:
    """No other process of this uid (a sibling sandbox under the same model-runner) may ptrace this one or read
    its memory and environment through /proc."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def receive(self) -> dict[str, Any]:
        return wire.receive(self.sock, max_bytes=MAX_REQUEST_BYTES)

    def send(self, message: dict[str, Any]) -> None:
        wire.send(self.sock, message)


class ForwardingContext:
    """The template's TrainContext: calls go to the parent's real one (``should_stop`` waits for its answer)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def log(self, message: str, **metrics: float) -> None:
        self.channel.send({"callback": "log", "args": [str(message)],
                           "kwargs": {str(k): float(v) for k, v in metrics.items()}})

    def should_stop(self, epoch: int, score: float) -> bool:
        self.channel.send({"callback": "should_stop", "args": [int(epoch), float(score)], "wants_answer": True})
        return bool(self.channel.receive().get("answer"))


class Server:
    def __init__(self, channel: Channel, shm: SharedBuffer) -> None:
        self.channel, self.shm = channel, shm
        self.cls: Any = None
        self.template: Any = None
        self.last_unit_state: bytes | None = None  # what train_unit returned last (the parent may reuse it)
        # Where each batch from shared memory is put for the template: reused, and pinned when it runs on a GPU.
        self.buffers = BatchBuffers(1)

    def serve(self) -> None:
        while True:
            try:
                request = self.channel.receive()
            except EOFError:
                return
            op = request.get("op")
            handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
            try:
                if handler is None:
                    raise ValueError(f"unknown request {op!r}")
                reply = {"ok": True, "result": wire.encode(handler(request))}
            except BaseException as error:  # noqa: BLE001 - the template's failure (even sys.exit) is the answer
                reply = {"ok": False, "kind": type(error).__name__, "message": str(error)[:2000],
                         "traceback": "".join(traceback.format_exception(error))[-3000:]}
            self.channel.send(reply)

    # -- loading ---------------------------------------------------------------------------------------------
    def op_load(self, request: dict[str, Any]) -> dict[str, Any]:
        from easel.model.check_template import find_class, load_module

        if request.get("source") is not None:
            template_file().write_bytes(request["source"])
            module = load_module(template_file())
        else:
            module = importlib.import_module(str(request["module"]))
        self.cls = find_class(module, request.get("class_name"))
        return {"class_name": self.cls.__name__, "slice_rates": [float(r) for r in self.cls.SLICE_RATES],
                "tasks": [str(t) for t in self.cls.TASKS], "units": bool(self.cls.supports_units())}

    def op_check(self, request: dict[str, Any]) -> dict[str, Any]:
        from easel.model.check_template import check

        template_file().write_bytes(request["source"])
        return check(template_file(), request.get("class_name"))

    def op_create(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.cls is None:
            raise ValueError("no template loaded")
        self.template = self.cls(**dict(request.get("knobs") or {}))
        self.last_unit_state = None  # the previous instance's: never continued by this one
        return {"knobs": dict(self.template.knobs)}

    # -- the BaseModel interface -------------------------------------------------------------------------
    def _queries(self, request: dict[str, Any]) -> Any:
        queries = request.get("queries")
        if isinstance(queries, dict) and "shm" in queries:
            return self.shm.load_into(queries["shm"], self.buffers)
        return wire.decode(queries)

    def op_train(self, request: dict[str, Any]) -> None:
        self.template.train(request["dataset_path"], context=ForwardingContext(self.channel),
                            **dict(request.get("kwargs") or {}))

    def op_planned_epochs(self, _request: dict[str, Any]) -> int:
        return int(self.template.planned_epochs())

    def op_train_unit(self, request: dict[str, Any]) -> bytes:
        from easel.model.template import UnitSpec

        spec = dict(request["unit"])
        unit = UnitSpec(**{**spec, "shard_sizes": tuple(spec.get("shard_sizes") or ())})
        state = self.last_unit_state if request.get("same_state") else request.get("state")
        self.last_unit_state = bytes(self.template.train_unit(request["dataset_path"], state, unit,
                                                              context=ForwardingContext(self.channel)))
        return self.last_unit_state

    def op_evaluate(self, request: dict[str, Any]) -> float:
        return float(self.template.evaluate(request["dataset_path"], float(request["slice_rate"])))

    def op_predict(self, request: dict[str, Any]) -> Any:
        return list(self.template.predict(self._queries(request), float(request["slice_rate"])))

    def op_predict_array(self, request: dict[str, Any]) -> Any:
        """``predict`` for the serving path: numeric predictions go back as one raw array (``wire.numeric_rows``),
        anything else as ``op_predict`` sends it; beside them the call's GPU time (None on a CPU)."""
        queries = self._queries(request)
        with DeviceTimer() as timer:
            outputs = self.template.predict(queries, float(request["slice_rate"]))
        array = wire.numeric_rows(outputs)
        return {"outputs": array if array is not None else list(outputs), "device_s": timer.seconds}

    def op_profile(self, request: dict[str, Any]) -> Any:
        queries = self._queries(request) if request.get("queries") is not None else None
        return self.template.profile(request["dataset_path"], request.get("slice_rates"),
                                     batch_size=int(request["batch_size"]), queries=queries,
                                     repeats=int(request["repeats"]))

    def op_dump_parameters(self, _request: dict[str, Any]) -> bytes:
        return bytes(self.template.dump_parameters())

    def op_load_parameters(self, request: dict[str, Any]) -> None:
        self.template.load_parameters(request["params"])

    def op_explain(self, request: dict[str, Any]) -> Any:
        """Run a platform explanation function (``"module:name"``) next to the template's network."""
        module_name, _, name = str(request["function"]).partition(":")
        function = getattr(importlib.import_module(module_name), name)
        result = function(self.template, wire.decode(request["instance"]), float(request["rate"]),
                          **dict(request.get("options") or {}))
        return vars(result) if hasattr(result, "__dataclass_fields__") else result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m easel.sandbox.child")
    parser.add_argument("--socket-fd", type=int, required=True)
    parser.add_argument("--shm-fd", type=int, required=True)
    parser.add_argument("--limits", type=json.loads, required=True)
    parser.add_argument("--uid", type=int, default=None)
    args = parser.parse_args(argv)
    if args.uid is not None:
        drop_privileges(args.uid)
    not_dumpable()
    apply_limits(SandboxLimits.from_json(args.limits))
    sys.stdout = sys.stderr  # the template's prints go to the worker's log, never into the protocol
    sock = socket.socket(fileno=args.socket_fd)
    Server(Channel(sock), SharedBuffer(args.shm_fd)).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
