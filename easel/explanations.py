"""Explanations: their record (PostgreSQL + blob store), their queue (a Redis stream), and their one status owner.

The predictor (and, through it, admin) asks; the job's explainer processes answer. They never import each
other; this module is the contract between them, as :mod:`easel.serving` is for predictions.

Queue — Redis stream ``easel:explain:<job id>:requests`` read by the consumer group ``explainers``. An entry
is ``{"id": <explanation id>}``; everything else (method, slice rate, options, the instance itself) is already
recorded when the entry is added. An explainer acknowledges an entry only once its explanation is COMPLETED
or ERRORED. While it works it re-claims its own entry every few seconds, so the entry's idle time stays
short; an entry idle for ``EASEL_EXPLAIN_RECLAIM_S`` belongs to a dead explainer and is claimed by a live
one (``XAUTOCLAIM``), which tries again — at most ``EASEL_EXPLAIN_MAX_ATTEMPTS`` times in all, then the
explanation is ERRORED with the reason. Separately the asker waits at most ``EASEL_EXPLAIN_TIMEOUT_S``.
Nothing is left hanging.

Signals — Redis stream ``easel:explain:<job id>:done``: ``{"id", "status"}`` after each explanation ends, so
the predictor answers as soon as it is done (it re-reads the record; the signal carries nothing else).

Record — ``explanations`` table (status PENDING → RUNNING → COMPLETED | ERRORED, moved only by the named
transitions of :mod:`easel.jobs.lifecycle`); blobs ``explanations/<job id>/<id>/{instance,heatmap}.npy`` and ``overlay.png``.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from easel.blobstore import BlobStore
from easel.db.models import Explanation, new_id
from easel.db.session import session_scope
from easel.jobs import lifecycle

METHODS = ("gradcam", "lime")
GROUP = "explainers"
STREAM_MAXLEN = 10_000
FINAL = lifecycle.FINISHED_EXPLANATION
LIVE = lifecycle.LIVE_EXPLANATION


def requests_stream(job_id: str) -> str:
    return f"easel:explain:{job_id}:requests"


def done_stream(job_id: str) -> str:
    return f"easel:explain:{job_id}:done"


def job_keys(job_id: str) -> list[str]:
    """Every Redis key an inference job's explanations use (for clean-up once it has stopped)."""
    return [requests_stream(job_id), done_stream(job_id)]


def blob_key(job_id: str, explanation_id: str, name: str) -> str:
    return f"explanations/{job_id}/{explanation_id}/{name}"


# -- arrays as bytes (npy: no pickle) ---------------------------------------------------------------------
def array_to_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def bytes_to_array(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


# -- the record (its status moves through easel.jobs.lifecycle, the one owner) ------------------------------
def record(sessions: sessionmaker[Session], blobs: BlobStore, job_id: str, trial_id: str | None, method: str,
           slice_rate: float, options: dict[str, Any], instance: np.ndarray) -> str:
    """Store the instance, then the PENDING row; returns the explanation's id (queue it next)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    explanation_id = new_id()
    key = blob_key(job_id, explanation_id, "instance.npy")
    blobs.put_bytes(key, array_to_bytes(np.asarray(instance, dtype=np.float32)))
    with session_scope(sessions) as session:
        session.add(lifecycle.new_explanation(id=explanation_id, inference_job_id=job_id, trial_id=trial_id,
                                              method=method, slice_rate=float(slice_rate), options=dict(options),
                                              instance_key=key, details={}))
    return explanation_id


def claim(sessions: sessionmaker[Session], explanation_id: str, max_attempts: int) -> Explanation | None:
    """Mark the explanation RUNNING for one more attempt and return it (detached); ``None`` when it is over
    (already finished, or out of attempts — then it is ERRORED here, with the reason)."""
    with session_scope(sessions) as session:
        claimed = lifecycle.claim_explanation(session, explanation_id, max_attempts)
        row = session.get(Explanation, explanation_id, populate_existing=True)
        if row is None:
            return None
        if claimed:
            session.expunge(row)
            return row
    if row.status in LIVE:
        fail(sessions, explanation_id, f"no explainer finished it in {max_attempts} attempt(s) (each explainer "
                                       "that took it stopped before it was done)")
    return None


def complete(sessions: sessionmaker[Session], explanation_id: str, *, label: str | None, class_index: int,
             probabilities: Sequence[float], weights: dict[str, Any] | None, details: dict[str, Any],
             heatmap_key: str | None, overlay_key: str | None, compute_s: float) -> bool:
    """RUNNING → COMPLETED with the results; False if it was already finished (e.g. errored as timed out)."""
    with session_scope(sessions) as session:
        return lifecycle.complete_explanation(
            session, explanation_id, label=label, class_index=int(class_index),
            probabilities={"values": [float(p) for p in probabilities]}, weights=weights, details=details,
            heatmap_key=heatmap_key, overlay_key=overlay_key, compute_s=float(compute_s))


def fail(sessions: sessionmaker[Session], explanation_id: str, reason: str) -> bool:
    """PENDING/RUNNING → ERRORED with ``reason``; False if it had already finished."""
    with session_scope(sessions) as session:
        return lifecycle.fail_explanation(session, explanation_id, reason)


def load(sessions: sessionmaker[Session], explanation_id: str) -> Explanation | None:
    with session_scope(sessions) as session:
        row = session.get(Explanation, explanation_id)
        if row is not None:
            session.expunge(row)
        return row


# -- the API's view ------------------------------------------------------------------------------------------
def to_json(row: Explanation, blobs: BlobStore, *, arrays: bool = True) -> dict[str, Any]:
    """The explanation as the REST API answers it: the prediction explained, the evidence (``heatmap``: rows of
    [0, 1] values at the input's resolution, images; ``weights``: one per feature, vectors) and, for images, the
    overlay PNG (base64). ``arrays=False`` leaves the heat map and PNG out (listing)."""
    heatmap = overlay = None
    if arrays and row.heatmap_key and blobs.exists(row.heatmap_key):
        heatmap = np.round(bytes_to_array(blobs.get_bytes(row.heatmap_key)).astype(np.float64), 4).tolist()
    if arrays and row.overlay_key and blobs.exists(row.overlay_key):
        overlay = base64.b64encode(blobs.get_bytes(row.overlay_key)).decode("ascii")
    return {
        "id": row.id, "inference_job_id": row.inference_job_id, "trial_id": row.trial_id, "method": row.method,
        "slice_rate": row.slice_rate, "options": row.options, "status": row.status.value, "label": row.label,
        "class_index": row.class_index, "probabilities": (row.probabilities or {}).get("values"),
        "heatmap": heatmap, "weights": row.weights, "overlay_png": overlay, "details": row.details or {},
        "error": row.error, "attempts": row.attempts, "compute_s": row.compute_s,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }


__all__ = [
    "FINAL", "GROUP", "LIVE", "METHODS", "STREAM_MAXLEN", "array_to_bytes", "blob_key", "bytes_to_array", "claim",
    "complete", "done_stream", "fail", "job_keys", "load", "record", "requests_stream", "to_json",
]
