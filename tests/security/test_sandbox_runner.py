"""Runner mode (issue #13's Kubernetes boundary, on one machine): template children started by a real
model-runner process (``python -m easel.sandbox.runner``) running as another, unprivileged uid with a scrubbed
environment — the separate container without secrets, as processes. The platform side is this test process
(root, holding ``EASEL_SECRET_KEY``), talking through ``EASEL_SANDBOX_MODE=runner``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from demo.life_cycle import write_digits
from easel.blobstore import LocalBlobStore
from easel.chaos import wait_for
from easel.db.enums import ModelSource
from easel.db.models import Model
from easel.model import TrainContext
from easel.model.checker import check_template_file
from easel.sandbox import SandboxedTemplate, SandboxError, handoff, open_sandboxed
from easel.settings import SandboxMode, Settings

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts the runner as another uid (needs root)")

HERE = Path(__file__).parent
SPY = HERE / "spy_template.py"
MLP = HERE.parent / "cluster" / "tiny_mlp_template.py"
RUNNER_UID = 65534
RUNNERS: dict[Path, subprocess.Popen[bytes]] = {}


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


def _runner_python() -> tuple[str, list[str]]:
    """An interpreter RUNNER_UID may execute, and import paths to add: this virtualenv's packages, when its
    base interpreter lives where that uid cannot go (a pyenv under /root)."""
    try:
        subprocess.run([sys.executable, "-c", ""], user=RUNNER_UID, check=True, timeout=60)
        return sys.executable, []
    except PermissionError:
        system = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin:/bin")
        if system is None:
            pytest.skip(f"no Python {sys.version_info.major}.{sys.version_info.minor} that uid {RUNNER_UID} can run")
        return system, [sysconfig.get_paths()["purelib"]]


def _start_runner(isolation: str) -> tuple[subprocess.Popen[bytes], Path]:
    """A runner as the unprivileged RUNNER_UID, with only PATH and PYTHONPATH: no setting, no secret. Its dirs
    lie outside pytest's (root-only) temporary tree."""
    root = Path(tempfile.mkdtemp(prefix="easel-runner-"))
    root.chmod(0o755)
    socket_dir, scratch = root / "sock", root / "scratch"
    for folder in (socket_dir, scratch):
        folder.mkdir()
        os.chown(folder, RUNNER_UID, RUNNER_UID)
    python, paths = _runner_python()
    env = {"PATH": os.environ["PATH"],
           "PYTHONPATH": os.pathsep.join([os.environ.get("PYTHONPATH", str(HERE.parents[1])), *paths])}
    process = subprocess.Popen(
        [python, "-m", "easel.sandbox.runner", "--socket-dir", str(socket_dir), "--scratch-dir",
         str(scratch), "--isolation", isolation, "--peer-uid", str(os.getuid())],
        env=env, user=RUNNER_UID, group=RUNNER_UID, extra_groups=[], cwd=scratch, start_new_session=True)
    wait_for(lambda: (socket_dir / handoff.SOCKET_NAME).exists() or process.poll() is not None, 60,
             "the model runner's socket")
    assert process.poll() is None, "the runner exited at start"
    return process, socket_dir


def _stop(process: subprocess.Popen[bytes], socket_dir: Path) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    shutil.rmtree(socket_dir.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def runner() -> Iterator[Path]:
    process, socket_dir = _start_runner("none")
    RUNNERS[socket_dir] = process
    yield socket_dir
    _stop(process, socket_dir)


def _runner_settings(base: Settings, socket_dir: Path, **update: object) -> Settings:
    return base.model_copy(update={"sandbox_mode": SandboxMode.RUNNER, "sandbox_runner_dir": socket_dir, **update})


def _model(blobs: LocalBlobStore, source: Path, class_name: str) -> Model:
    blobs.put_bytes(f"models/{source.name}", source.read_bytes())
    return Model(id=class_name, name=class_name, task="TEST", source=ModelSource.UPLOADED, model_class=class_name,
                 module_ref=f"models/{source.name}", knob_config={})


def _spy(settings: Settings, tmp_path: Path, files: list[Path] = ()) -> SandboxedTemplate:  # type: ignore[assignment]
    blobs = LocalBlobStore(tmp_path / "blobs")
    return open_sandboxed(_model(blobs, SPY, "Spy"), blobs, settings, {"lr": 0.5}, files=files)


def test_a_real_template_trains_and_predicts_through_the_runner(runner: Path, settings: Settings,
                                                                tmp_path: Path) -> None:
    train_path, val_path = write_digits(tmp_path)
    blobs = LocalBlobStore(tmp_path / "blobs")
    knobs = {"lr": 0.1, "early_stop": False, "quick_train": False}
    context = TrainContext()
    with open_sandboxed(_model(blobs, MLP, "TinySlicedMLP"), blobs, _runner_settings(settings, runner), knobs,
                        files=[train_path, val_path]) as template:
        assert not template.process.spec.files[train_path.resolve()].startswith(str(tmp_path)), \
            "the child reads its own copy, not the platform's file"
        template.train(str(train_path), context=context)
        accuracy = template.evaluate(str(val_path))
        images = np.load(val_path)["x"]
        predictions = template.predict(images, 1.0)  # through the shared buffer handed over as a descriptor
        params = template.dump_parameters()
    assert context.records, "the training context's callbacks came back through the runner"
    assert accuracy > 0.3, accuracy  # 10 classes: far above chance after 3 epochs
    assert len(predictions) == len(images) and np.asarray(predictions[0]).shape == (10,)
    assert len(params) > 1000
    info = check_template_file(MLP, "TinySlicedMLP", settings=_runner_settings(settings, runner))
    assert info.class_name == "TinySlicedMLP"


def test_the_runners_child_holds_no_secret_and_runs_as_the_runners_user(runner: Path, settings: Settings,
                                                                       tmp_path: Path) -> None:
    assert os.environ.get("EASEL_SECRET_KEY")  # the platform (this process) holds it
    dataset = tmp_path / "mine.npz"
    dataset.write_bytes(b"x" * 1000)
    dataset.chmod(0o600)  # readable by the platform only: the runner gets a descriptor, not a path
    with _spy(_runner_settings(settings, runner), tmp_path, [dataset]) as spy:
        env, uid, root, own, platform_file = spy.predict(
            ["env", "uid", "setuid0", f"read:{spy.process.spec.files[dataset.resolve()]}", f"read:{dataset}"])
        names = env.removeprefix("ok: ").split()
        assert not [n for n in names if n.startswith("EASEL_") or "KEY" in n or "URL" in n], names
        assert set(names) <= {"HOME", "LANG", "PATH", "PWD", "TMPDIR", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
                              "PYTHONNOUSERSITE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCH_NUM_THREADS"}
        assert uid.split()[1:3] == [str(RUNNER_UID), str(RUNNER_UID)], uid
        assert root.startswith("denied"), root
        assert own == "ok: read 1000 bytes" and platform_file.startswith("denied"), (own, platform_file)
        with pytest.raises(ValueError, match="was not given"):
            spy.train("/etc/shadow")


def test_a_child_that_hangs_or_forks_is_killed_with_all_it_started(runner: Path, settings: Settings,
                                                                   tmp_path: Path) -> None:
    spy = _spy(_runner_settings(settings, runner, sandbox_nproc=64, sandbox_call_timeout_s=3), tmp_path)
    marker = f"easel-runner-spy-{uuid.uuid4().hex}"
    try:
        spawned, forked = spy.predict([f"spawn:{marker}", "fork:20"])
        assert spawned == "ok: spawned" and forked == "ok: 20", (spawned, forked)
        assert _processes_with(marker), "the detached (setsid) grandchild runs while the sandbox is open"
        with pytest.raises(SandboxError) as caught:
            spy.predict(["sleep:60"])
        assert caught.value.kind == "Timeout"
    finally:
        spy.close()
    # close waited for the runner to confirm: what the template started, its own session included, is gone.
    assert _processes_with(marker) == []
    # ...and so is every child of the sandbox (the 20 forks, the timed-out one); the runner's handler exits
    # right after, reaped by the runner within its accept loop's second.
    wait_for(lambda: _descendants(RUNNERS[runner].pid) == [], 30, "the runner to have no process but itself")


def _descendants(root: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


PLATFORM = """
import sys, time
from pathlib import Path
from easel.blobstore import LocalBlobStore
from easel.db.enums import ModelSource
from easel.db.models import Model
from easel.sandbox import open_sandboxed
from easel.settings import SandboxMode, Settings

spy, blobs_dir, runner_dir, marker = sys.argv[1:5]
blobs = LocalBlobStore(Path(blobs_dir))
blobs.put_bytes("models/spy.py", Path(spy).read_bytes())
model = Model(id="s", name="s", task="T", source=ModelSource.UPLOADED, model_class="Spy", module_ref="models/spy.py",
              knob_config={})
settings = Settings(sandbox_mode=SandboxMode.RUNNER, sandbox_runner_dir=Path(runner_dir))
template = open_sandboxed(model, blobs, settings, {"lr": 0.5})
print(template.predict([f"spawn:{marker}"])[0], flush=True)
time.sleep(600)
"""


def test_a_platform_that_dies_takes_its_sandbox_along(runner: Path, tmp_path: Path) -> None:
    """The platform container crashing (no close) is a disconnect too: the runner kills what it started."""
    marker = f"easel-orphan-spy-{uuid.uuid4().hex}"
    platform = subprocess.Popen([sys.executable, "-c", PLATFORM, str(SPY), str(tmp_path / "blobs"), str(runner),
                                 marker], stdout=subprocess.PIPE, text=True)
    try:
        assert platform.stdout is not None and platform.stdout.readline().strip() == "ok: spawned"
        assert _processes_with(marker), "the sandbox's detached grandchild runs"
    finally:
        platform.kill()
        platform.wait()
    wait_for(lambda: _processes_with(marker) == [], 30, "the runner to kill the dead platform's sandbox")


def test_only_the_platforms_uid_may_start_sandboxes(runner: Path, settings: Settings, tmp_path: Path) -> None:
    code = ("import socket, sys\n"
            "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
            "s.settimeout(20); print(len(s.recv(100)))\n")
    python, _paths = _runner_python()
    other = subprocess.run([python, "-c", code, str(runner / handoff.SOCKET_NAME)], user=RUNNER_UID,
                           capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]})
    assert other.stdout.strip() == "0", other.stderr  # closed at once, no sandbox
    with pytest.raises(SandboxError) as caught:  # and a runner that is not there is a clear error
        _spy(_runner_settings(settings, tmp_path / "nowhere"), tmp_path)
    assert caught.value.kind == "NoRunner"


def test_with_user_namespaces_the_runner_also_cuts_its_child_off_the_network(
        settings: Settings, tmp_path: Path, local_stack: object) -> None:
    process, socket_dir = _start_runner("bwrap")
    try:
        redis_port = int(str(settings.resolved_redis_url).rsplit(":", 1)[1].split("/")[0])
        with _spy(_runner_settings(settings, socket_dir), tmp_path) as spy:
            uid, redis, listing = spy.predict(["uid", f"connect:127.0.0.1:{redis_port}", f"list:{socket_dir}"])
        assert uid.startswith("ok") and redis.startswith("denied"), (uid, redis)
        assert listing.startswith("denied"), "the runner's socket dir is not in the child's mount namespace"
    finally:
        _stop(process, socket_dir)
