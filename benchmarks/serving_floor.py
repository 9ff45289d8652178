"""The floor under issue #15 (a): the least CPU per instance the serving path's own parts cost on this machine with
no Easel code in them, beside the budget target (a) leaves them → ``benchmarks/results/serving-floor.json``.

At width r the model costs m µs of CPU per instance (the bare processes' own CPU, read from the latest
``serving.json``). Two bare processes keep both cores busy with the model alone; a pipeline on the same two cores
reaches 85 % of their throughput only if everything else costs at most m x 0.15 / 0.85 µs per instance. Each part
below moves the pipeline's own traffic at (a)'s rate (``--fraction`` x two bare processes' instances/s at r) with the
thinnest code that can do that part's job — C clients, one Python call per message, no Easel code:

- **broker**: a private Tansu (memory storage, as the stack runs it). One librdkafka producer writes each task as
  the predictor deals it (``deal_mini_batches``: the task's instances split over the partitions, consecutive
  mini-batches of a share packed up to ``serving_message_kb`` per message; a 64-byte header + raw float32 of the
  benchmark model's 1x8x8 input); two librdkafka consumers in one group, with the workers' fetch wait, read them
  and commit (asynchronously) after each poll. The broker's CPU per instance; the three clients' beside.
- **results**: each consumer XADDs one entry per message (its instances' outputs as float32 and a short header) to
  a Redis stream; one reader XREADs them (blocking). Redis's and the reader's CPU per instance.
- **http**: uvicorn with uvloop + httptools (as the predictor runs) and a bare ASGI app that reads the whole body
  and answers the outputs' size of raw bytes; a closed loop of (a)'s task-size msgpack tensor requests, three in
  flight (as (a)'s load generator). The server's CPU per instance; the load generator's beside (not serving CPU).
- **sandbox hop**: a parent and a child process over a socketpair (uploaded code runs in a child): per
  mini-batch the parent writes the batch into shared memory and sends a 16-byte reference, the child copies it
  into a reused buffer and answers the outputs' bytes. Both processes' CPU per instance.
- **broker idle**: the broker's CPU per second with no traffic — no clients, two group members fetching, the same
  two with their partitions paused (the parked fetches' own cost, which pausing idle consumers would save).

The sum is a lower bound on the serving side's CPU outside the model: the pipeline also keeps per-task books,
runs the scheduler, validates input and keeps Redis state — as long as the parts run as the stack runs them
(consumers always fetching). Read against ``serving.json``'s measured CPU outside the
model per component.

    PYTHONPATH=. .venv/bin/python benchmarks/serving_floor.py [--rates 0.25,0.5] [--seconds 8] [--repeats 3]

≈ 1 min per width and repeat (3 by default) on an idle machine; prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
SERVING = RESULTS / "serving.json"
INSTANCE_SHAPE = (1, 8, 8)  # the benchmark model's input (sklearn digits)
CLASSES = 10
HEADER_BYTES = 64
OUTSIDE_SHARE = 0.15 / 0.85  # (a): pipeline >= 85 % of bare => outside-model CPU <= m x 0.15 / 0.85


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


# -- broker + results: producer, two consumers, one results reader (each a process of its own) -----------------
def produce(bootstrap: str, topic: str, messages: list[tuple[int, int]], tasks_per_s: float, seconds: float,
            sent: Any) -> None:
    """``messages`` (partition, instances) make one task; ``tasks_per_s`` tasks a second (paced every ms)."""
    import confluent_kafka as ck

    producer = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                            "enable.idempotence": False, "socket.nagle.disable": True})
    values = [(part, bytes(HEADER_BYTES) + np.zeros((count, *INSTANCE_SHAPE), "<f4").tobytes())
              for part, count in messages]
    began = time.perf_counter()
    tasks = 0
    while (elapsed := time.perf_counter() - began) < seconds:
        due = int(elapsed * tasks_per_s)
        while tasks < due:
            for part, value in values:
                producer.produce(topic, value=value, partition=part)
            tasks += 1
        producer.poll(0)
        time.sleep(0.001)
    producer.flush(10)
    sent.value = tasks * len(values)


def consume(bootstrap: str, topic: str, redis_url: str, stream: str, stop: Any, got: Any, instances: Any) -> None:
    """A group member: per message one results entry to Redis; an asynchronous commit after each poll."""
    import confluent_kafka as ck
    import redis

    client = redis.Redis.from_url(redis_url)
    instance_bytes = int(np.prod(INSTANCE_SHAPE)) * 4
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": f"floor-{os.getppid()}",
                            "enable.auto.commit": False, "auto.offset.reset": "earliest",
                            "fetch.wait.max.ms": 10, "session.timeout.ms": 6000, "heartbeat.interval.ms": 1500,
                            "max.poll.interval.ms": 6000})
    consumer.subscribe([topic])
    while not stop.is_set():
        messages = consumer.consume(64, 0.1)
        for message in messages:
            if message.error() is None:
                count = (len(message.value()) - HEADER_BYTES) // instance_bytes
                client.xadd(stream, {b"r": bytes(32) + bytes(count * CLASSES * 4)}, maxlen=10_000, approximate=True)
                with got.get_lock():
                    got.value += 1
                with instances.get_lock():
                    instances.value += count
        if messages:
            consumer.commit(asynchronous=True)
    consumer.close()


def read_results(redis_url: str, stream: str, stop: Any, got: Any) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    last = "0-0"
    while not stop.is_set():
        for _, entries in client.xread({stream: last}, count=256, block=100) or []:
            last = entries[-1][0]
            with got.get_lock():
                got.value += len(entries)


def measure_broker(rate_key: str, messages: list[tuple[int, int]], tasks_per_s: float, partitions: int,
                   seconds: float) -> dict[str, Any]:
    from easel.stack.kafka_broker import KafkaPart
    from easel.stack.redis_server import RedisPart

    work = Path(tempfile.mkdtemp(prefix="serving-floor-"))
    kafka = KafkaPart(work / "kafka", free_port())
    kafka.start()
    redis_part = RedisPart(work / "redis", free_port())
    redis_part.start()
    try:
        import confluent_kafka.admin as cka

        topic, stream = f"floor-{rate_key}", f"floor-results-{rate_key}"
        admin = cka.AdminClient({"bootstrap.servers": kafka.url})
        admin.create_topics([cka.NewTopic(topic, partitions, 1)])[topic].result(10)
        ctx = mp.get_context("spawn")
        stop = ctx.Event()
        consumed = [ctx.Value("q", 0) for _ in range(2)]
        carried = [ctx.Value("q", 0) for _ in range(2)]
        read = ctx.Value("q", 0)
        sent = ctx.Value("q", 0)
        consumers = [ctx.Process(target=consume, args=(kafka.url, topic, redis_part.url, stream, stop, c, n),
                                 daemon=True) for c, n in zip(consumed, carried, strict=True)]
        reader = ctx.Process(target=read_results, args=(redis_part.url, stream, stop, read), daemon=True)
        for process in (*consumers, reader):
            process.start()
        # warm-up: the group forms and both members hold partitions before the window
        warm_sent = ctx.Value("q", 0)  # held here: the child unpickles it after start() returns
        warm = ctx.Process(target=produce, args=(kafka.url, topic, messages, tasks_per_s, 4.0, warm_sent))
        warm.start()
        warm.join()
        time.sleep(1.0)
        roles = {"broker": psutil.Process(kafka.pid()), "redis": psutil.Process(redis_part.pid()),
                 "consumers": [psutil.Process(p.pid) for p in consumers], "results_reader": psutil.Process(reader.pid)}
        producer = ctx.Process(target=produce, args=(kafka.url, topic, messages, tasks_per_s, seconds, sent))
        before = {name: sum(cpu_s(p) for p in (v if isinstance(v, list) else [v])) for name, v in roles.items()}
        counted0 = sum(c.value for c in consumed)
        carried0 = sum(n.value for n in carried)
        read0 = read.value
        producer.start()
        producer_ps = psutil.Process(producer.pid)
        producer_cpu = 0.0
        while producer.is_alive():
            try:
                producer_cpu = cpu_s(producer_ps)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        producer.join()
        time.sleep(0.5)  # the last messages through
        after = {name: sum(cpu_s(p) for p in (v if isinstance(v, list) else [v])) for name, v in roles.items()}
        counted = sum(c.value for c in consumed) - counted0
        read_count = read.value - read0
        stop.set()
        for process in (*consumers, reader):
            process.join(15)
            if process.is_alive():
                process.terminate()
        instances = sum(n.value for n in carried) - carried0
        cpu = {name: after[name] - before[name] for name in after}
        cpu["producer"] = producer_cpu
        return {"tasks_per_s": round(tasks_per_s, 2),
                "messages_per_task": len(messages), "message_instances": [n for _, n in messages], "messages_sent": sent.value, "messages_consumed": counted,
                "results_read": read_count, "instances": instances,
                "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
                "cpu_us_per_instance": {k: round(v / instances * 1e6, 2) if instances else None for k, v in cpu.items()}}
    finally:
        kafka.stop()
        redis_part.stop()


def idle_member(bootstrap: str, topic: str, group: str, pause: Any, stop: Any) -> None:
    """A group member that reads nothing (an idle worker's consumer); while ``pause`` is set its partitions are
    paused, so the client sends the broker no fetches."""
    import confluent_kafka as ck

    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                            "fetch.wait.max.ms": 10, "session.timeout.ms": 6000, "heartbeat.interval.ms": 1500,
                            "max.poll.interval.ms": 6000})
    consumer.subscribe([topic])
    paused = False
    while not stop.is_set():
        consumer.poll(0.05)
        if pause.is_set() != paused and consumer.assignment():
            (consumer.pause if pause.is_set() else consumer.resume)(consumer.assignment())
            paused = pause.is_set()
    consumer.close()


def measure_broker_idle(partitions: int, seconds: float) -> dict[str, Any]:
    """The broker's CPU per second with no traffic: no clients, two group members fetching (the workers' fetch
    wait; Tansu answers a parked fetch only at the end of its wait), and the same two with their partitions
    paused — the part of the broker's cost that is the parked fetches themselves."""
    from easel.stack.kafka_broker import KafkaPart

    work = Path(tempfile.mkdtemp(prefix="serving-floor-idle-"))
    kafka = KafkaPart(work / "kafka", free_port())
    kafka.start()
    try:
        import confluent_kafka.admin as cka

        admin = cka.AdminClient({"bootstrap.servers": kafka.url})
        admin.create_topics([cka.NewTopic("idle", partitions, 1)])["idle"].result(10)
        broker = psutil.Process(kafka.pid())

        def ms_per_s() -> float:
            before = cpu_s(broker)
            time.sleep(seconds)
            return round((cpu_s(broker) - before) / seconds * 1e3, 1)

        result = {"no_clients": ms_per_s()}
        ctx = mp.get_context("spawn")
        pause, stop = ctx.Event(), ctx.Event()
        members = [ctx.Process(target=idle_member, args=(kafka.url, "idle", "idle-group", pause, stop), daemon=True)
                   for _ in range(2)]
        for member in members:
            member.start()
        time.sleep(8.0)  # the group forms
        result["two_members_fetching"] = ms_per_s()
        pause.set()
        time.sleep(1.0)
        result["two_members_paused"] = ms_per_s()
        stop.set()
        for member in members:
            member.join(15)
            if member.is_alive():
                member.terminate()
        return {"broker_cpu_ms_per_s": result, "fetch_wait_ms": 10, "seconds": seconds}
    finally:
        kafka.stop()


# -- http ------------------------------------------------------------------------------------------------------
def serve_http(port: int) -> None:
    import uvicorn

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        answer = bytes(len(body) // (int(np.prod(INSTANCE_SHAPE)) * 4) * CLASSES * 4)  # the outputs' size
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.body", "body": answer})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop",
                http="httptools", lifespan="off")


async def closed_loop(url: str, body: bytes, concurrency: int, seconds: float) -> int:
    import httpx

    async with httpx.AsyncClient(timeout=30) as client:
        end = time.perf_counter() + seconds
        done = 0

        async def one() -> None:
            nonlocal done
            while time.perf_counter() < end:
                response = await client.post(url, content=body, headers={"content-type": "application/msgpack"})
                response.raise_for_status()
                done += 1

        await asyncio.gather(*(one() for _ in range(concurrency)))
        return done


def measure_http(task_size: int, seconds: float) -> dict[str, Any]:
    import msgpack

    port = free_port()
    process = mp.get_context("spawn").Process(target=serve_http, args=(port,), daemon=True)
    process.start()
    url = f"http://127.0.0.1:{port}/predict"
    rows = np.zeros((task_size, *INSTANCE_SHAPE), "<f4")
    body = msgpack.packb({"instances": {"dtype": "<f4", "shape": list(rows.shape), "data": rows.tobytes()},
                          "deadline_s": 30.0}, use_bin_type=True)
    for _ in range(100):
        try:
            asyncio.run(closed_loop(url, body, 1, 0.2))
            break
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.1)
    server = psutil.Process(process.pid)
    me = psutil.Process()
    s0, c0 = cpu_s(server), cpu_s(me)
    requests = asyncio.run(closed_loop(url, body, 3, seconds))
    s1, c1 = cpu_s(server), cpu_s(me)
    process.terminate()
    process.join(10)
    instances = requests * task_size
    return {"task_size": task_size, "body_bytes": len(body), "requests": requests, "instances": instances,
            "cpu_us_per_instance": {"server": round((s1 - s0) / instances * 1e6, 2),
                                    "load_generator": round((c1 - c0) / instances * 1e6, 2)}}


# -- sandbox hop -----------------------------------------------------------------------------------------------
REFERENCE = struct.Struct("<QQ")


def sandbox_child(sock: socket.socket, parent_end: socket.socket, name: str, batch: int) -> None:
    from multiprocessing import shared_memory

    parent_end.close()  # inherited by the fork: held open, the parent's close would never reach this end

    region = shared_memory.SharedMemory(name=name)
    source = np.ndarray((batch, *INSTANCE_SHAPE), "<f4", buffer=region.buf)
    buffer = np.empty_like(source)
    outputs = np.zeros((batch, CLASSES), "<f4").tobytes()
    try:
        while True:
            reference = sock.recv(REFERENCE.size)
            if not reference:
                break
            np.copyto(buffer, source)
            sock.sendall(outputs)
    finally:
        del source
        region.close()


def measure_sandbox(batch: int, calls: int) -> dict[str, Any]:
    from multiprocessing import shared_memory

    parent, child_sock = socket.socketpair()
    region = shared_memory.SharedMemory(create=True, size=batch * int(np.prod(INSTANCE_SHAPE)) * 4)
    views = [np.ndarray((batch, *INSTANCE_SHAPE), "<f4", buffer=region.buf)]  # cleared before the region closes
    data = np.random.default_rng(0).random((batch, *INSTANCE_SHAPE), dtype=np.float32)
    child = mp.get_context("fork").Process(target=sandbox_child, args=(child_sock, parent, region.name, batch),
                                           daemon=True)
    child.start()
    child_sock.close()
    answer = batch * CLASSES * 4
    reference = REFERENCE.pack(0, batch)

    def call() -> None:
        np.copyto(views[0], data)
        parent.sendall(reference)
        got = 0
        while got < answer:
            got += len(parent.recv(answer - got))

    for _ in range(500):
        call()
    child_ps, me = psutil.Process(child.pid), psutil.Process()
    k0, p0 = cpu_s(child_ps), cpu_s(me)
    for _ in range(calls):
        call()
    k1, p1 = cpu_s(child_ps), cpu_s(me)
    parent.close()
    child.join(10)
    views.clear()
    region.close()
    region.unlink()
    instances = calls * batch
    return {"calls": calls, "cpu_us_per_instance": {"parent": round((p1 - p0) / instances * 1e6, 2),
                                                    "child": round((k1 - k0) / instances * 1e6, 2)}}


def rounded(summary: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in summary.items()}


# -- the run ---------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="0.25,0.5", help="widths, comma-separated (default 0.25,0.5)")
    parser.add_argument("--fraction", type=float, default=0.85, help="of two bare processes' instances/s (0.85)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured window per part (8)")
    parser.add_argument("--repeats", type=int, default=3, help="each part measured this many times (3)")
    parser.add_argument("--partitions", type=int, default=2, help="request topic partitions (the pipeline's: 2)")
    parser.add_argument("--message-kb", type=int, default=256, help="most KiB per requests message (the "
                        "pipeline's serving_message_kb default: 256)")
    parser.add_argument("--serving", type=Path, default=SERVING, help="the serving.json to read m and bare from")
    parser.add_argument("--out", type=Path, default=RESULTS / "serving-floor.json")
    args = parser.parse_args()
    # the predictor's packing (pure arithmetic)
    from serving import mean_se  # benchmarks/serving.py's: one way to sum up repeats

    from easel.serving import deal_mini_batches, mini_batches_per_message

    serving = json.loads(args.serving.read_text())
    saturation = serving["a_saturation"]
    batch = int(serving.get("model", {}).get("batch_size") or 32)
    rates = [r.strip() for r in args.rates.split(",") if r.strip()]
    runs: dict[str, list[dict[str, Any]]] = {rate: [] for rate in rates}
    idles: list[dict[str, float]] = []
    # Repeats outermost, so that each repeat sees every width on the same machine (a shared machine drifts).
    for repeat in range(1, args.repeats + 1):
        for rate in rates:
            point = saturation[rate]
            bare = point["bare_two_processes_per_s"]["mean"]
            task_size = point["task_size"]
            tasks_per_s = args.fraction * bare / task_size
            per_message = mini_batches_per_message(batch, int(np.prod(INSTANCE_SHAPE)) * 4, args.message_kb << 10)
            messages = [(part, stop - start) for part, start, stop, _ in
                        deal_mini_batches(task_size, list(range(args.partitions)), batch, per_message=per_message)]
            print(f"repeat {repeat}, r={rate}: two bare processes {bare:.0f}/s → {tasks_per_s:.1f} tasks/s of "
                  f"{task_size} in {len(messages)} messages (load {os.getloadavg()[0]:.2f})", flush=True)
            broker = measure_broker(rate.replace(".", "_"), messages, tasks_per_s, args.partitions, args.seconds)
            http = measure_http(task_size, args.seconds)
            sandbox = measure_sandbox(batch, 20_000)
            b, h, s = broker["cpu_us_per_instance"], http["cpu_us_per_instance"], sandbox["cpu_us_per_instance"]
            parts = {"broker": b["broker"], "kafka_clients": round(b["producer"] + b["consumers"], 2),
                     "redis": b["redis"], "results_reader": b["results_reader"], "http_server": h["server"],
                     "sandbox_hop": round(s["parent"] + s["child"], 2)}
            runs[rate].append({"floor_us_per_instance": round(sum(parts.values()), 2), "by_part": parts,
                               "load_average": os.getloadavg()[0], "broker": broker, "http": http,
                               "sandbox": sandbox})
            print(f"  floor {sum(parts.values()):.1f} µs/instance; by part {parts}; load generator "
                  f"{h['load_generator']:.1f}", flush=True)
        idles.append(measure_broker_idle(args.partitions, args.seconds)["broker_cpu_ms_per_s"])
        print(f"  broker CPU with no traffic (ms/s): {idles[-1]}", flush=True)
    rows: dict[str, Any] = {}
    for rate in rates:
        point = saturation[rate]
        model_us = point["model_cpu_us_per_instance"]
        budget = round(model_us * OUTSIDE_SHARE, 2)
        floor = rounded(mean_se([run["floor_us_per_instance"] for run in runs[rate]]))
        measured = point.get("cpu_us_per_instance_outside_model", {}).get("mean")
        rows[rate] = {"model_cpu_us_per_instance": round(model_us, 2),
                      "bare_two_processes_per_s": round(point["bare_two_processes_per_s"]["mean"]),
                      "budget_us_per_instance": budget, "floor_us_per_instance": floor,
                      "floor_by_part": {part: rounded(mean_se([run["by_part"][part] for run in runs[rate]]))
                                        for part in runs[rate][0]["by_part"]},
                      "floor_share_of_budget": round(floor["mean"] / budget, 3),
                      "best_fraction_of_bare_at_floor": round(model_us / (model_us + floor["mean"]), 3),
                      "pipeline_outside_model_us_per_instance": round(measured, 2) if measured else None,
                      "pipeline_by_component": {k: round(v["mean"], 2) for k, v in
                                                point.get("cpu_us_per_instance_by_component", {}).items()},
                      "repeats": runs[rate]}
    idle = {"fetch_wait_ms": 10, "seconds": args.seconds,
            "broker_cpu_ms_per_s": {k: rounded(mean_se([i[k] for i in idles])) for k in idles[0]}, "repeats": idles}
    print()
    print(f"{'r':>5} {'model µs':>9} {'budget':>7} {'floor (mean ± SE)':>18} {'pipeline':>9} "
          f"{'best % of bare at floor':>24}")
    for rate, row in rows.items():
        pipeline = row["pipeline_outside_model_us_per_instance"]
        floor = row["floor_us_per_instance"]
        print(f"{rate:>5} {row['model_cpu_us_per_instance']:>9.1f} {row['budget_us_per_instance']:>7.1f} "
              f"{floor['mean']:>11.1f} ± {floor['se']:<4.1f} {pipeline if pipeline is not None else float('nan'):>9.1f} "
              f"{row['best_fraction_of_bare_at_floor']:>24.1%}")
    print(f"broker CPU with no traffic (ms/s, mean ± SE): {idle['broker_cpu_ms_per_s']}")
    result = {"benchmark": "serving_floor", "command": " ".join(sys.argv),
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_average": os.getloadavg(), "device": "cpu"},
              "serving_json": str(args.serving.relative_to(ROOT)) if args.serving.is_relative_to(ROOT) else str(args.serving),
              "batch_size": batch, "fraction": args.fraction, "seconds": args.seconds, "repeats": args.repeats,
              "by_rate": rows,
              "broker_idle": idle,
              "note": "CPU seconds from process counters; the floor is a lower bound on the serving side's CPU "
                      "outside the model (no books, scheduler, validation or Redis state) with its parts run as "
                      "the stack runs them — consumers always fetching; broker_idle shows what pausing idle "
                      "consumers would take off the broker"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
