"""``python -m predictor --inference-job-id ID [--host H] [--port P]``: serve an inference job over HTTP.

Binds ``host:port`` (port 0: any free one), records the URL on the inference job (and the port on its
``services`` row), then serves with uvicorn. SIGTERM drains: no new connections, requests in flight are
answered (each by its deadline, within ``EASEL_SERVING_DRAIN_S``), then the process exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time

import psutil
import uvicorn
from sqlalchemy import update

from easel.blobstore import make_blob_store
from easel.db.models import InferenceJob, Service
from easel.db.session import make_engine, make_sessionmaker, session_scope
from easel.launcher.service_exit import record_clean_exit
from easel.request_topics import ensure_started
from easel.settings import get_settings
from predictor.app import create_app, load_job_info

log = logging.getLogger("easel.predictor")


def url_for(host: str, port: int) -> str:
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


SWITCH_INTERVAL_S = 0.0005


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m predictor")
    parser.add_argument("--inference-job-id", required=True)
    parser.add_argument("--host", default=None, help="interface to listen on (default EASEL_PREDICTOR_HOST)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    args = parser.parse_args(argv)
    # start-up phase times (UNIX), reported by /health: where a relaunch's seconds go
    boot = {"process": psutil.Process().create_time(), "imported": time.time()}
    # Two threads share the GIL here (the Kafka client's and ours); the default 5 ms switch interval would let
    # one keep a ready other waiting for up to 5 ms, which shows up directly in request latency.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s predictor %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(os.environ.get("EASEL_KAFKA_LOG_LEVEL", "WARNING").upper())
    settings = get_settings()
    host = args.host or settings.predictor_host
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    info = load_job_info(sessions, make_blob_store(settings), args.inference_job_id, settings.serving_batch_size)
    ensure_started(settings, info.job_id, info.n_workers)
    boot["loaded"] = time.time()

    # proto=IPPROTO_TCP matters: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP;
    # with Nagle on, each answer waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, args.port))
    port = sock.getsockname()[1]
    url = settings.predictor_url or url_for(host, port)
    service_id = os.environ.get("EASEL_SERVICE_ID")
    with session_scope(sessions) as session:
        session.execute(update(InferenceJob).where(InferenceJob.id == info.job_id).values(predictor_url=url))
        if service_id:
            session.execute(update(Service).where(Service.id == service_id).values(host=host, port=port))
    log.info("inference job %s (trial %s, %d workers, S_mb %d, input %s) at %s", info.job_id, info.trial_id,
             info.n_workers, info.batch_size, info.input_shape, url)

    boot["bound"] = time.time()
    app = create_app(settings, info, sessions, boot, service_id)
    # uvloop and httptools (uvicorn's "standard" extras): the event loop and HTTP parser in C, named here so
    # that a missing one is an error rather than a quiet fallback to the pure-Python ones.
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, loop="uvloop",
                            http="httptools", timeout_graceful_shutdown=max(1, int(settings.serving_drain_s)))
    uvicorn.Server(config).run(sockets=[sock])
    record_clean_exit(sessions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
