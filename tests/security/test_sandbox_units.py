"""Pure pieces of the sandbox: the wire format refuses what a hostile child could send, and the bwrap command
line gives the child nothing beyond what it should see."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import msgpack
import numpy as np
import pytest

from easel.sandbox import wire
from easel.sandbox.bwrap import SandboxSpec, bwrap_argv
from easel.sandbox.errors import truncate
from easel.sandbox.limits import SandboxLimits


def test_arrays_and_rows_round_trip() -> None:
    rows = list(np.arange(12, dtype=np.float32).reshape(3, 4))
    back = wire.decode(msgpack.unpackb(msgpack.packb(wire.encode({"p": rows, "n": np.int64(3)}))))
    assert back["n"] == 3 and isinstance(back["n"], int)
    assert len(back["p"]) == 3 and all(np.array_equal(a, b) for a, b in zip(back["p"], rows, strict=True))


def test_lists_of_float_rows_travel_as_one_array_and_come_back_as_the_same_lists() -> None:
    probabilities = (np.random.default_rng(0).random((32, 10), dtype=np.float32)).tolist()  # like tensor.tolist()
    encoded = wire.encode(probabilities)
    assert set(encoded) == {wire.FLOAT_ROWS_TAG}, "one array, not a msgpack number per float"
    back = wire.decode(msgpack.unpackb(msgpack.packb(encoded)))
    assert back == probabilities and type(back[0][0]) is float
    # Anything else keeps its types: ints, bools, mixed or ragged rows travel element by element.
    for other in ([[1, 2], [3, 4]], [[1.5, 2]], [[True, 1.0]], [[1.0], [2.0, 3.0]], [[]], [1.0, 2.0]):
        assert wire.decode(msgpack.unpackb(msgpack.packb(wire.encode(other)))) == other
        assert not isinstance(wire.encode(other), dict)
    with pytest.raises(wire.ProtocolError):
        wire.decode({wire.FLOAT_ROWS_TAG: wire.encode(np.zeros(3))})  # not 2-D


def test_numeric_predictions_become_one_array_and_anything_else_stays_as_it_was() -> None:
    probabilities = np.random.default_rng(1).random((32, 10)).tolist()  # like tensor.tolist()
    rows = wire.numeric_rows(probabilities)
    assert rows is not None and rows.shape == (32, 10) and rows.tolist() == probabilities
    assert wire.numeric_rows([[1, 2], [3, 4]]).dtype.kind == "i"  # type: ignore[union-attr]
    assert wire.numeric_rows([np.zeros(3, np.float32)] * 4).shape == (4, 3)  # type: ignore[union-attr]
    assert wire.numeric_rows(np.arange(5)).tolist() == [0, 1, 2, 3, 4]  # type: ignore[union-attr]
    # Not regular numbers: the worker keeps them as values (the serving wire's own rule, ``output_array``).
    for other in ([[1.0], [2.0, 3.0]], ["cat", "dog"], [True, False], [{"label": 1}], [], [10 ** 400], "text"):
        assert wire.numeric_rows(other) is None


@pytest.mark.parametrize("tagged", [
    ["object", [1], b"x"],               # a dtype numpy would build objects from
    ["float32", [2], b"\0" * 7],          # bytes that do not fill the shape
    ["float32", [-1], b""],               # a negative size
    ["uint8", [1] * 9, b"\0"],            # too many dimensions
    ["uint8", "1", b"\0"],                # no list of sizes
    "not even a list",
])
def test_a_malformed_array_is_refused(tagged: object) -> None:
    with pytest.raises(wire.ProtocolError):
        wire.decode({wire.ARRAY_TAG: tagged})


def test_an_oversized_or_undecodable_frame_is_refused() -> None:
    left, right = socket.socketpair()
    with left, right:
        right.sendall(wire.HEADER.pack(1 << 40))
        with pytest.raises(wire.ProtocolError, match="over the limit"):
            wire.receive(left, max_bytes=1 << 20)
        right.sendall(wire.HEADER.pack(3) + b"\xc1\xc1\xc1")  # 0xc1 is never valid msgpack
        with pytest.raises(wire.ProtocolError):
            wire.receive(left, max_bytes=1 << 20)
        right.close()
        with pytest.raises(EOFError):
            wire.receive(left, max_bytes=1 << 20)


def test_the_command_line_isolates_the_child(tmp_path: Path) -> None:
    dataset = tmp_path / "train.npz"
    dataset.write_bytes(b"x")
    spec = SandboxSpec(limits=SandboxLimits(), files={dataset: "/sandbox/files/0/train.npz"})
    privileged = bwrap_argv(spec, ["python"], privileged=True)
    unprivileged = bwrap_argv(spec, ["python"], privileged=False)
    for argv in (privileged, unprivileged):
        assert {"--die-with-parent", "--new-session", "--clearenv"} <= set(argv)
        assert argv[argv.index("--") + 1:] == ["python"]
        binds = [(argv[i], argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a.endswith("bind")]
        assert all(option == "--ro-bind" for option, _, _ in binds)  # nothing writable from the host
        assert (("--ro-bind", str(dataset), "/sandbox/files/0/train.npz")) in binds
        assert not [dest for _, _, dest in binds if dest.startswith("/etc") and dest != "/etc/ld.so.cache"]
        assert not [dest for _, _, dest in binds if dest.startswith(str(tmp_path.parent))]
        env = {argv[i + 1] for i, a in enumerate(argv) if a == "--setenv"}
        assert not [name for name in env if name.startswith("EASEL_")]
    assert "--unshare-net" in privileged and "--cap-add" in privileged and "--unshare-user" not in privileged
    assert "--unshare-all" in unprivileged and "--disable-userns" in unprivileged


def test_truncation_keeps_what_failed_and_where() -> None:
    text = "RuntimeError: start" + "x" * 10_000 + "line 3, in <module>"
    cut = truncate(text, 200)
    assert len(cut) == 200 and cut.startswith("RuntimeError: start") and cut.endswith("line 3, in <module>")


def test_what_msgpack_cannot_carry_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="cannot send this to a sandbox"):
        wire.frame({"queries": [10 ** 400]})
    with pytest.raises(ValueError, match="cannot send this to a sandbox"):
        wire.frame({"queries": [object()]})


def test_a_python_under_tmp_is_bound_on_top_of_the_scratch_tmpfs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout or virtualenv in /tmp (a fresh clone there) must stay visible: the scratch tmpfs at /tmp is
    mounted before the binds, never over them."""
    from easel.sandbox import bwrap

    monkeypatch.setattr(bwrap, "python_roots", lambda: ["/tmp/a-clone/.venv", "/usr"])
    argv = bwrap_argv(SandboxSpec(limits=SandboxLimits(), files={}), ["python"], privileged=True)
    tmpfs = argv.index("--tmpfs", 0)
    assert argv[tmpfs + 1] == "/tmp"
    bind = next(i for i, a in enumerate(argv) if a == "--ro-bind" and argv[i + 2] == "/tmp/a-clone/.venv")
    assert tmpfs < bind
    assert ["--dir", "/tmp"] not in [argv[i:i + 2] for i in range(len(argv) - 1)]  # the tmpfs keeps mode 1777


def test_a_sandbox_start_carries_descriptors_and_refuses_what_does_not_fit(tmp_path: Path) -> None:
    from easel.sandbox import handoff

    given = tmp_path / "given.npz"
    given.write_bytes(b"rows")
    left, right = socket.socketpair()
    with left, right:
        fd = os.open(given, os.O_RDONLY)
        try:
            handoff.send_start(left, {"op": "start", "files": ["given.npz"]}, [fd])
        finally:
            os.close(fd)
        request, fds = handoff.receive_start(right)
        assert request == {"op": "start", "files": ["given.npz"]} and len(fds) == 1
        with os.fdopen(fds[0], "rb") as received:
            assert received.read() == b"rows"  # the runner reads what it was handed, by descriptor
        with pytest.raises(ValueError, match="at most"):
            handoff.send_start(left, {"op": "start"}, [0] * (handoff.MAX_FILES + 2))
        with pytest.raises(ValueError, match="over the limit"):
            handoff.send_start(left, {"op": "start", "pad": b"x" * handoff.MAX_START_BYTES}, [])
        left.sendall(wire.frame({"op": "start"}) + wire.frame({"op": "predict"}))  # a request before the start
        with pytest.raises(wire.ProtocolError, match="before the sandbox started"):
            handoff.receive_start(right)


def test_in_runner_mode_built_ins_run_in_the_runner_too() -> None:
    """The runner's container is where models run in Kubernetes (the pod's CPUs, memory and GPUs are its)."""
    from easel.db.enums import ModelSource
    from easel.db.models import Model
    from easel.sandbox import is_sandboxed
    from easel.settings import SandboxMode, Settings

    builtin = Model(id="b", name="b", task="T", source=ModelSource.BUILTIN, model_class="X", module_ref="m",
                    knob_config={})
    assert not is_sandboxed(builtin, Settings())
    assert is_sandboxed(builtin, Settings(sandbox_mode=SandboxMode.RUNNER))


def test_a_non_native_byte_order_is_converted_not_misread() -> None:
    """Allowed dtypes are looked up by value (``dtype.name`` costs µs per access on the serving path): a
    big-endian array, whose name is the native one's, must not travel as raw bytes read back natively."""
    big = np.arange(6, dtype=">f4").reshape(2, 3)
    assert wire.dtype_name(big.dtype) is None and wire.dtype_name(np.dtype("<f4")) == "float32"
    back = wire.decode(wire.encode(big))
    assert back.dtype == np.float64 and np.array_equal(back, big)
    assert wire.numeric_rows(big) is None, "the serving path gets no array it would misread"
