"""CPU outside the model, per component, at one width; and the quiet 1-instance round trip →
``benchmarks/results/serving-cpu.json``.

The quantity a shared machine cannot blur: CPU seconds (process counters) spent per instance by each part of
the serving pipeline while it runs closed-loop at one fixed width, less the model's own CPU (mini-batches run x
the bare model's CPU seconds per mini-batch, measured here in a process of its own). Parts: the predictor, the
broker, Redis, each worker's own process (consume, decode, plan, publish) and its sandbox child (the template
behind its socket: the child's CPU less the model's is the sandbox hop's cost). The load generator is apart.

Then the 1-instance round trip in a quiet sequential loop: p50, and the predictor's per-stage means (to the
worker, queued, compute, back) — what dominates it.

Same set-up as ``benchmarks/serving.py`` (whose helpers it uses): the sliced MLP 4096x3, two workers.
``--py-spy PATH`` also records a py-spy profile (``--format raw``, collapsed stacks) of the predictor, one
worker and its sandbox child during the first window, into ``$TMPDIR/easel-serving-profiles/``.

Run: ``.venv/bin/python benchmarks/serving_cpu.py --rate 0.25 --model-cache /tmp/easel-bench-model``
(~3 min with a cached model on an idle machine; training the model first takes ~5-10 min more).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import serving as bench  # benchmarks/serving.py (it puts the project root first on sys.path)

ROOT = bench.ROOT
RESULTS = ROOT / "benchmarks" / "results" / "serving-cpu.json"
PROFILES = Path(tempfile.gettempdir()) / "easel-serving-profiles"  # working material, not results


def family_cpu(pid: int) -> tuple[float, float]:
    """(the process's own CPU seconds, its live descendants' CPU seconds)."""
    import psutil

    process = psutil.Process(pid)
    own = process.cpu_times()
    rest = 0.0
    for child in process.children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        rest += times.user + times.system
    return own.user + own.system, rest


def sandbox_child(pid: int) -> int | None:
    """The python process inside a worker's sandbox (bwrap's descendant that runs easel.sandbox.child)."""
    import psutil

    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "easel.sandbox.child" in " ".join(child.cmdline()):
                return child.pid
        except psutil.NoSuchProcess:
            continue
    return None


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of a process's threads, summed by thread name (``/proc/PID/task/TID/comm``: librdkafka names
    its threads ``rdk:...``; Python's threads keep the process's name) — what a Python profiler cannot see."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = "rdkafka" if name.startswith("rdk:") else name
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


def system_cpu(pids: dict[str, int]) -> dict[str, float]:
    """Each process's own kernel CPU seconds (socket copies, wake-ups: what a Python profiler does not see)."""
    import psutil

    out = {}
    for name, pid in pids.items():
        try:
            out[name] = psutil.Process(pid).cpu_times().system
        except psutil.NoSuchProcess:
            out[name] = 0.0
    return out


def read_cpu(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        own, rest = family_cpu(pid)
        if name.startswith("worker"):
            out[name] = own
            out[f"{name}-sandbox"] = rest
        else:
            out[name] = own + rest
    return out


SPY_GIL = True  # py-spy samples only the thread holding the GIL (``--py-spy-all-threads``: every running thread)


def spy(py_spy: str, pid: int, seconds: float, name: str) -> subprocess.Popen[bytes]:
    PROFILES.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([py_spy, "record", "--pid", str(pid), "--duration", str(math.ceil(seconds)),
                             "--format", "raw", "--rate", "500", *(["--gil"] if SPY_GIL else []), "--output",
                             str(PROFILES / f"{name}.txt")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure_cpu(services: bench.Services, stack: Any, x: Any, rate: float, model_cpu_s_per_batch: float,
                task_size: int, seconds: float, windows: int, py_spy: str | None,
                answers: str = "columns") -> dict[str, Any]:
    services.start_workers(f"fixed:{rate:g}")
    body = bench.tensor_body(x, task_size, 30.0, answers)
    asyncio.run(bench.closed_loop(services.url, body, 3, 1.5))  # warm-up
    pids = services.pids(stack)
    # What the serving side burns with nothing to do (polling loops, heartbeats), per second.
    idle0 = read_cpu(pids)
    time.sleep(3.0)
    idle = {name: round((value - idle0[name]) / 3.0 * 1e3, 2) for name, value in read_cpu(pids).items()}
    bench.log(f"  idle CPU ms per second: {idle}")
    rows = []
    for k in range(windows):
        spies = []
        if py_spy and k == 0:
            spies = [spy(py_spy, pids["predictor"], seconds, "predictor"),
                     spy(py_spy, pids["worker-0"], seconds, "worker")]
            child = sandbox_child(pids["worker-0"])
            bench.log(f"  sandbox child of worker-0: {child}")
            if child is not None:
                spies.append(spy(py_spy, child, seconds, "sandbox"))
            spies.append(spy(py_spy, os.getpid(), seconds, "load-generator"))
        cpu0, mb0, threads0 = read_cpu(pids), services.minibatches(), thread_cpu(pids["worker-0"])
        system0 = system_cpu(pids)
        generator0 = time.process_time()  # this process is the load generator while the loop runs
        served, took = asyncio.run(bench.closed_loop(services.url, body, 3, seconds))
        generator_s = time.process_time() - generator0
        system = {name: round((value - system0[name]) / max(served, 1) * 1e6, 2)
                  for name, value in system_cpu(pids).items()}
        cpu1, mb1, threads1 = read_cpu(pids), services.minibatches(), thread_cpu(pids["worker-0"])
        for process in spies:
            process.wait(60)
        batches = sum(mb1.values()) - sum(mb0.values())
        model_s = batches * model_cpu_s_per_batch
        cpu = {name: cpu1[name] - cpu0[name] for name in cpu1}
        sandboxes = [name for name in cpu if name.endswith("-sandbox")]
        outside = {name: value for name, value in cpu.items() if name not in sandboxes}
        outside["sandboxes_less_model"] = sum(cpu[name] for name in sandboxes) - model_s
        per_instance = {name: value / served * 1e6 for name, value in outside.items()}
        # what the instances themselves cost: the idle burn (polling, heartbeats: per second, not per instance, so
        # it shrinks per instance as throughput grows) taken out
        idle_s = sum(idle.values()) / 1e3 * took
        marginal = (sum(cpu.values()) - idle_s - model_s) / served * 1e6
        by_thread = {name: round((threads1[name] - threads0.get(name, 0.0)) / served * 1e6, 2) for name in threads1}
        rows.append({"worker_0_cpu_us_per_instance_by_thread": by_thread,
                     # it shares the two cores with the pipeline, so it counts against (a)'s fraction too
                     "load_generator_us_per_instance": round(generator_s / served * 1e6, 2),
                     "kernel_us_per_instance": system, "served": served, "seconds": took, "throughput_per_s": served / took, "minibatches": batches,
                     "cpu_s": {n: round(v, 3) for n, v in cpu.items()}, "model_cpu_s": round(model_s, 3),
                     "cpu_us_per_instance_outside_model": {n: round(v, 2) for n, v in per_instance.items()},
                     "total_us_per_instance_outside_model": sum(per_instance.values()),
                     # the throughput fraction of bare a machine with no other load would see (serving.py's)
                     "model_share_of_serving_cpu": model_s / sum(cpu.values()) if sum(cpu.values()) > 0 else math.nan,
                     "marginal_us_per_instance_outside_model": marginal})
        bench.log(f"  window {k}: {served} served, {batches} mini-batches, µs/instance outside the model "
                  f"{rows[-1]['total_us_per_instance_outside_model']:.1f}: "
                  + ", ".join(f"{n} {v:.1f}" for n, v in per_instance.items()) + f"; worker-0 by thread {by_thread}"
                  f"; load generator {rows[-1]['load_generator_us_per_instance']:.1f}; of which in the kernel {system}")
    components = rows[0]["cpu_us_per_instance_outside_model"].keys()
    merged = {"predictor": ["predictor"], "broker": ["broker"], "redis": ["redis"],
              "workers": [c for c in components if c.startswith("worker")],
              "sandboxes_less_model": ["sandboxes_less_model"]}
    summary = {part: bench.mean_se([sum(r["cpu_us_per_instance_outside_model"][c] for c in names) for r in rows])
               for part, names in merged.items()}
    return {"rate": rate, "task_size": task_size, "answers": answers, "idle_cpu_ms_per_s": idle, "windows": rows, "by_component_us": summary,
            "total_us": bench.mean_se([r["total_us_per_instance_outside_model"] for r in rows]),
            "load_generator_us": bench.mean_se([r["load_generator_us_per_instance"] for r in rows]),
            "marginal_us": bench.mean_se([r["marginal_us_per_instance_outside_model"] for r in rows]),
            "projected_fraction_of_bare": bench.mean_se([r["model_share_of_serving_cpu"] for r in rows]),
            "model_cpu_us_per_instance": model_cpu_s_per_batch / bench.BATCH * 1e6,
            "load_average": bench.load_average()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=0.25, help="the width the workers are fixed at")
    parser.add_argument("--task-size", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=4.0, help="per window")
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100, help="1-instance requests per repeat (3 repeats)")
    parser.add_argument("--model-cache", type=Path, default=None)
    parser.add_argument("--py-spy", default=None, help="a py-spy binary: profile the first window")
    parser.add_argument("--kafka-client", choices=("kafka-python", "confluent-kafka"), default=None,
                        help="the workers' consumer (EASEL_SERVING_KAFKA_CLIENT; default: the settings')")
    parser.add_argument("--answers", choices=("columns", "instances"), default="columns",
                        help="the answer form the load generator asks for (columns: arrays, the fast form)")
    parser.add_argument("--both-answer-forms", action="store_true",
                        help="measure the other answer form too, after the first (same stack, same run)")
    parser.add_argument("--label", default="", help="a name for this run in the JSON (e.g. before/after)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="S_mb for the pipeline and the bare model alike (default: the benchmark's, 32)")
    parser.add_argument("--py-spy-all-threads", action="store_true",
                        help="sample every running thread (time in C, the GIL released, included), not the GIL holder")
    args = parser.parse_args()
    global SPY_GIL
    SPY_GIL = not args.py_spy_all_threads
    if args.batch_size is not None:
        bench.use_batch_size(args.batch_size)
    began = time.perf_counter()
    if args.kafka_client:
        os.environ["EASEL_SERVING_KAFKA_CLIENT"] = args.kafka_client  # the workers inherit it
    loads = {"start": bench.load_average()}
    stack, data_dir = bench.start_stack()
    services = None
    try:
        from easel.db.session import make_engine, make_sessionmaker

        settings = stack.settings
        sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
        setup = bench.train_and_deploy(settings, sessions, data_dir, args.model_cache)
        bare = bench.bare_throughput(data_dir / "bench_sliced_mlp.py", settings.blob_dir / "params" / "bench.safetensors",
                                     [args.rate], 1, 2.0, 2)[f"{args.rate:g}"]
        bench.log(f"  bare model at r={args.rate:g}: {bare['cpu_s_per_batch'] * 1e3:.2f} ms CPU per mini-batch")
        services = bench.Services(settings, sessions, setup["job_id"])
        services.start_predictor()
        bench.log("1-instance round trip (quiet sequential loop)")
        services.start_workers("scheduler")
        runs, _ray_runs, stages = bench.measure_overhead_vs_ray(services.url, setup["x"], args.requests, 3, None)
        overhead = bench.summarize_overhead(runs, stages)
        bench.log(f"  overhead p50 {overhead['overhead_p50_ms']['mean']:.2f}±{overhead['overhead_p50_ms']['se']:.2f} ms;"
                  f" rtt p50 {overhead['rtt_p50_ms']['mean']:.2f} ms; stage means (ms) {overhead['stage_mean_ms']}")
        floors = bench.measure_floors(settings, services.url)
        bench.log(f"  bare hops p50 (ms): {floors}")
        bench.log(f"CPU outside the model at r={args.rate:g}")
        cpu = measure_cpu(services, stack, setup["x"], args.rate, bare["cpu_s_per_batch"], args.task_size,
                          args.seconds, args.windows, args.py_spy, args.answers)
        other = None
        if args.both_answer_forms:  # the other form in the same run: what the answer form costs, like for like
            form = "instances" if args.answers == "columns" else "columns"
            bench.log(f"  the same with answers as {form}")
            other = measure_cpu(services, stack, setup["x"], args.rate, bare["cpu_s_per_batch"], args.task_size,
                                args.seconds, args.windows, None, form)
        loads["end"] = bench.load_average()
    finally:
        if services is not None:
            services.stop()
        stack.down()
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)
    result = {"label": args.label, "batch_size": bench.BATCH, "kafka_client": settings.serving_kafka_client, "load_average": loads, "command": " ".join(sys.argv), "cpu": cpu,
              "cpu_other_answer_form": other,
              "one_instance": {"easel": overhead, "bare_hops": floors}, "bare_model": bare,
              "seconds": time.perf_counter() - began}
    runs = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    runs[args.label or "latest"] = result
    RESULTS.write_text(json.dumps(runs, indent=1))
    bench.log("CPU µs per instance outside the model (mean±SE): " + ", ".join(
        f"{part} {v['mean']:.1f}±{v['se']:.1f}" for part, v in cpu["by_component_us"].items())
        + f"; total {cpu['total_us']['mean']:.1f}, less idle {cpu['marginal_us']['mean']:.1f} "
        f"(model {cpu['model_cpu_us_per_instance']:.1f}); CPU-projected fraction of bare "
        f"{cpu['projected_fraction_of_bare']['mean']:.0%}; load generator {cpu['load_generator_us']['mean']:.1f}")
    if other is not None:
        bench.log(f"  answers as {other['answers']}: " + ", ".join(
            f"{part} {v['mean']:.1f}" for part, v in other["by_component_us"].items())
            + f"; total {other['total_us']['mean']:.1f}; load generator {other['load_generator_us']['mean']:.1f}")
    bench.log(f"1-instance: overhead p50 {overhead['overhead_p50_ms']['mean']:.2f} ms, rtt p50 "
              f"{overhead['rtt_p50_ms']['mean']:.2f} ms; wrote {RESULTS.relative_to(ROOT)} in {result['seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
