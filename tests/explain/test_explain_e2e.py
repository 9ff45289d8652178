"""Explanations end to end, with real processes and servers, on the deployment the demo's life cycle made.

The tests run in this order on one deployment (see ``conftest.demo_run``); the last one kills the explainer.
"""

from __future__ import annotations

import base64
import os
import signal
import threading
import time

import httpx
import numpy as np
import pytest
from explain_helpers import ROOT, DemoRun, auth
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from demo.life_cycle import QUICK, webui_built
from easel import explanations as store
from easel.api_errors import Invalid as PredictorInvalid
from easel.api_errors import Unavailable as PredictorUnavailable
from easel.blobstore import LocalBlobStore
from easel.db.enums import ServiceKind, ServiceStatus
from easel.db.models import Explanation, InferenceJob, Service
from easel.db.session import session_scope
from easel.model.params import tensors_to_bytes
from easel.redis_client import make_redis
from easel.settings import Settings
from predictor.explain import ExplainIn, Explanations
from sdk import EaselError, Invalid, NotFound

PNG = b"\x89PNG\r\n\x1a\n"
pytestmark = pytest.mark.timeout(1200)  # the first test includes the demo run (training, deploying) on a busy CI box


def job_of(demo: DemoRun):
    return demo.client.get_inference_job(demo.result.app, demo.result.version)


def check_heatmap(heatmap: list, shape: tuple[int, int] = (8, 8)) -> np.ndarray:
    heat = np.asarray(heatmap)
    assert heat.shape == shape and heat.min() >= 0.0 and heat.max() <= 1.0 and heat.max() > 0.0
    return heat


def queued_and_recorded(settings: Settings, sessions: sessionmaker[Session], job_id: str) -> tuple[int, int]:
    client = make_redis(settings)
    try:
        queued = client.xlen(store.requests_stream(job_id))
    finally:
        client.close()
    with session_scope(sessions) as session:
        recorded = session.scalar(select(func.count()).select_from(Explanation)
                                  .where(Explanation.inference_job_id == job_id))
    return queued, recorded


def test_the_demo_life_cycle_deploys_predicts_and_explains(demo_run: DemoRun) -> None:
    result = demo_run.result
    job = job_of(demo_run)
    assert job.status == "RUNNING"
    kinds = sorted(s.kind for s in job.services if s.status == "RUNNING")
    assert kinds == ["EXPLAINER", "INFERENCE_WORKER", "INFERENCE_WORKER", "PREDICTOR"]
    generous, tight = result.answers["generous"], result.answers["tight"]
    assert generous.served == QUICK.instances and generous.dropped == 0
    assert tight.served + tight.dropped == QUICK.instances
    for method in ("gradcam", "lime"):
        explanation = result.explanations[method]
        assert explanation.status == "COMPLETED" and explanation.slice_rate == 1.0
        check_heatmap(explanation.heatmap)
        assert explanation.label == str(explanation.class_index)
        assert (demo_run.out / f"{method}.png").read_bytes().startswith(PNG)
    assert result.explanations["gradcam"].details["target_layer"].startswith("features.")
    assert result.explanations["lime"].details["num_samples"] == QUICK.lime_samples
    assert (result.dashboard is not None) == webui_built()


def test_gradcam_at_every_slice_rate_is_stored_and_fetched_again(demo_run: DemoRun, explain_admin) -> None:
    client, instance = demo_run.client, demo_run.x[3].tolist()
    rates = demo_run.result.profile["rates"]
    assert len(rates) == 4
    for rate in rates:
        explanation = client.explain(demo_run.result.app, demo_run.result.version, instance, "gradcam",
                                     slice_rate=rate)
        assert explanation.status == "COMPLETED" and explanation.slice_rate == rate
        heat = check_heatmap(explanation.heatmap)
        again = client.get_explanation(explanation.id)
        assert np.allclose(np.asarray(again.heatmap), heat) and again.label == explanation.label
        png = httpx.get(f"{explain_admin.url}/explanations/{explanation.id}/overlay.png",
                        headers={"Authorization": f"Bearer {client.token}"}, timeout=30)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content.startswith(PNG)
        assert base64.b64decode(again.overlay_png) == png.content


def test_lime_through_the_predictors_rest_route(demo_run: DemoRun) -> None:
    url = job_of(demo_run).predictor_url
    answer = httpx.post(f"{url}/explain", json={"instance": demo_run.x[5].tolist(), "method": "lime",
                                                "slice_rate": 0.5, "options": {"num_samples": 150, "seed": 1}},
                        timeout=300, headers=auth(demo_run))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "COMPLETED" and body["slice_rate"] == 0.5 and body["method"] == "lime"
    check_heatmap(body["heatmap"])
    ranked = [s["weight"] for s in body["details"]["superpixels"]]
    assert ranked == sorted(ranked, reverse=True)
    again = httpx.get(f"{url}/explanations/{body['id']}", timeout=30, headers=auth(demo_run)).json()
    assert again["heatmap"] == body["heatmap"] and again["probabilities"] == body["probabilities"]
    missing = httpx.get(f"{url}/explanations/no-such-id", timeout=30, headers=auth(demo_run))
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


@pytest.mark.parametrize(("body", "code"), [
    ({"instance": [[0.0] * 7] * 8, "method": "gradcam"}, "invalid_instance"),
    ({"instance": "an image", "method": "lime"}, "invalid_instance"),
    ({"instance": [[0.0] * 8] * 8, "method": "shap"}, "unknown_method"),
    ({"instance": [[0.0] * 8] * 8, "method": "gradcam", "slice_rate": 0.3}, "invalid_slice_rate"),
    ({"instance": [[0.0] * 8] * 8, "method": "gradcam", "options": {"layer": "classifier"}}, "invalid_layer"),
    ({"instance": [[0.0] * 8] * 8, "method": "lime", "options": {"target_class": 10}}, "invalid_options"),
    ({"instance": [[0.0] * 8] * 8, "method": "lime", "options": {"num_samples": 10 ** 6}}, "invalid_options"),
    ({"instance": [[0.0] * 8] * 8, "method": "lime", "options": {"colour": "red"}}, "invalid"),
])
def test_bad_requests_are_refused_and_nothing_is_queued(demo_run: DemoRun, explain_settings, sessions, body,
                                                        code: str) -> None:
    job = job_of(demo_run)
    before = queued_and_recorded(explain_settings, sessions, job.id)
    with pytest.raises(Invalid) as caught:
        demo_run.client.explain(demo_run.result.app, demo_run.result.version, body["instance"], body["method"],
                                slice_rate=body.get("slice_rate"), options=body.get("options"))
    assert caught.value.status_code == 422 and caught.value.code == code, caught.value
    assert queued_and_recorded(explain_settings, sessions, job.id) == before


def test_gradcam_on_a_model_without_convolutions_and_a_job_without_explainers_are_refused(
        explain_settings: Settings, sessions) -> None:
    """The predictor reads the layers from the parameters' header: an MLP has no 4-D weights."""
    import asyncio

    from slicing import sliced_mlp

    blobs = LocalBlobStore(explain_settings.blob_dir)
    key = "tests/explain/mlp.safetensors"
    blobs.put_bytes(key, tensors_to_bytes(sliced_mlp(num_classes=10, input_shape=(1, 8, 8), width=64).state_dict()))
    job_id = "no-such-job-mlp"
    side = Explanations(explain_settings, job_id, "no-trial", (1, 8, 8), [str(i) for i in range(10)],
                        [1.0, 0.5], sessions, blobs, params_key=key)
    body = ExplainIn(instance=np.zeros((8, 8)).tolist(), method="gradcam")
    with pytest.raises(PredictorInvalid) as caught:
        asyncio.run(side.explain(body))
    assert caught.value.status_code == 422 and caught.value.code == "not_convolutional"
    assert "no convolution layer" in caught.value.detail and "lime" in caught.value.detail
    assert queued_and_recorded(explain_settings, sessions, job_id) == (0, 0)
    side.check(ExplainIn(instance=np.zeros((8, 8)).tolist(), method="lime"))  # LIME is fine for the same model
    with pytest.raises(PredictorUnavailable) as caught:  # ... but no explainer runs for this job
        asyncio.run(side.explain(ExplainIn(instance=np.zeros((8, 8)).tolist(), method="lime")))
    assert caught.value.status_code == 503 and caught.value.code == "no_explainer"
    assert queued_and_recorded(explain_settings, sessions, job_id) == (0, 0)


def test_another_users_job_and_explanations_are_not_found(demo_run: DemoRun, explain_admin) -> None:
    from sdk import Client

    mine = demo_run.result.explanations["gradcam"]
    email = f"other-{os.getpid()}-{time.monotonic_ns()}@easel.test"
    demo_run.client.create_user(email, "other-password-123", "APP_DEVELOPER")
    with Client(explain_admin.url, timeout=60) as other:
        other.login(email, "other-password-123")
        with pytest.raises(NotFound):
            other.explain(demo_run.result.app, demo_run.result.version, demo_run.x[0].tolist(), "gradcam")
        with pytest.raises(NotFound):
            other.get_explanation(mine.id)


def test_the_cli_explains_a_row_of_a_file_and_writes_the_overlay(demo_run: DemoRun, explain_admin, tmp_path,
                                                                 monkeypatch, capsys) -> None:
    from sdk.cli import main as sdk_main

    def main(argv: list[str]) -> int:
        return sdk_main(argv, plugins=[])

    monkeypatch.setenv("EASEL_DATA_DIR", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_ADMIN_URL", explain_admin.url)
    monkeypatch.setenv("EASEL_PASSWORD", ROOT[1])
    assert main(["login", "--email", ROOT[0]]) == 0
    batch = tmp_path / "batch.npz"
    np.savez(batch, x=demo_run.x[:4])
    out = tmp_path / "overlays"
    capsys.readouterr()
    code = main(["explain", demo_run.result.app, str(demo_run.result.version), str(batch), "--index", "2",
                 "--method", "gradcam", "--rate", "0.5", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "gradcam at slice rate 0.5" in printed and "target layer: features." in printed
    written = list(out.glob("*-gradcam.png"))
    assert len(written) == 1 and written[0].read_bytes().startswith(PNG) and str(written[0]) in printed
    code = main(["explain", demo_run.result.app, str(demo_run.result.version), str(batch), "--index", "9"])
    assert code == 1 and "holds 4 instance(s)" in capsys.readouterr().err


def effective_accuracy(url: str, x: np.ndarray, y: np.ndarray, deadline_s: float,
                       headers: dict[str, str]) -> tuple[float, int]:
    answer = httpx.post(f"{url}/predict", json={"instances": x.tolist(), "deadline_s": deadline_s}, timeout=60,
                        headers=headers).json()
    predictions = answer["predictions"]
    correct = sum(1 for p, label in zip(predictions, y, strict=True)
                  if p["status"] == "served" and p["prediction"]["label"] == str(int(label)))
    return correct / len(y), answer["totals"]["dropped"]


def test_a_flood_of_explanations_leaves_deadline_traffic_alone(demo_run: DemoRun, sessions) -> None:
    """The same deadline traffic with and without a flood of LIME requests on the same job, in one run."""
    job = job_of(demo_run)
    url, x, y = job.predictor_url, demo_run.x, demo_run.y
    rounds, deadline_s = 5, 1.0
    headers = auth(demo_run)
    effective_accuracy(url, x, y, deadline_s, headers)  # warm-up
    quiet = [effective_accuracy(url, x, y, deadline_s, headers) for _ in range(rounds)]

    stop = threading.Event()
    asked: list[int] = []

    def flood() -> None:
        while not stop.is_set():
            response = httpx.post(f"{url}/explain", json={"instance": x[len(asked) % len(x)].tolist(),
                                                          "method": "lime", "options": {"num_samples": 2000}},
                                  timeout=300, headers=headers)
            asked.append(response.status_code)

    flooders = [threading.Thread(target=flood, daemon=True) for _ in range(4)]
    for thread in flooders:
        thread.start()
    time.sleep(1.0)  # let the first explanations reach the explainer
    with session_scope(sessions) as session:
        flood_began = session.scalar(select(func.now()))
    loud = [effective_accuracy(url, x, y, deadline_s, headers) for _ in range(rounds)]
    with session_scope(sessions) as session:
        flood_ended = session.scalar(select(func.now()))
    stop.set()
    for thread in flooders:
        thread.join(timeout=300)

    quiet_accuracy = np.mean([a for a, _ in quiet])
    loud_accuracy = np.mean([a for a, _ in loud])
    with session_scope(sessions) as session:
        busy = session.scalar(select(func.count()).select_from(Explanation).where(
            Explanation.inference_job_id == job.id, Explanation.method == "lime",
            Explanation.started_at <= flood_ended, Explanation.started_at.is_not(None),
            (Explanation.finished_at.is_(None)) | (Explanation.finished_at >= flood_began)))
    assert busy >= 1, "no explanation was being computed while the deadline traffic ran"
    assert asked and set(asked) == {200}, asked
    assert abs(quiet_accuracy - loud_accuracy) <= 0.01, (quiet, loud)


def test_a_killed_explainer_is_replaced_and_its_explanation_retried(demo_run: DemoRun, sessions) -> None:
    job = job_of(demo_run)
    outcome: dict[str, object] = {}

    def ask() -> None:
        try:
            outcome["explanation"] = demo_run.client.explain(
                demo_run.result.app, demo_run.result.version, demo_run.x[7].tolist(), "lime",
                options={"num_samples": 60000}, wait_s=230)
        except EaselError as error:
            outcome["error"] = error

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()

    def running() -> tuple[str, int] | None:
        with session_scope(sessions) as session:
            row = session.scalars(select(Explanation).where(
                Explanation.inference_job_id == job.id, Explanation.status == "RUNNING",
                Explanation.options["num_samples"].as_integer() == 60000)).first()
            explainer = session.scalars(select(Service).where(
                Service.inference_job_id == job.id, Service.kind == ServiceKind.EXPLAINER,
                Service.status == ServiceStatus.RUNNING)).first()
            return (row.id, explainer.pid) if row is not None and explainer is not None else None

    give_up = time.monotonic() + 120
    found = running()
    while found is None and time.monotonic() < give_up:
        time.sleep(0.05)
        found = running()
    assert found is not None, "the explanation never started running"
    explanation_id, pid = found
    os.kill(pid, signal.SIGKILL)
    asker.join(timeout=300)
    assert not asker.is_alive(), "the explain request was left hanging"
    with session_scope(sessions) as session:
        row = session.get_one(Explanation, explanation_id)
        assert session.get_one(InferenceJob, job.id).status.value == "RUNNING"
        replacements = session.scalar(select(func.count()).select_from(Service).where(
            Service.inference_job_id == job.id, Service.kind == ServiceKind.EXPLAINER))
    assert replacements == 2  # the supervisor relaunched the dead explainer
    if "explanation" in outcome:  # retried by the new explainer
        assert row.status.value == "COMPLETED" and row.attempts == 2
        assert outcome["explanation"].id == explanation_id
    else:  # or answered with an error that says so
        assert row.status.value == "ERRORED" and row.error
        assert getattr(outcome["error"], "status_code", 0) in (502, 504)
