"""Per-batch cost of the model-code sandbox → ``benchmarks/results/sandbox.json``.

One template whose ``predict`` does next to nothing (``benchmarks/templates/constant.py``) is called with
float32 batches of 1×28×28 images — 32 instances (a serving mini-batch) and 1 — in this process and through
a sandbox (:mod:`easel.sandbox`: batch into shared memory, request over the socket, the answer back as
msgpack). The difference is what the sandbox adds to every mini-batch an inference worker runs. Also
measured: starting a sandbox and loading the template (once per trial, once per serving worker).

``--mode runner`` measures the same through a model-runner (:mod:`easel.sandbox.runner`, started here as a real
process; the Kubernetes path: connect, hand over the batch buffer, the runner forks a child) and writes
``sandbox-runner.json``. Run: ``.venv/bin/python benchmarks/sandbox.py [--calls N] [--mode bwrap|runner]``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from easel.blobstore import LocalBlobStore  # noqa: E402
from easel.chaos import wait_for  # noqa: E402
from easel.db.enums import ModelSource  # noqa: E402
from easel.db.models import Model  # noqa: E402
from easel.sandbox import open_sandboxed  # noqa: E402
from easel.sandbox.handoff import SOCKET_NAME  # noqa: E402
from easel.settings import SandboxMode, Settings  # noqa: E402

TEMPLATE = ROOT / "benchmarks" / "templates" / "constant.py"
RESULTS = {"bwrap": ROOT / "benchmarks" / "results" / "sandbox.json",
           "runner": ROOT / "benchmarks" / "results" / "sandbox-runner.json"}
SHAPE = (1, 28, 28)


def in_process_template() -> Any:
    spec = importlib.util.spec_from_file_location("bench_constant", TEMPLATE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Constant(unused=0.5)


def time_calls(predict: Any, batch: np.ndarray, calls: int) -> list[float]:
    for _ in range(20):  # warm-up
        predict(batch, 1.0)
    seconds = []
    for _ in range(calls):
        began = time.perf_counter()
        predict(batch, 1.0)
        seconds.append(time.perf_counter() - began)
    return seconds


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {"median_us": statistics.median(ordered) * 1e6, "p90_us": ordered[int(0.9 * (len(ordered) - 1))] * 1e6,
            "min_us": ordered[0] * 1e6}


@contextlib.contextmanager
def runner_settings(work: Path) -> Iterator[Settings]:
    """A model-runner process (its isolation picked as in a pod: ``auto``) and settings that use it."""
    socket_dir = work / "runner"
    runner = subprocess.Popen([sys.executable, "-m", "easel.sandbox.runner", "--socket-dir", str(socket_dir),
                               "--scratch-dir", str(work / "scratch")], env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_for(lambda: (socket_dir / SOCKET_NAME).exists(), 60, "the model runner")
        yield Settings(sandbox_mode=SandboxMode.RUNNER, sandbox_runner_dir=socket_dir)
    finally:
        runner.terminate()
        runner.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--mode", choices=["bwrap", "runner"], default="bwrap")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="easel-bench-sandbox-") as work, (
            runner_settings(Path(work)) if args.mode == "runner" else contextlib.nullcontext(Settings())) as settings:
        blobs = LocalBlobStore(Path(work) / "blobs")
        blobs.put_bytes("models/constant.py", TEMPLATE.read_bytes())
        model = Model(id="bench", name="constant", task="TEST", source=ModelSource.UPLOADED,
                      model_class="Constant", module_ref="models/constant.py", knob_config={})
        starts = []
        for _ in range(3):
            began = time.perf_counter()
            open_sandboxed(model, blobs, settings, {"unused": 0.5}).close()
            starts.append(time.perf_counter() - began)
        local = in_process_template()
        rows = []
        with open_sandboxed(model, blobs, settings, {"unused": 0.5}, cpu_capped=False) as sandboxed:
            for size in (32, 1):
                batch = np.random.default_rng(0).random((size, *SHAPE), dtype=np.float32)
                inside = summary(time_calls(sandboxed.predict, batch, args.calls))
                here = summary(time_calls(local.predict, batch, args.calls))
                rows.append({"batch": size, "shape": list(SHAPE), "bytes": int(batch.nbytes),
                             "sandboxed": inside, "in_process": here,
                             "overhead_median_us": inside["median_us"] - here["median_us"]})
    print(f"{'batch':>6} {'bytes':>8} {'sandboxed median':>17} {'p90':>9} {'in-process':>11} {'overhead':>9}")
    for row in rows:
        print(f"{row['batch']:>6} {row['bytes']:>8} {row['sandboxed']['median_us']:>14.1f} µs "
              f"{row['sandboxed']['p90_us']:>6.1f} µs {row['in_process']['median_us']:>8.1f} µs "
              f"{row['overhead_median_us']:>6.1f} µs")
    print(f"start a sandbox + load the template: median {statistics.median(starts):.3f} s")
    results = RESULTS[args.mode]
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({
        "benchmark": "sandbox", "mode": args.mode, "calls": args.calls, "python": platform.python_version(),
        "machine": platform.machine(), "cpus": len(os.sched_getaffinity(0)), "load_average": os.getloadavg(),
        "start_and_load_s": {"median": statistics.median(starts), "all": starts}, "per_batch": rows,
    }, indent=2) + "\n")
    print(f"wrote {results.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
