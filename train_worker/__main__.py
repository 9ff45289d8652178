"""``python -m train_worker --sub-train-job-id ID``: take proposals from the advisor and run trials;
``python -m train_worker --pool``: a generic worker of the shared train pool (:mod:`train_worker.pool`)."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import uuid

from easel.blobstore import make_blob_store
from easel.db.session import make_engine, make_sessionmaker
from easel.launcher.service_exit import record_clean_exit
from easel.pool import PoolChannel
from easel.redis_client import make_redis
from easel.settings import get_settings
from easel.signals import exit_on_sigterm
from easel.tuning import TuningChannel
from train_worker.pool import serve_pool
from train_worker.runner import TrialRunner
from train_worker.service import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train_worker")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--sub-train-job-id")
    which.add_argument("--pool", action="store_true", help="a generic worker of the shared train pool")
    parser.add_argument("--lease-s", type=float, default=15.0)
    parser.add_argument("--idle-timeout-s", type=float, default=3600.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s train_worker %(levelname)s %(message)s")
    exit_on_sigterm()
    settings = get_settings()
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    client = make_redis(settings, decode_responses=True)
    blobs = make_blob_store(settings)
    service_id = os.environ.get("EASEL_SERVICE_ID")
    worker_id = f"worker-{service_id or uuid.uuid4().hex}"[:48]
    if args.pool:
        info = {"service_id": service_id, "pid": os.getpid(), "host": socket.gethostname()}
        serve_pool(PoolChannel(client, args.lease_s),
                   lambda channel: TrialRunner(sessions, channel, blobs, worker_id, service_id, settings),
                   worker_id, info)
    else:
        channel = TuningChannel(client, args.sub_train_job_id, args.lease_s)
        runner = TrialRunner(sessions, channel, blobs, worker_id, service_id, settings)
        serve(channel, runner, args.idle_timeout_s)
    record_clean_exit(sessions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
