"""``python -m inference_worker.evaluate --dataset-id D --version-id A [--version-id B ...]``: measure registered
model versions on a held-out dataset, for the promotion gate.

Admin runs no template code, so it runs this in a child process and reads one JSON document from stdout::

    {"versions": {"<id>": {"rates": [...], "accuracy": [...], "batch_time_s": [...]}}}

Accuracy is the template's ``evaluate`` on the dataset at every slice rate; the batch time is the fastest of
``--repeats`` runs of a mini-batch of ``PROFILE_BATCH_SIZE`` at each rate, the versions taking turns, so a burst
of load on the machine hits both alike and the gate compares like with like. Exit 2 with the reason on stderr
when a version or the dataset cannot be loaded.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from easel.batch_buffers import QueryBatch
from easel.blobstore import BlobStore, make_blob_store
from easel.db.models import Dataset, Model, ModelVersion
from easel.db.session import make_engine, make_sessionmaker, session_scope
from easel.jobs import PROFILE_BATCH_SIZE
from easel.model.params import read_metadata
from easel.sandbox import close_template, open_template
from easel.settings import Settings, get_settings

log = logging.getLogger("easel.inference_worker.evaluate")


def measure(version_ids: list[str], dataset_id: str, repeats: int = 20) -> dict[str, dict[str, list[float]]]:
    settings = get_settings()
    blobs = make_blob_store(settings)
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    loaded: dict[str, tuple[Any, list[float], Any]] = {}  # id -> (template, rates, a mini-batch of zeros)
    try:
        return _measure(settings, blobs, sessions, loaded, version_ids, dataset_id, repeats)
    finally:
        for template, _rates, _batch in loaded.values():
            close_template(template)


def _measure(settings: Settings, blobs: BlobStore, sessions: sessionmaker[Session],
             loaded: dict[str, tuple[Any, list[float], Any]],
             version_ids: list[str], dataset_id: str, repeats: int) -> dict[str, dict[str, list[float]]]:
    with session_scope(sessions) as session:
        dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            raise ValueError(f"no dataset {dataset_id}")
        path = str(blobs.local_path(dataset.blob_key))
        for version_id in version_ids:
            version = session.get(ModelVersion, version_id)
            if version is None:
                raise ValueError(f"no model version {version_id}")
            params = blobs.get_bytes(version.params_key)
            # Uploaded code runs in a sandbox that sees only the dataset (this process holds the database URL),
            # with the inference workers' thread count (two sandboxes' idle OpenMP threads would spin against
            # each other's turn).
            template = open_template(session.get_one(Model, version.model_id), blobs, settings, version.knobs,
                                     files=[path], threads=settings.serving_threads or None)
            loaded[version_id] = (template, [], None)
            template.load_parameters(params)
            shape = read_metadata(params).get("input_shape")
            batch = None
            if shape:
                batch = np.zeros((PROFILE_BATCH_SIZE, *json.loads(shape)), dtype=np.float32).view(QueryBatch)
            rates = [float(r) for r in (version.profile.get("rates") or template.SLICE_RATES)]
            loaded[version_id] = (template, rates, batch)
    results = {version_id: {"rates": rates, "accuracy": [float(template.evaluate(path, r)) for r in rates],
                            "batch_time_s": [math.inf] * len(rates)}
               for version_id, (template, rates, _batch) in loaded.items()}
    for version_id, (template, rates, batch) in loaded.items():
        if batch is None:  # no input shape on record: the template's own timing
            results[version_id]["batch_time_s"] = [float(t) for t in template.profile(
                path, rates, batch_size=PROFILE_BATCH_SIZE)["batch_time_s"]]
        else:
            for rate in rates:
                template.predict(batch, rate)  # warm-up
    # The fastest of ``repeats`` runs, the versions taking turns: a burst of load on the machine hits both alike.
    for _ in range(max(1, repeats)):
        for version_id, (template, rates, batch) in loaded.items():
            if batch is None:
                continue
            best = results[version_id]["batch_time_s"]
            for i, rate in enumerate(rates):
                began = time.perf_counter()
                template.predict(batch, rate)
                best[i] = min(best[i], time.perf_counter() - began)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference_worker.evaluate")
    parser.add_argument("--dataset-id", required=True)
    parser.add_argument("--version-id", action="append", required=True)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        results = measure(args.version_id, args.dataset_id, args.repeats)
    except Exception as error:  # noqa: BLE001 - the reason goes to admin, which reports it
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 2
    json.dump({"versions": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
