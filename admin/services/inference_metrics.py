"""One JSON view of an inference job's Prometheus metrics: its predictor's and every inference worker's.

Admin scrapes each live service's ``/metrics`` (the predictor on its HTTP port, a worker on the metrics port
recorded on its ``services`` row) concurrently, with a short timeout; a service that does not answer is
reported ``up: false`` with the reason, and the rest still count. Counters are totals since each service
started; the dashboard diffs two snapshots for rates.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence

import httpx
from prometheus_client.parser import text_string_to_metric_families

from admin.schemas import InferenceMetricsOut, InferenceTotals, PredictorMetrics, WorkerMetrics
from easel.db.enums import JobStatus, ServiceKind, ServiceStatus
from easel.db.models import Service

Samples = dict[str, list[tuple[dict[str, str], float]]]
LIVE_SERVICES = (ServiceStatus.STARTED, ServiceStatus.RUNNING)


def parse_samples(text: str) -> Samples:
    """Prometheus text exposition -> sample name -> [(labels, value)]."""
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), float(sample.value)))
    return samples


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for labels, value in samples.get(name, []):
        out[labels.get(label, "")] += value
    return dict(out)


def single(samples: Samples, name: str) -> float:
    return sum(value for _labels, value in samples.get(name, []))


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets, interpolated within a bucket as
    Prometheus' ``histogram_quantile`` does; ``None`` without observations. Past the last finite bound it
    answers that bound (the histogram cannot say more)."""
    if not 0 <= q <= 1:
        raise ValueError(f"q must be within [0, 1], not {q}")
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def predictor_metrics(samples: Samples) -> PredictorMetrics:
    buckets = [(float(labels["le"]), value) for labels, value in samples.get("easel_predictor_request_seconds_bucket", [])]
    return PredictorMetrics(
        up=True,
        requests=by_label(samples, "easel_predictor_requests_total", "code"),
        instances=by_label(samples, "easel_predictor_instances_total", "status"),
        inflight_tasks=single(samples, "easel_predictor_inflight_tasks"),
        workers_ready=single(samples, "easel_predictor_workers_ready"),
        latency_count=single(samples, "easel_predictor_request_seconds_count"),
        latency_sum_s=single(samples, "easel_predictor_request_seconds_sum"),
        latency_p50_s=histogram_quantile(0.5, buckets), latency_p99_s=histogram_quantile(0.99, buckets),
        latency_buckets=[[b, c] for b, c in sorted(buckets) if not math.isinf(b)],
    )


def worker_metrics(service: Service, samples: Samples) -> WorkerMetrics:
    return WorkerMetrics(
        service_id=service.id, name=service.name, up=True,
        instances=by_label(samples, "easel_worker_instances_total", "status"),
        expected_correct=single(samples, "easel_worker_expected_correct_total"),
        minibatches_by_rate=by_label(samples, "easel_worker_minibatches_total", "rate"),
        batch_time_estimate_s=by_label(samples, "easel_worker_batch_time_estimate_seconds", "rate"),
        queued_instances=single(samples, "easel_worker_queued_instances"),
        inflight_instances=single(samples, "easel_worker_inflight_instances"),
        queue_lag_messages=single(samples, "easel_worker_queue_lag_messages"),
    )


def totals(workers: Iterable[WorkerMetrics]) -> InferenceTotals:
    served = dropped = expired = correct = 0.0
    mix: dict[str, float] = defaultdict(float)
    for worker in workers:
        served += worker.instances.get("served", 0.0)
        dropped += worker.instances.get("dropped", 0.0)
        expired += worker.instances.get("expired", 0.0)
        correct += worker.expected_correct
        for rate, count in worker.minibatches_by_rate.items():
            mix[rate] += count
    answered = served + dropped + expired
    return InferenceTotals(served=served, dropped=dropped, expired=expired, expected_correct=correct,
                           effective_accuracy=correct / answered if answered else None,
                           minibatches_by_rate=dict(sorted(mix.items(), key=lambda item: float(item[0]))))


def _url(service: Service) -> str | None:
    if service.port is None:
        return None
    host = service.host if service.host not in (None, "", "0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{service.port}/metrics"


async def _scrape(client: httpx.AsyncClient, service: Service, headers: dict[str, str] | None) -> Samples | str:
    url = _url(service)
    if url is None:
        return "no metrics port recorded yet"
    try:
        reply = await client.get(url, headers=headers)
        reply.raise_for_status()
        return parse_samples(reply.text)
    except (httpx.HTTPError, ValueError) as error:
        return f"{type(error).__name__}: {error}"[:300]


async def collect(job_id: str, status: JobStatus, services: Sequence[Service], timeout_s: float,
                  predictor_headers: dict[str, str] | None = None) -> InferenceMetricsOut:
    """Scrape ``services`` (the job's live predictor, with ``predictor_headers`` — its API key —, and workers)
    and fold them into one view."""
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        scraped = await asyncio.gather(*(
            _scrape(client, s, predictor_headers if s.kind == ServiceKind.PREDICTOR else None) for s in services))
    predictor: PredictorMetrics | None = None
    workers: list[WorkerMetrics] = []
    for service, result in zip(services, scraped, strict=True):
        if service.kind == ServiceKind.PREDICTOR:
            predictor = predictor_metrics(result) if not isinstance(result, str) else PredictorMetrics(up=False,
                                                                                                     error=result)
        elif service.kind == ServiceKind.INFERENCE_WORKER:
            workers.append(worker_metrics(service, result) if not isinstance(result, str) else
                           WorkerMetrics(service_id=service.id, name=service.name, up=False, error=result))
    return InferenceMetricsOut(job_id=job_id, status=status, collected_at=time.time(), predictor=predictor,
                               workers=workers, totals=totals(workers))
