"""Issue #13: uploaded template code runs in a sandbox that holds no secret, no network, no platform data.

A spy template (``spy_template.py``) is loaded through the same path the workers use (:func:`open_sandboxed`,
from the blob store) and ordered to attack: read the environment's secrets, ``/etc/shadow``, the data dir
and another user's blob; connect to the test session's real PostgreSQL and Redis and to the outside; fork
past its process limit; leave a process behind. Every attack fails, and nothing of it outlives ``close``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from easel.blobstore import LocalBlobStore
from easel.chaos import wait_for
from easel.db.enums import ModelSource
from easel.db.models import Model
from easel.model import TrainContext
from easel.model.checker import MAX_ERROR, TemplateCheckError, check_template_file
from easel.sandbox import SandboxedTemplate, SandboxError, open_sandboxed
from easel.settings import Settings

SPY = Path(__file__).with_name("spy_template.py")


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _spy(blobs: LocalBlobStore, settings: Settings, files: list[Path]) -> SandboxedTemplate:
    blobs.put_bytes("models/spy.py", SPY.read_bytes())
    model = Model(id="spy", name="spy", task="TEST", source=ModelSource.UPLOADED, model_class="Spy",
                  module_ref="models/spy.py", knob_config={})
    return open_sandboxed(model, blobs, settings, {"lr": 0.5}, files=files)


@pytest.fixture(scope="module")
def world(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The real stack's settings and blob store, a dataset given to the spy, another user's blob beside it."""
    blobs = LocalBlobStore(Path(settings.data_dir) / "blobs")
    blobs.put_bytes("datasets/mine.npz", b"x" * 1000)
    blobs.put_bytes("datasets/someone-elses.npz", b"secret rows")
    spy = _spy(blobs, settings, [blobs.local_path("datasets/mine.npz")])
    try:
        yield {"settings": settings, "blobs": blobs, "spy": spy}
    finally:
        spy.close()


def _ask(spy: SandboxedTemplate, *orders: str) -> list[str]:
    return spy.predict(list(orders))


def test_the_spy_runs_as_an_unprivileged_user_with_no_secret_in_its_environment(world: dict) -> None:
    assert os.environ.get("EASEL_SECRET_KEY")  # the parent holds it (tests/conftest.py sets it)
    env, uid, root = _ask(world["spy"], "env", "uid", "setuid0")
    names = env.removeprefix("ok: ").split()
    assert not [n for n in names if n.startswith("EASEL_") or "KEY" in n or "URL" in n], names
    assert set(names) <= {"HOME", "LANG", "PATH", "PWD", "TMPDIR", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
                          "PYTHONNOUSERSITE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCH_NUM_THREADS"}
    assert uid.split()[1] != "0" and uid.split()[2] != "0", uid
    assert root.startswith("denied"), root


def test_the_spy_reads_its_dataset_and_nothing_else(world: dict) -> None:
    spy, blobs, settings = world["spy"], world["blobs"], world["settings"]
    context = TrainContext()
    spy.train(str(blobs.local_path("datasets/mine.npz")), context=context)
    assert context.records == [("read the dataset", {"size": 1000.0})]  # callbacks reach the parent
    data_dir = Path(settings.data_dir)
    targets = ["/etc/shadow", "/etc/passwd", "/root/.bash_history", str(data_dir),
               str(blobs.local_path("datasets/someone-elses.npz")), str(data_dir / "postgres"),
               f"/proc/{os.getpid()}/environ", "/proc/1/environ"]
    answers = _ask(spy, *[f"read:{t}" for t in targets], f"list:{data_dir}", f"list:{data_dir / 'blobs'}")
    assert all(a.startswith("denied") for a in answers), dict(zip(targets + ["list", "list"], answers, strict=True))
    # Its code and the Python installation are read-only; only its scratch dir takes writes.
    code_dir = Path(__file__).resolve().parents[2] / "easel"
    written = _ask(spy, f"write:{code_dir}/owned.py", "write:/sandbox/code/easel/owned.py", "write:/tmp/ok")
    assert written[0].startswith("denied") and written[1].startswith("denied") and written[2] == "ok: wrote"
    assert not (code_dir / "owned.py").exists()


def test_the_spy_has_no_network(world: dict) -> None:
    settings = world["settings"]
    ports = {"postgres": settings.postgres_port, "redis": settings.redis_port, "kafka": settings.kafka_port}
    for port in ports.values():  # they are up, and the host reaches them
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    targets = [f"connect:127.0.0.1:{port}" for port in ports.values()] + ["connect:1.1.1.1:53",
                                                                           "connect:localhost:80"]
    answers = _ask(world["spy"], *targets)
    assert all(a.startswith("denied") for a in answers), dict(zip(targets, answers, strict=True))


def test_forks_stop_at_the_process_limit_and_nothing_outlives_close(settings: Settings, tmp_path: Path) -> None:
    limited = settings.model_copy(update={"sandbox_nproc": 24})
    spy = _spy(LocalBlobStore(tmp_path / "blobs"), limited, [])
    marker = f"easel-spy-{uuid.uuid4().hex}"
    try:
        spawned, forked = _ask(spy, f"spawn:{marker}", "fork:200")
        assert forked.startswith("denied: BlockingIOError after"), forked
        assert int(forked.rsplit(" ", 1)[1]) < 24
        assert spawned == "ok: spawned"
        assert _processes_with(marker), "the detached grandchild should be running while the sandbox is open"
        bwrap_pid = spy.process.child.process.pid
    finally:
        spy.close()
    # The kernel kills what is left in the sandbox's PID namespace once its init is gone: give it a moment on a
    # busy machine (polled, not slept), then nothing may remain.
    wait_for(lambda: _processes_with(marker) == [], 30, "the detached grandchild to be gone after close")
    assert not Path(f"/proc/{bwrap_pid}").exists()


def test_a_template_error_is_the_templates_own_and_a_call_past_its_timeout_kills_the_sandbox(
        settings: Settings, tmp_path: Path) -> None:
    spy = _spy(LocalBlobStore(tmp_path / "blobs"), settings.model_copy(update={"sandbox_call_timeout_s": 3}), [])
    try:
        with pytest.raises(ValueError, match="dataset_path /etc/shadow was not given"):
            spy.train("/etc/shadow")
        with pytest.raises(SandboxError) as caught:
            spy.predict(["raise"])
        assert caught.value.kind == "RuntimeError" and caught.value.detail == "the spy failed on purpose"
        assert "Traceback" in str(caught.value) and "/tmp/template.py" in str(caught.value)
        with pytest.raises(ValueError, match="cannot send"):
            spy.predict([10 ** 400])  # refused before it is sent
        assert _ask(spy, "uid")[0].startswith("ok")  # an error in a call leaves the sandbox serving
        with pytest.raises(SandboxError) as caught:
            _ask(spy, "sleep:60")
        assert caught.value.kind == "Timeout"
        assert spy.process.child.process.poll() is not None  # killed, and reaped
        with pytest.raises(SandboxError, match="closed"):
            _ask(spy, "uid")
    finally:
        spy.close()


def test_the_checkers_message_carries_only_the_templates_error_truncated(tmp_path: Path) -> None:
    path = tmp_path / "leaky.py"
    path.write_text("import glob\nstolen = [open(p).read() for p in ['/etc/shadow', '/etc/passwd'] + "
                    "glob.glob('/root/*') if __import__('os').path.exists(p)]\n"
                    "raise RuntimeError('STOLEN:' + repr(stolen) + 'x' * 10000)\n")
    with pytest.raises(TemplateCheckError) as caught:
        check_template_file(path, timeout_s=20)
    message = str(caught.value)
    assert "STOLEN:[]" in message  # it found nothing to steal
    assert "RuntimeError" in message and len(message) <= MAX_ERROR


def test_no_platform_process_loads_uploaded_code(tmp_path: Path) -> None:
    from easel.model.loading import UntrustedTemplateError, load_template_class

    blobs = LocalBlobStore(tmp_path / "blobs")
    blobs.put_bytes("models/spy.py", b"raise SystemExit('ran in the platform process')\n")
    model = Model(id="spy", name="spy", task="TEST", source=ModelSource.UPLOADED, model_class="Spy",
                  module_ref="models/spy.py", knob_config={})
    with pytest.raises(UntrustedTemplateError, match="runs only in a sandbox"):
        load_template_class(model, blobs)


def test_each_sandbox_has_its_own_uid_so_process_budgets_are_not_shared(settings: Settings, tmp_path: Path) -> None:
    """RLIMIT_NPROC is counted per uid: with one shared uid a second sandbox could fork 3 of its 30 after a
    first had forked 25. Leased uids give each its whole budget."""
    limited = settings.model_copy(update={"sandbox_nproc": 30})
    first = _spy(LocalBlobStore(tmp_path / "a"), limited, [])
    second = _spy(LocalBlobStore(tmp_path / "b"), limited, [])
    try:
        (uid_a, forked_a), (uid_b, forked_b) = _ask(first, "uid", "fork:25"), _ask(second, "uid", "fork:25")
        assert forked_a == forked_b == "ok: 25", (forked_a, forked_b)
        assert uid_a != uid_b, "two live sandboxes share a uid"
        first_uid = int(uid_a.split()[1])
        assert settings.sandbox_uid <= first_uid < settings.sandbox_uid + settings.sandbox_uid_count
    finally:
        first.close()
        second.close()
