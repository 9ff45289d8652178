"""``python -m train_worker --sub-train-job-id ID``: take proposals from the advisor and run trials."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import uuid

from easel.blobstore import make_blob_store
from easel.db.session import make_engine, make_sessionmaker
from easel.launcher.service_exit import record_clean_exit
from easel.redis_client import make_redis
from easel.settings import get_settings
from easel.signals import exit_on_sigterm
from easel.tuning import TuningChannel
from train_worker.runner import TrialRunner
from train_worker.service import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train_worker")
    parser.add_argument("--sub-train-job-id", required=True)
    parser.add_argument("--lease-s", type=float, default=15.0)
    parser.add_argument("--idle-timeout-s", type=float, default=3600.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s train_worker %(levelname)s %(message)s")
    exit_on_sigterm()
    settings = get_settings()
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    channel = TuningChannel(make_redis(settings, decode_responses=True), args.sub_train_job_id, args.lease_s)
    service_id = os.environ.get("EASEL_SERVICE_ID")
    worker_id = f"worker-{service_id or uuid.uuid4().hex}"[:48]
    runner = TrialRunner(sessions, channel, make_blob_store(settings), worker_id, service_id, settings)
    serve(channel, runner, args.idle_timeout_s)
    record_clean_exit(sessions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
