"""Easel spread over several hosts (network namespaces on one machine), trained and served through the SDK.

Hosts: ``data`` runs PostgreSQL, Redis, the Kafka-protocol broker and an S3-compatible server (moto's); ``ctl``
runs admin; ``train`` runs the advisor and train worker; ``serve`` runs the predictor and inference worker.
Each host has its own ``EASEL_DATA_DIR``, so datasets and parameters can only travel through the S3 blob
store. Admin's launcher is the local one, placing each service on its host (``netns_admin.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import psycopg
import pytest
from netns_lab import NetnsLab, can_create_namespaces
from s3_server import ACCESS_KEY, SECRET_KEY, start_s3_server
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from demo.life_cycle import write_digits
from easel.db.enums import ServiceKind, ServiceStatus
from easel.db.models import Service
from easel.db.session import make_engine, make_sessionmaker, session_scope
from easel.stack.kafka_broker import tansu_binary
from easel.stack.postgres_server import _allow_traversal, _ensure_system_user, postgres_bin_dir
from easel.stack.redis_server import redis_server_binary
from sdk import Client, TrainBudget

ROOT = Path(__file__).parents[2]
TEMPLATE = Path(__file__).with_name("tiny_mlp_template.py")
EMAIL, PASSWORD = "multi-host@easel.test", "multi-host-password"
PLACEMENT = {ServiceKind.ADVISOR: "train", ServiceKind.TRAIN_WORKER: "train",
             ServiceKind.PREDICTOR: "serve", ServiceKind.INFERENCE_WORKER: "serve", ServiceKind.EXPLAINER: "serve"}  # the other hosts: data, ctl
WHY_NOT = can_create_namespaces()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")]


def _wait(check: Callable[[], Any], timeout_s: float, what: str, lab: NetnsLab | None = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
        except Exception:  # noqa: BLE001 - not up yet
            result = None
        if result:
            return result
        if lab is not None:
            dead = [p.args for p, _ in lab.processes if p.poll() is not None]
            assert not dead, f"a process died while waiting for {what}: {dead}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.fixture
def lab() -> Iterator[NetnsLab]:
    lab = NetnsLab().open(["data", "ctl", "train", "serve"])
    try:
        yield lab
    finally:
        lab.close()


def _start_data_services(lab: NetnsLab, root: Path) -> dict[str, str]:
    """PostgreSQL, Redis, the broker and S3 on the data host; returns the settings that point at them."""
    ip = lab.hosts["data"].address
    env = {**os.environ}
    pg_root = root / "postgres"
    pg_root.mkdir()
    user = _ensure_system_user()
    _allow_traversal(postgres_bin_dir())
    _allow_traversal(pg_root)
    subprocess.run(["chown", user, str(pg_root)], check=True)
    pgdata = pg_root / "data"
    subprocess.run(["runuser", "-u", user, "--", str(postgres_bin_dir() / "initdb"), "-D", str(pgdata),
                    "--auth=trust", "--encoding=UTF8", "--no-locale", "-U", "postgres"], check=True, capture_output=True, timeout=120)
    with open(pgdata / "pg_hba.conf", "a") as hba:
        hba.write(f"host all all {lab.subnet}.0/24 trust\n")
    lab.spawn("data", ["runuser", "-u", user, "--", str(postgres_bin_dir() / "postgres"), "-D", str(pgdata),
                       "-p", "5432", "-c", f"listen_addresses={ip}", "-c", "unix_socket_directories="],
              env, root / "logs" / "postgres.log", stop_signal=signal.SIGINT)
    lab.spawn("data", [redis_server_binary(), "--port", "6379", "--bind", ip, "--protected-mode", "no",
                       "--save", "", "--appendonly", "no"], env, root / "logs" / "redis.log")
    listener = f"tcp://{ip}:9092"
    lab.spawn("data", [tansu_binary(), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
                       "--storage-engine", "memory://tansu/"], env, root / "logs" / "kafka.log")
    s3 = start_s3_server(ip, 9000, prefix=lab.hosts["data"].prefix())
    lab.processes.append((s3.process, signal.SIGTERM))

    def database() -> bool:
        with psycopg.connect(f"host={ip} port=5432 user=postgres dbname=postgres connect_timeout=2",
                             autocommit=True) as connection:
            connection.execute('CREATE DATABASE "easel"')
        return True

    _wait(database, 60, "PostgreSQL on the data host", lab)
    boto3.client("s3", endpoint_url=s3.url, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                 region_name="us-east-1").create_bucket(Bucket="easel")
    return {
        "EASEL_DATABASE_URL": f"postgresql+psycopg://postgres@{ip}:5432/easel",
        "EASEL_REDIS_URL": f"redis://{ip}:6379/0",
        "EASEL_KAFKA_BOOTSTRAP": f"{ip}:9092",
        "EASEL_BLOB_URL": "s3://easel/blobs",
        "EASEL_S3_ENDPOINT_URL": s3.url,
        "EASEL_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "EASEL_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "EASEL_SECRET_KEY": "multi-host-secret-key-0123",
    }


def _host_env(shared: dict[str, str], root: Path, host: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EASEL_")}
    data_dir = root / "hosts" / host
    data_dir.mkdir(parents=True, exist_ok=True)
    return {**env, **shared, "EASEL_DATA_DIR": str(data_dir), **extra,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def _services(sessions: sessionmaker[Session], kind: ServiceKind) -> list[tuple[int | None, ServiceStatus]]:
    with session_scope(sessions) as session:
        return [(r.pid, r.status) for r in session.scalars(select(Service).where(Service.kind == kind))]


def _netns_of(pid: int) -> str:
    return subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True, text=True,
                          timeout=10).stdout.strip()


def _running_on(sessions: sessionmaker[Session], kind: ServiceKind, netns: str) -> bool:
    """Some service of ``kind`` runs, and every one that runs is a process in ``netns``."""
    running = [pid for pid, status in _services(sessions, kind) if status == ServiceStatus.RUNNING and pid]
    return bool(running) and all(_netns_of(pid) == netns for pid in running)


def test_train_and_serve_across_hosts(lab: NetnsLab, tmp_path: Path) -> None:
    shared = _start_data_services(lab, tmp_path)
    ctl = lab.hosts["ctl"].address
    placement = {kind.value: {"netns": lab.hosts[host].netns, "address": lab.hosts[host].address,
                              "data_dir": str(tmp_path / "hosts" / host)} for kind, host in PLACEMENT.items()}
    lab.spawn("ctl", [sys.executable, str(Path(__file__).with_name("netns_admin.py")), "--host", ctl,
                      "--port", "3000", "--placement", json.dumps(placement)],
              _host_env(shared, tmp_path, "ctl", EASEL_SUPERADMIN_EMAIL=EMAIL, EASEL_SUPERADMIN_PASSWORD=PASSWORD,
                        EASEL_PASSWORD_HASH_ROUNDS="4", EASEL_PREDICTOR_HOST="0.0.0.0"),
              tmp_path / "logs" / "admin.log")
    sessions = make_sessionmaker(make_engine(shared["EASEL_DATABASE_URL"]))
    client = Client(f"http://{ctl}:3000", timeout=60)
    try:
        _wait(lambda: client.health(), 90, "admin on the ctl host", lab)
        client.login(EMAIL, PASSWORD)
        train_path, val_path = write_digits(tmp_path)
        train = client.upload_dataset("digits-train", "IMAGE_CLASSIFICATION", train_path)
        val = client.upload_dataset("digits-val", "IMAGE_CLASSIFICATION", val_path)
        assert not (tmp_path / "hosts" / "ctl" / "blobs").exists(), "admin keeps uploads in S3, not on its disk"
        mlp = client.upload_model("tiny-sliced-mlp", "IMAGE_CLASSIFICATION", TEMPLATE, class_name="TinySlicedMLP")
        job = client.create_train_job("multi-host", "IMAGE_CLASSIFICATION", train.id, val.id, [mlp.id],
                                      budget=TrainBudget(model_trial_count=1, workers=1, early_stop=False))
        train_ns = lab.hosts["train"].netns
        _wait(lambda: _running_on(sessions, ServiceKind.TRAIN_WORKER, train_ns), 60, "a train worker on the train host")

        def finished() -> bool:
            return client.get_train_job(job.app, job.app_version).status in ("COMPLETED", "ERRORED", "STOPPED")

        _wait(finished, 600, "the train job")
        trials = list(client.list_trials(job.app, job.app_version))
        assert [t.status for t in trials] == ["COMPLETED"], [(t.no, t.status, t.error) for t in trials]
        assert client.get_train_job(job.app, job.app_version).status == "COMPLETED"
        assert not (tmp_path / "hosts" / "train" / "blobs").exists(), "the parameters went to S3"

        client.create_inference_job(job.app, job.app_version, workers=1)
        deployed = client.wait_inference_job(job.app, job.app_version, timeout_s=300)
        serve = lab.hosts["serve"]
        assert deployed.predictor_url.startswith(f"http://{serve.address}:")
        assert _running_on(sessions, ServiceKind.PREDICTOR, serve.netns)
        assert _running_on(sessions, ServiceKind.INFERENCE_WORKER, serve.netns)

        with np.load(val_path) as data:
            x, y = data["x"][:40], data["y"][:40]
        key = client.create_api_key(job.app, job.app_version, "multi-host").key
        answer = client.predict(job.app, job.app_version, x.tolist(), deadline_s=30.0, api_key=key)
        assert answer.served + answer.dropped == len(x) and answer.served == len(x), answer.totals
        correct = sum(p.label == str(label) for p, label in zip(answer.predictions, y, strict=True))
        assert correct / len(x) > 0.5, "the model trained on the train host answers on the serve host"
        client.stop_inference_job(job.app, job.app_version)
    finally:
        client.close()
        sessions.kw["bind"].dispose()
