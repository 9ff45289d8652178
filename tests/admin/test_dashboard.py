"""What admin adds for the web dashboard: the build served at ``/`` and ``/ui/...``, a train job's live event
stream (SSE), and one JSON view of an inference job's Prometheus metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from admin_helpers import TASK
from fastapi.testclient import TestClient
from prometheus_client import start_http_server
from sqlalchemy import select, update

from admin.app import create_app
from admin.services.inference_metrics import histogram_quantile, parse_samples
from easel.db.enums import JobStatus, ServiceKind, TrialStatus
from easel.db.models import InferenceJob, Service, TrainJob, Trial, TrialLog
from easel.db.session import session_scope
from easel.settings import Settings
from easel.stack.process import free_port
from inference_worker.metrics import WorkerMetrics
from predictor.app import PredictorMetrics
from sdk import Client
from tests.support import npz_file


# -- the build, served ---------------------------------------------------------------------------------
@pytest.fixture
def built(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>Easel</title><div id=root></div>")
    (tmp_path / "assets" / "app-1234.js").write_text("console.log('easel')")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    return tmp_path


def test_build_is_served_with_spa_fallback_and_the_api_untouched(admin_settings: Settings, built: Path) -> None:
    client = TestClient(create_app(admin_settings.model_copy(update={"webui_dist": built})))
    for path in ("/", "/ui", "/ui/", "/ui/train_jobs/digits/1", "/ui/no/such/page"):
        page = client.get(path)
        assert page.status_code == 200 and "<title>Easel</title>" in page.text, path
        assert page.headers["content-type"].startswith("text/html")
    script = client.get("/ui/assets/app-1234.js")
    assert script.text == "console.log('easel')" and "immutable" in script.headers["cache-control"]
    assert client.get("/ui/favicon.svg").text == "<svg/>"
    assert client.get("/ui/assets/gone-999.js").status_code == 404
    # no escape from the build folder: the traversal falls back to the app page
    assert "<title>Easel</title>" in client.get("/ui/..%2F..%2Fetc%2Fpasswd").text
    api = client.get("/datasets")  # the API keeps its paths and its envelope
    assert api.status_code == 401 and api.json()["error"] == "unauthorized"
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_missing_build_is_a_clear_page_not_a_500(admin_settings: Settings, tmp_path: Path) -> None:
    client = TestClient(create_app(admin_settings.model_copy(update={"webui_dist": tmp_path / "nothing"})))
    for path in ("/", "/ui/datasets"):
        page = client.get(path)
        assert page.status_code == 503
        assert "not built" in page.text and "make webui" in page.text and str(tmp_path / "nothing") in page.text
    assert client.get("/health").status_code == 200


# -- the live event stream -----------------------------------------------------------------------------
def _events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of an SSE stream; comments skipped."""
    event, data = "message", []
    for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


@pytest.fixture
def developer(make_user) -> Client:
    return make_user("APP_DEVELOPER")[0]


@pytest.fixture
def job(developer: Client, files: Path) -> tuple[str, int]:
    train = developer.upload_dataset("train", TASK, npz_file(files / "train.npz"))
    val = developer.upload_dataset("val", TASK, npz_file(files / "val.npz", n=12))
    mlp = next(m.id for m in developer.list_models() if m.name == "SlicedMLP")
    created = developer.create_train_job("live", TASK, train.id, val.id, [mlp])
    return created.app, created.app_version


def test_event_stream_sends_each_change_then_ends(url: str, developer: Client, job: tuple[str, int], seed_trials,
                                                  sessions, make_user) -> None:
    app, version = job
    seed_trials(app, version, [("RUNNING", None, False)])
    headers = {"Authorization": f"Bearer {developer.token}"}
    seen: list[dict] = []
    with httpx.stream("GET", f"{url}/train_jobs/{app}/{version}/events", headers=headers, timeout=60) as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        events = _events(stream.iter_lines())
        event, data = next(events)
        first = json.loads(data)
        assert event == "snapshot" and first["job"]["status"] == "STARTED"
        assert [t["status"] for t in first["trials"]] == ["RUNNING"] and first["trials_total"] == 1
        trial_id = first["trials"][0]["id"]
        assert first["epochs"][trial_id] == [{"epoch": 1, "metrics": {"loss": 0.5}}]
        assert first["workers"] == {}
        worker = next(s for sub in first["job"]["sub_train_jobs"] for s in sub["services"]
                      if s["kind"] == "TRAIN_WORKER")
        # a worker finishes the trial, then the job: each change arrives without asking again
        with session_scope(sessions) as session:
            session.add(TrialLog(trial_id=trial_id, message="epoch 2", metrics={"epoch": 2.0, "loss": 0.25,
                                                                                 "held_out_accuracy": 0.9}))
            session.execute(update(Trial).where(Trial.id == trial_id).values(
                status=TrialStatus.COMPLETED, score=0.9, worker_service_id=worker["id"]))
        event, data = next(events)
        second = json.loads(data)
        assert event == "snapshot" and second["trials"][0]["status"] == "COMPLETED"
        assert second["trials"][0]["score"] == 0.9 and len(second["epochs"][trial_id]) == 2
        assert second["workers"] == {trial_id: worker["name"]}
        with session_scope(sessions) as session:
            session.execute(update(TrainJob).where(TrainJob.app == app).values(status=JobStatus.COMPLETED))
        for event, data in events:
            seen.append({"event": event, **json.loads(data)})
    assert seen[-1] == {"event": "end", "status": "COMPLETED"}
    assert seen[-2]["event"] == "snapshot" and seen[-2]["job"]["status"] == "COMPLETED"
    # nobody else's job: 404 in the envelope, before any stream starts
    stranger = make_user("APP_DEVELOPER")[0]
    answer = httpx.get(f"{url}/train_jobs/{app}/{version}/events", headers={"Authorization": f"Bearer {stranger.token}"})
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
    assert httpx.get(f"{url}/train_jobs/{app}/{version}/events").status_code == 401


# -- aggregated serving metrics ------------------------------------------------------------------------
def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.1, 50.0), (0.2, 90.0), (0.5, 100.0), (float("inf"), 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.7, buckets) == pytest.approx(0.15)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.2 + 0.3 * 9 / 10)
    assert histogram_quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    assert histogram_quantile(0.99, [(0.1, 1.0), (float("inf"), 10.0)]) == 0.1  # beyond the last bound
    with pytest.raises(ValueError, match="q must be"):
        histogram_quantile(1.5, buckets)


@pytest.fixture
def exporters() -> Iterator[tuple[PredictorMetrics, list[WorkerMetrics], list[int]]]:
    """The real predictor's and two real workers' metric registries, each on its own /metrics port."""
    predictor = PredictorMetrics()
    workers = [WorkerMetrics([1.0, 0.5]), WorkerMetrics([1.0, 0.5])]
    servers = [start_http_server(0, addr="127.0.0.1", registry=m.registry) for m in (predictor, *workers)]
    try:
        yield predictor, workers, [int(server.server_port) for server, _thread in servers]
    finally:
        for server, thread in servers:
            server.shutdown()
            thread.join(5)


def test_metrics_endpoint_aggregates_predictor_and_workers(url: str, developer: Client, job: tuple[str, int],
                                                           seed_trials, sessions, exporters, make_user) -> None:
    app, version = job
    seed_trials(app, version, [("COMPLETED", 0.9, True)], finish_as="COMPLETED")
    deployed = developer.create_inference_job(app, version, workers=3)
    predictor, workers, ports = exporters
    predictor.requests.labels("200").inc(4)
    predictor.instances.labels("served").inc(30)
    predictor.instances.labels("dropped").inc(2)
    for seconds in (0.01, 0.01, 0.03, 0.3):
        predictor.seconds.observe(seconds)
    for worker, (served, dropped, correct) in zip(workers, [(20, 1, 18.0), (10, 1, 8.5)], strict=True):
        worker.instances.labels("served").inc(served)
        worker.instances.labels("dropped").inc(dropped)
        worker.expected_correct.inc(correct)
        worker.minibatches.labels("1").inc(2)
        worker.minibatches.labels("0.5").inc(1)
        worker.batch_estimate.labels("0.5").set(0.004)
    # point the recorded services at the exporters (as launched services record their ports); the third
    # worker has no port yet
    with session_scope(sessions) as session:
        rows = session.scalars(select(Service).where(Service.inference_job_id == deployed.id)
                               .order_by(Service.kind, Service.name)).all()
        kinds = [r.kind for r in rows]
        assert kinds.count(ServiceKind.INFERENCE_WORKER) == 3 and kinds.count(ServiceKind.PREDICTOR) == 1
        worker_rows = [r for r in rows if r.kind == ServiceKind.INFERENCE_WORKER]
        predictor_row = next(r for r in rows if r.kind == ServiceKind.PREDICTOR)
        predictor_row.host, predictor_row.port = "127.0.0.1", ports[0]
        for row, port in zip(worker_rows, ports[1:], strict=False):
            row.host, row.port = "127.0.0.1", port
        silent = worker_rows[2].id
        session.execute(update(InferenceJob).where(InferenceJob.id == deployed.id).values(status=JobStatus.RUNNING))

    answer = httpx.get(f"{url}/inference_jobs/{app}/{version}/metrics",
                       headers={"Authorization": f"Bearer {developer.token}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # the supervisor may grade these hand-made services (no live worker in Redis) DEGRADED at any moment
    assert body["job_id"] == deployed.id and body["status"] in ("RUNNING", "DEGRADED")
    p = body["predictor"]
    assert p["up"] and p["requests"] == {"200": 4.0} and p["instances"] == {"served": 30.0, "dropped": 2.0}
    assert p["latency_count"] == 4 and 0.005 < p["latency_p50_s"] <= 0.02 and 0.2 < p["latency_p99_s"] <= 0.5
    by_id = {w["service_id"]: w for w in body["workers"]}
    assert len(by_id) == 3 and not by_id[silent]["up"] and "no metrics port" in by_id[silent]["error"]
    assert sum(w["up"] for w in body["workers"]) == 2
    totals = body["totals"]
    assert (totals["served"], totals["dropped"], totals["expected_correct"]) == (30.0, 2.0, 26.5)
    assert totals["effective_accuracy"] == pytest.approx(26.5 / 32)
    assert totals["minibatches_by_rate"] == {"0.5": 2.0, "1": 4.0}
    # predictions are passed on to the job's predictor: none recorded, or one that does not answer
    def predict() -> httpx.Response:
        return httpx.post(f"{url}/inference_jobs/{app}/{version}/predict", json={"instances": [[0]], "deadline_s": 1},
                          headers={"Authorization": f"Bearer {developer.token}"}, timeout=30)

    with session_scope(sessions) as session:
        session.execute(update(InferenceJob).where(InferenceJob.id == deployed.id).values(predictor_url=None))
    refused = predict()
    assert refused.status_code == 409 and refused.json()["error"] == "not_serving"
    with session_scope(sessions) as session:
        session.execute(update(InferenceJob).where(InferenceJob.id == deployed.id)
                        .values(predictor_url=f"http://127.0.0.1:{free_port()}"))
    silent = predict()
    assert silent.status_code == 503 and "the predictor did not answer" in silent.json()["detail"]
    # someone else's job is not found
    stranger = make_user("APP_DEVELOPER")[0]
    hidden = httpx.get(f"{url}/inference_jobs/{app}/{version}/metrics",
                       headers={"Authorization": f"Bearer {stranger.token}"})
    assert hidden.status_code == 404 and hidden.json()["error"] == "not_found"


def test_parse_samples_reads_counters_by_their_sample_names() -> None:
    text = ('# TYPE easel_worker_instances counter\n'
            'easel_worker_instances_total{status="served"} 3.0\n'
            'easel_worker_instances_total{status="dropped"} 1.0\n')
    samples = parse_samples(text)
    assert samples["easel_worker_instances_total"] == [({"status": "served"}, 3.0), ({"status": "dropped"}, 1.0)]



def test_admins_change_roles_within_their_reach(root: Client, make_user, url: str) -> None:
    admin_client, admin = make_user("ADMIN")
    _dev_client, dev = make_user("APP_DEVELOPER")

    def patch(client: Client, user_id: str, role: str) -> httpx.Response:
        return httpx.patch(f"{url}/users/{user_id}", json={"role": role},
                           headers={"Authorization": f"Bearer {client.token}"})

    changed = patch(admin_client, dev.id, "MODEL_DEVELOPER")
    assert changed.status_code == 200 and changed.json()["role"] == "MODEL_DEVELOPER"
    assert root.get_user(dev.id).role == "MODEL_DEVELOPER"
    assert patch(admin_client, dev.id, "ADMIN").status_code == 403  # an admin cannot make admins
    assert patch(admin_client, admin.id, "APP_USER").json()["error"] == "conflict"  # nor change itself
    assert patch(root, admin.id, "APP_USER").json()["role"] == "APP_USER"
    assert patch(root, dev.id, "NOBODY").status_code == 422
    assert patch(root, "no-such-user", "APP_USER").status_code == 404
