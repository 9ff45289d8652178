"""Feedback and admin's per-app metrics over REST, on a fixed scenario computed by hand.

The predictor keeps each request's answers in Redis (``easel.serving.answers_key``); here they are written as it
writes them, so the measured effective accuracy can be checked against numbers worked out on paper:

* request A, 5 instances: served "3", served "1", dropped, served "7", served "2"; true labels 3, 1, 4, 9, 2
  → 5 labelled, 4 served, 3 correct (0.6);
* request B, 3 instances: served "0", dropped, dropped; true labels 0, 5, unknown → 2 labelled, 1 correct.

The job's measured effective accuracy is (3 + 1) / (5 + 2) = 4/7.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from fake_launcher import FakeLauncher
from prometheus_client.parser import text_string_to_metric_families

from admin.services.monitoring import collect_once
from admin.state import AdminState
from easel.serving import answers_key, encode_answers
from easel.settings import Settings
from sdk import Client, Conflict, Invalid, NotFound
from tests.support import npz_file

TASK_A, TASK_B = "a" * 32, "b" * 32
ANSWERS_A = [("served", "3", 1), ("served", "1", 1), ("dropped", None, None), ("served", "7", 1), ("served", "2", 2)]
ANSWERS_B = [("served", "0", 2), ("dropped", None, None), ("dropped", None, None)]


@pytest.fixture
def serving_job(root: Client, files: Path, seed_trials, admin_settings: Settings) -> str:
    """An inference job of app ``fb`` (its services recorded by the contract-fake launcher), with the answers of
    requests A and B kept as its predictor keeps them. Returns the job id."""
    dataset = root.upload_dataset("d", "IMAGE_CLASSIFICATION", npz_file(files / "d.npz"))
    mlp = next(m.id for m in root.list_models() if m.name == "SlicedMLP")
    root.create_train_job("fb", "IMAGE_CLASSIFICATION", dataset.id, dataset.id, [mlp])
    seed_trials("fb", 1, [("COMPLETED", 0.9, True)], finish_as="COMPLETED")
    job = root.create_inference_job("fb", 1)
    client = redis.Redis.from_url(admin_settings.resolved_redis_url)
    try:
        client.set(answers_key(job.id, TASK_A), encode_answers(ANSWERS_A), ex=60)
        client.set(answers_key(job.id, TASK_B), encode_answers(ANSWERS_B), ex=60)
    finally:
        client.close()
    return job.id


def scrape(url: str, token: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    import httpx

    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_feedback_measures_effective_accuracy_as_computed_by_hand(root: Client, serving_job: str, url: str) -> None:
    first = root.send_feedback("fb", 1, TASK_A, [3, 1, 4, 9, 2])
    assert (first["labelled"], first["served"], first["correct"]) == (5, 4, 3)
    assert first["effective_accuracy"] == pytest.approx(0.6)
    assert first["measured_effective_accuracy"] == pytest.approx(0.6)
    second = root.send_feedback("fb", 1, TASK_B, ["0", 5, None])
    assert (second["labelled"], second["served"], second["correct"]) == (2, 1, 1)
    assert second["measured_effective_accuracy"] == pytest.approx(4 / 7) and second["measured_instances"] == 7
    metrics = scrape(url, root.token or "")
    assert metrics[("easel_app_measured_effective_accuracy", (("app", "fb"),))] == pytest.approx(4 / 7)
    assert metrics[("easel_app_feedback_instances_total", (("app", "fb"),))] == 7


def test_feedback_errors(root: Client, serving_job: str) -> None:
    with pytest.raises(Invalid, match="3 given for a request of 5"):
        root.send_feedback("fb", 1, TASK_A, [1, 2, 3])
    with pytest.raises(NotFound, match="no answers kept"):
        root.send_feedback("fb", 1, "c" * 32, [1])
    with pytest.raises(Invalid):
        root.send_feedback("fb", 1, "not-a-task", [1])
    root.send_feedback("fb", 1, TASK_A, [3, 1, 4, 9, 2])
    with pytest.raises(Conflict, match="already has feedback"):
        root.send_feedback("fb", 1, TASK_A, [3, 1, 4, 9, 2])


def test_the_collector_samples_live_jobs_into_the_app_series(root: Client, serving_job: str, url: str,
                                                             admin_settings: Settings) -> None:
    state = AdminState.from_settings(admin_settings, FakeLauncher)
    try:
        assert collect_once(state) == 1
    finally:
        state.close()
    [sample] = root.app_series("fb")
    values = sample["values"]
    assert sample["inference_job_id"] == serving_job
    # the fake launcher runs no process: nothing answers its scrape, which is what a dead job looks like
    assert (values["predictor_up"], values["workers_up"], values["workers_wanted"]) == (False, 0, 1)
    metrics = scrape(url, root.token or "")
    key = (("app", "fb"), ("inference_job", serving_job))
    assert metrics[("easel_app_workers_up", key)] == 0 and metrics[("easel_app_workers_wanted", key)] == 1
    assert metrics[("easel_app_predictor_up", key)] == 0


def test_admins_metrics_show_every_tenant_so_only_admins_read_them(url: str, root: Client, make_user) -> None:
    import httpx

    developer, _ = make_user("MODEL_DEVELOPER")
    anonymous = httpx.get(f"{url}/metrics", timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized", anonymous.text
    tenant = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {developer.token}"}, timeout=10)
    assert tenant.status_code == 403, tenant.text
    admin = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {root.token}"}, timeout=10)
    assert admin.status_code == 200 and "text/plain" in admin.headers["content-type"], admin.text
