"""``python -m advisor --sub-train-job-id ID``: run one sub-train-job's advisor until its budget is used."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from advisor.records import TrialRecords
from advisor.service import Advisor
from easel.backoff import Backoff
from easel.blobstore import make_blob_store
from easel.db.session import make_engine, make_sessionmaker
from easel.faults import INFRASTRUCTURE_ERRORS
from easel.launcher.service_exit import record_clean_exit
from easel.pool import PoolChannel
from easel.redis_client import make_redis
from easel.settings import get_settings
from easel.signals import exit_on_sigterm
from easel.tuning import TuningChannel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m advisor")
    parser.add_argument("--sub-train-job-id", required=True)
    parser.add_argument("--backend", default="gp", choices=["gp", "random"])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--lease-s", type=float, default=15.0)
    parser.add_argument("--pool", action="store_true", help="take workers from the shared train pool (bid there)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s advisor %(levelname)s %(message)s")
    exit_on_sigterm()
    log = logging.getLogger("easel.advisor")
    log.info("starting for sub-train-job %s", args.sub_train_job_id)
    settings = get_settings()
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    client = make_redis(settings, decode_responses=True)
    channel = TuningChannel(client, args.sub_train_job_id, args.lease_s)
    pool = PoolChannel(client, args.lease_s) if args.pool else None
    backoff = Backoff(base_s=0.5, cap_s=10.0)
    while True:  # Redis or PostgreSQL may be restarting: wait for them rather than die (and spend a restart)
        try:
            advisor = Advisor.for_sub_job(TrialRecords(sessions, args.sub_train_job_id), channel, args.backend,
                                          args.seed, make_blob_store(settings), pool,
                                          settings)
            break
        except INFRASTRUCTURE_ERRORS as error:
            log.warning("starting failed (%s); retrying", error)
            time.sleep(backoff.next_delay())
    log.info("ready: rebuilt from the trials table")
    advisor.run()
    record_clean_exit(sessions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
