"""Monitoring: admin collects every live inference job's serving metrics into per-app series, scores the true
labels that come back as feedback, and exposes both to Prometheus on its own ``/metrics``.

* :class:`MetricsCollector` — every ``EASEL_METRICS_INTERVAL_S`` it scrapes each live job's predictor and
  workers (:func:`admin.services.inference_metrics.collect`) and stores one :class:`ServingSample` (requests,
  instances served/dropped, expected effective accuracy, width mix, latency p50/p99, queue lag, workers
  up/wanted); samples older than ``RETENTION`` are deleted, so the table stays bounded.
* :func:`score_feedback` — true labels for one answered request (kept by the predictor for
  ``EASEL_FEEDBACK_TTL_S``) give its served-and-correct count: the *measured* effective accuracy is
  correct / labelled over every request that got feedback (dropped instances count as wrong, as the paper's
  effective accuracy counts them).
* :func:`prometheus_text` — the latest sample of each live job and each app's measured effective accuracy as
  ``easel_app_*`` metrics (what ``deploy/monitoring`` alerts on and charts).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from admin.schemas import InferenceMetricsOut
from admin.services.inference_metrics import LIVE_SERVICES, collect
from admin.state import AdminState
from easel.db.enums import ServiceKind
from easel.db.models import Feedback, InferenceJob, Service, ServingSample, TrainJob
from easel.db.session import session_scope
from easel.jobs import InferenceJobBudget, lifecycle
from easel.serving import SERVED

log = logging.getLogger("admin.monitoring")

RETENTION = timedelta(days=1)  # samples kept per job (one per interval): bounded, enough for a day's charts


# -- collecting ----------------------------------------------------------------------------------------------
def sample_values(metrics: InferenceMetricsOut, workers_wanted: int) -> dict[str, Any]:
    """What one sample keeps of a job's scraped metrics (counters are totals since each service started)."""
    predictor = metrics.predictor
    return {
        "requests": sum(predictor.requests.values()) if predictor else 0.0,
        "served": predictor.instances.get("served", 0.0) if predictor else 0.0,
        "dropped": predictor.instances.get("dropped", 0.0) if predictor else 0.0,
        "latency_p50_s": predictor.latency_p50_s if predictor else None,
        "latency_p99_s": predictor.latency_p99_s if predictor else None,
        "predictor_up": bool(predictor and predictor.up),
        "expected_effective_accuracy": metrics.totals.effective_accuracy,
        "minibatches_by_rate": dict(metrics.totals.minibatches_by_rate),
        "queue_lag_messages": sum(w.queue_lag_messages for w in metrics.workers if w.up),
        "workers_up": sum(1 for w in metrics.workers if w.up),
        "workers_wanted": workers_wanted,
    }


def collect_once(state: AdminState) -> int:
    """One sample of every live inference job; returns how many were stored."""
    with session_scope(state.sessions) as session:
        jobs = session.execute(select(InferenceJob.id, InferenceJob.status, InferenceJob.budget, TrainJob.app)
                               .join(TrainJob, TrainJob.id == InferenceJob.train_job_id)
                               .where(InferenceJob.status.in_(lifecycle.LIVE_INFERENCE_JOB))).all()
        plans = []
        for job_id, status, budget, app in jobs:
            services = list(session.scalars(select(Service).where(
                Service.inference_job_id == job_id, Service.status.in_(LIVE_SERVICES),
                Service.kind.in_((ServiceKind.PREDICTOR, ServiceKind.INFERENCE_WORKER)))))
            session.expunge_all()
            plans.append((job_id, status, app, InferenceJobBudget.from_stored(budget).WORKERS, services))
    stored = 0
    for job_id, status, app, wanted, services in plans:
        metrics = asyncio.run(collect(job_id, status, services, state.settings.metrics_scrape_timeout_s,
                                      state.predictor_access.headers(job_id)))  # admin's key of the predictor
        with session_scope(state.sessions) as session:
            session.add(ServingSample(inference_job_id=job_id, app=app, values=sample_values(metrics, wanted)))
            stored += 1
    with session_scope(state.sessions) as session:
        session.execute(delete(ServingSample).where(ServingSample.at < datetime.now(UTC) - RETENTION))
    return stored


class MetricsCollector:
    def __init__(self, state: AdminState) -> None:
        self.state = state
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-collector", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.state.settings.metrics_interval_s):
            try:
                collect_once(self.state)
            except Exception:  # noqa: BLE001 - the loop must survive a bad pass (a database restart); logged
                log.exception("collecting serving metrics failed")


# -- feedback -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scored:
    labelled: int
    served: int
    correct: int


def score_feedback(answers: Sequence[tuple[str, Any, int | None]], labels: Sequence[Any]) -> Scored:
    """Compare a request's answers with the true labels (``None``: unknown, not counted). A served instance is
    correct when its predicted label equals the true one (compared as text: ``3`` and ``"3"`` agree)."""
    if len(answers) != len(labels):
        raise ValueError(f"labels: {len(labels)} given for a request of {len(answers)} instances")
    labelled = served = correct = 0
    for (status, predicted, _version), truth in zip(answers, labels, strict=True):
        if truth is None:
            continue
        labelled += 1
        if status == SERVED:
            served += 1
            correct += int(predicted is not None and str(predicted) == str(truth))
    return Scored(labelled, served, correct)


def measured(session: Session, job_ids: Iterable[str]) -> tuple[int, int]:
    """(correct, labelled) over every feedback of these jobs."""
    row = session.execute(select(func.coalesce(func.sum(Feedback.correct), 0),
                                 func.coalesce(func.sum(Feedback.instances), 0))
                          .where(Feedback.inference_job_id.in_(list(job_ids)))).one()
    return int(row[0]), int(row[1])


# -- exposition ---------------------------------------------------------------------------------------------
class _AppMetrics(Collector):
    """The ``easel_app_*`` families, read from the database at each scrape."""

    def __init__(self, state: AdminState) -> None:
        self.state = state

    def collect(self) -> Iterable[Any]:
        labels = ["app", "inference_job"]
        families = {
            "requests": CounterMetricFamily("easel_app_requests", "predict requests answered", labels=labels),
            "instances": CounterMetricFamily("easel_app_instances", "instances answered, by status",
                                             labels=[*labels, "status"]),
            "expected": GaugeMetricFamily("easel_app_expected_effective_accuracy",
                                          "profile accuracy of served instances / answered instances", labels=labels),
            "mix": CounterMetricFamily("easel_app_minibatches", "mini-batches run, by slice rate (width mix)",
                                       labels=[*labels, "rate"]),
            "latency": GaugeMetricFamily("easel_app_latency_seconds", "predict request time since the predictor "
                                         "started", labels=[*labels, "quantile"]),
            "lag": GaugeMetricFamily("easel_app_queue_lag_messages", "requests-topic messages not yet answered",
                                     labels=labels),
            "up": GaugeMetricFamily("easel_app_workers_up", "inference workers answering their scrape", labels=labels),
            "wanted": GaugeMetricFamily("easel_app_workers_wanted", "inference workers the job asked for",
                                        labels=labels),
            "predictor": GaugeMetricFamily("easel_app_predictor_up", "the predictor answered its scrape",
                                           labels=labels),
            "measured": GaugeMetricFamily("easel_app_measured_effective_accuracy", "served and correct / labelled, "
                                          "from feedback", labels=["app"]),
            "labelled": CounterMetricFamily("easel_app_feedback_instances", "instances with a true label",
                                            labels=["app"]),
        }
        with session_scope(self.state.sessions) as session:
            latest = session.execute(
                select(ServingSample.app, ServingSample.inference_job_id, ServingSample.values)
                .join(InferenceJob, InferenceJob.id == ServingSample.inference_job_id)
                .where(InferenceJob.status.in_(lifecycle.LIVE_INFERENCE_JOB),
                       ServingSample.id.in_(select(func.max(ServingSample.id)).group_by(
                           ServingSample.inference_job_id)))).all()
            apps = session.execute(select(TrainJob.app, InferenceJob.id).join(
                InferenceJob, InferenceJob.train_job_id == TrainJob.id).where(
                InferenceJob.id.in_(select(Feedback.inference_job_id)))).all()
            per_app: dict[str, list[str]] = {}
            for app, job_id in apps:
                per_app.setdefault(app, []).append(job_id)
            scores = {app: measured(session, ids) for app, ids in per_app.items()}
        for app, job_id, v in latest:
            key = [app, job_id]
            families["requests"].add_metric(key, float(v.get("requests", 0.0)))
            for status in ("served", "dropped"):
                families["instances"].add_metric([*key, status], float(v.get(status, 0.0)))
            if v.get("expected_effective_accuracy") is not None:
                families["expected"].add_metric(key, float(v["expected_effective_accuracy"]))
            for rate, count in (v.get("minibatches_by_rate") or {}).items():
                families["mix"].add_metric([*key, rate], float(count))
            for quantile, name in (("0.5", "latency_p50_s"), ("0.99", "latency_p99_s")):
                if v.get(name) is not None:
                    families["latency"].add_metric([*key, quantile], float(v[name]))
            families["lag"].add_metric(key, float(v.get("queue_lag_messages", 0.0)))
            families["up"].add_metric(key, float(v.get("workers_up", 0)))
            families["wanted"].add_metric(key, float(v.get("workers_wanted", 0)))
            families["predictor"].add_metric(key, 1.0 if v.get("predictor_up") else 0.0)
        for app, (correct, labelled) in scores.items():
            if labelled:
                families["measured"].add_metric([app], correct / labelled)
                families["labelled"].add_metric([app], float(labelled))
        return list(families.values())


def make_registry(state: AdminState) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_AppMetrics(state))
    return registry


def prometheus_text(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


__all__ = ["MetricsCollector", "Scored", "collect_once", "make_registry", "measured", "prometheus_text",
           "sample_values", "score_feedback"]
