"""``python -m inference_worker.explain --inference-job-id ID``: explain an inference job's predictions.

Loads the deployed trial like an inference worker does, lowers its own CPU priority (``EASEL_EXPLAIN_NICE``)
so that deadline traffic on the same machine comes first, and serves the job's explanation stream until
SIGTERM (the explanation in progress is finished first).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import uuid

os.environ.setdefault("TQDM_DISABLE", "1")  # LIME draws a progress bar per explanation; not in a service log

from easel.blobstore import make_blob_store  # noqa: E402 - after the environment is set for the libraries
from easel.db.session import make_engine, make_sessionmaker  # noqa: E402
from easel.jobs import load_deployment  # noqa: E402
from easel.redis_client import make_redis  # noqa: E402
from easel.settings import get_settings  # noqa: E402
from inference_worker.explain.service import Explainer, ExplainerConfig  # noqa: E402
from inference_worker.model import ServedModel  # noqa: E402

log = logging.getLogger("easel.explainer")


def warm_up() -> None:
    """Import the explanation libraries now (seconds: OpenCV, scikit-image), not inside the first request."""
    import lime.lime_image  # noqa: F401
    import lime.lime_tabular  # noqa: F401
    import pytorch_grad_cam  # noqa: F401
    import skimage.segmentation  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference_worker.explain")
    parser.add_argument("--inference-job-id", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("EASEL_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s explainer %(levelname)s %(message)s")
    settings = get_settings()
    os.nice(settings.explain_nice)  # below the inference workers: explanations wait, deadlines don't
    import torch

    torch.set_num_threads(max(1, settings.serving_threads))
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    blobs = make_blob_store(settings)
    deployment = load_deployment(sessions, blobs, args.inference_job_id)
    model = ServedModel.load(deployment, blobs, settings)
    classes = tuple(deployment.classes or ())
    service_id = os.environ.get("EASEL_SERVICE_ID") or uuid.uuid4().hex
    config = ExplainerConfig(job_id=deployment.job_id, consumer=f"explainer-{service_id[:8]}",
                             input_shape=deployment.input_shape or (), classes=classes,
                             reclaim_s=settings.explain_reclaim_s, max_attempts=settings.explain_max_attempts,
                             batch_size=settings.explain_batch_size)
    warm_up()
    explainer = Explainer(config, model, make_redis(settings), sessions, blobs)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: explainer.stop.set())
    signal.signal(signal.SIGINT, lambda _signum, _frame: explainer.stop.set())
    log.info("trial %s (%s), input %s, rates %s", deployment.trial_id, deployment.model.name, config.input_shape,
             model.rates)
    explainer.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
