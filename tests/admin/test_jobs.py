"""Train jobs, trials and inference jobs: versions, sub-jobs, recorded services, stop, best trials, deploys."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from admin_helpers import TASK, fake_safetensors
from sqlalchemy import select

from admin.services.orchestration import train_job_specs
from easel.db.enums import ServiceKind
from easel.db.models import Service, Trial
from easel.db.session import session_scope
from easel.model.params import read_metadata
from sdk import Client, Conflict, Invalid, NotFound, TrainBudget
from tests.support import GOOD_TEMPLATE, csv_file, npz_file


@pytest.fixture
def developer(make_user) -> Client:
    return make_user("APP_DEVELOPER")[0]


@pytest.fixture
def datasets(developer: Client, files: Path) -> tuple[str, str]:
    train = developer.upload_dataset("train", TASK, npz_file(files / "train.npz"))
    val = developer.upload_dataset("val", TASK, npz_file(files / "val.npz", n=12))
    return train.id, val.id


def _builtin(client: Client, name: str) -> str:
    return next(m.id for m in client.list_models() if m.name == name)


def test_create_versions_and_services(developer: Client, datasets: tuple[str, str], sessions) -> None:
    mlp, vgg = _builtin(developer, "SlicedMLP"), _builtin(developer, "SlicedVGG")
    budget = TrainBudget(model_trial_count=7, time_hours=0.25, gpu_count=0, workers=3)
    job = developer.create_train_job("digits", "image_classification", *datasets, [mlp, vgg, mlp], budget=budget)
    assert (job.app, job.app_version, job.task, job.status) == ("digits", 1, TASK, "STARTED")
    assert job.budget == {"MODEL_TRIAL_COUNT": 7, "TIME_HOURS": 0.25, "GPU_COUNT": 0, "WORKERS": 3, "EARLY_STOP": True,
                          "PRUNER": "median", "MOP": False}
    assert [s.model_name for s in job.sub_train_jobs] == ["SlicedMLP", "SlicedVGG"]  # duplicates dropped
    for sub in job.sub_train_jobs:
        kinds = sorted(s.kind for s in sub.services)
        assert kinds == ["ADVISOR", "TRAIN_WORKER", "TRAIN_WORKER", "TRAIN_WORKER"]
        assert {(s.status, s.launcher) for s in sub.services} == {("RUNNING", "fake")}
    with sessions() as session:
        rows = session.scalars(select(Service).where(Service.kind == "ADVISOR")).all()
        argv = {tuple(r.command["argv"][1:]) for r in rows}
    assert argv == {("-m", "advisor", "--sub-train-job-id", s.id) for s in job.sub_train_jobs}

    second = developer.create_train_job("digits", TASK, *datasets, [mlp])
    assert second.app_version == 2 and second.budget["MODEL_TRIAL_COUNT"] == 5  # defaults
    other = developer.create_train_job("other-app", TASK, *datasets, [mlp])
    assert other.app_version == 1
    assert developer.get_train_job("digits", 1) == job
    assert [j.app_version for j in developer.list_train_jobs(app="digits")] == [2, 1]
    assert developer.list_train_jobs().total == 3
    page = developer.list_train_jobs(limit=1, offset=2)
    assert (page.total, len(page)) == (3, 1)


def test_pruner_and_mop_budget_fields(developer: Client, datasets: tuple[str, str]) -> None:
    mlp = _builtin(developer, "SlicedMLP")
    budget = TrainBudget(pruner="asha", asha_min_epochs=2, asha_reduction_factor=2, mop=True, seed=7)
    job = developer.create_train_job("asha", TASK, *datasets, [mlp], budget=budget)
    assert {k: job.budget[k] for k in ("PRUNER", "ASHA_MIN_EPOCHS", "ASHA_REDUCTION_FACTOR", "MOP", "SEED")} == {
        "PRUNER": "asha", "ASHA_MIN_EPOCHS": 2, "ASHA_REDUCTION_FACTOR": 2, "MOP": True, "SEED": 7}
    for bad, named in [({"PRUNER": "hyperband"}, "PRUNER"), ({"MOP": "sometimes"}, "MOP"),
                       ({"SEED": -1}, "SEED"), ({"SEED": "lucky"}, "SEED"),
                       ({"PRUNER": "asha", "ASHA_REDUCTION_FACTOR": 1}, "ASHA_REDUCTION_FACTOR"),
                       ({"PRUNER": "asha", "ASHA_MIN_EPOCHS": 0}, "ASHA_MIN_EPOCHS"),
                       ({"PRUNER": "median", "ASHA_MIN_EPOCHS": 3},
                        "apply to PRUNER 'asha' or 'asha_promote' only, not 'median'"),
                       ({"PRUNER": "asha_promote", "MOP": True}, "'asha_promote' does not combine with MOP"),
                       ({"PRUNER": "median", "ASHA_BRACKETS": 3}, "ASHA_BRACKETS applies to PRUNER 'asha_promote'")]:
        with pytest.raises(Invalid, match=named):
            developer.create_train_job("asha", TASK, *datasets, [mlp], budget=bad)
    assert developer.list_train_jobs(app="asha").total == 1, "nothing recorded for a refused budget"


def test_create_is_validated(developer: Client, datasets: tuple[str, str], files: Path, make_user) -> None:
    mlp = _builtin(developer, "SlicedMLP")
    tabular = developer.upload_dataset("table", "TABULAR_CLASSIFICATION", csv_file(files / "t.csv"))
    with pytest.raises(Invalid, match="is for task TABULAR_CLASSIFICATION"):
        developer.create_train_job("a", TASK, tabular.id, datasets[1], [mlp])
    with pytest.raises(Invalid, match="model SlicedMLP-tabular is for task TABULAR_CLASSIFICATION"):
        developer.create_train_job("a", TASK, *datasets, [_builtin(developer, "SlicedMLP-tabular")])
    with pytest.raises(NotFound, match="no model"):
        developer.create_train_job("a", TASK, *datasets, ["00000000-0000-0000-0000-000000000000"])
    with pytest.raises(NotFound, match="no dataset"):
        developer.create_train_job("a", TASK, "00000000-0000-0000-0000-000000000000", datasets[1], [mlp])
    with pytest.raises(Invalid, match="model_ids"):
        developer.create_train_job("a", TASK, *datasets, [mlp] * 21)
    with pytest.raises(Invalid, match="WORKERS"):
        developer.create_train_job("a", TASK, *datasets, [mlp], budget={"WORKERS": 0})
    with pytest.raises(Invalid, match="TIME_HOURS"):
        developer.create_train_job("a", TASK, *datasets, [mlp], budget={"TIME_HOURS": -1})
    with pytest.raises(Invalid, match="SURPRISE"):
        developer.create_train_job("a", TASK, *datasets, [mlp], budget={"SURPRISE": 1})
    with pytest.raises(Invalid, match="app"):
        developer.create_train_job("no spaces/please", TASK, *datasets, [mlp])
    # An app name belongs to whoever trained its first version.
    developer.create_train_job("taken", TASK, *datasets, [mlp])
    rival = make_user("APP_DEVELOPER")[0]
    rival_train = rival.upload_dataset("t", TASK, npz_file(files / "r.npz"))
    with pytest.raises(Conflict, match="belongs to another user"):
        rival.create_train_job("taken", TASK, rival_train.id, rival_train.id, [mlp])


def test_uploaded_model_in_a_job_cannot_be_deleted(make_user, datasets: tuple[str, str], files: Path,
                                                  developer: Client) -> None:
    model_dev = make_user("MODEL_DEVELOPER")[0]
    path = files / "tiny.py"
    path.write_text(GOOD_TEMPLATE)
    model = model_dev.upload_model("tiny", TASK, path, access_right="PUBLIC")
    developer.create_train_job("uses-tiny", TASK, *datasets, [model.id])
    with pytest.raises(Conflict, match="used by a train job"):
        model_dev.delete_model(model.id)
    with pytest.raises(Conflict, match="used by train job uses-tiny v1"):
        developer.delete_dataset(datasets[0])


def test_stop_stops_services_sub_jobs_and_unfinished_trials(developer: Client, datasets, seed_trials) -> None:
    job = developer.create_train_job("stopme", TASK, *datasets, [_builtin(developer, "SlicedMLP")])
    ids = seed_trials("stopme", 1, [("COMPLETED", 0.8, True), ("RUNNING", None, False), ("PENDING", None, False)])
    stopped = developer.stop_train_job("stopme", 1)
    assert stopped.status == "STOPPED" and stopped.stopped_at is not None
    assert {s.status for s in stopped.sub_train_jobs} == {"STOPPED"}
    assert {svc.status for s in stopped.sub_train_jobs for svc in s.services} == {"STOPPED"}
    assert [developer.get_trial(t).status for t in ids] == ["COMPLETED", "TERMINATED", "TERMINATED"]
    again = developer.stop_train_job("stopme", 1)
    assert again.status == "STOPPED" and again.stopped_at == stopped.stopped_at  # idempotent
    assert job.id == again.id
    with pytest.raises(NotFound):
        developer.stop_train_job("stopme", 9)


def test_trials_best_logs_and_parameters(developer: Client, datasets, seed_trials) -> None:
    developer.create_train_job("tri", TASK, *datasets, [_builtin(developer, "SlicedMLP"), _builtin(developer, "SlicedVGG")])
    ids = seed_trials("tri", 1, [("COMPLETED", 0.7, True), ("COMPLETED", 0.9, True), ("ERRORED", None, False),
                                 ("COMPLETED", 0.8, False), ("RUNNING", None, False)])
    page = developer.list_trials("tri", 1)
    assert page.total == 5 and [t.id for t in page] == ids
    best = developer.list_trials("tri", 1, best=2)
    assert [(t.id, t.score) for t in best] == [(ids[1], 0.9), (ids[3], 0.8)]
    trial = developer.get_trial(ids[1])
    assert (trial.status, trial.score, trial.has_parameters, trial.knobs) == ("COMPLETED", 0.9, True, {"lr": 0.02})
    assert trial.model_name == "SlicedVGG"
    logs = developer.get_trial_logs(ids[1])
    assert logs.total == 1 and logs.items[0].message == "epoch 1 of trial 2" and logs.items[0].metrics["loss"] == 0.5
    params = developer.get_trial_parameters(ids[1])
    assert params == fake_safetensors(1) and read_metadata(params) == {"seed": "1"}
    with pytest.raises(NotFound, match="no saved parameters"):
        developer.get_trial_parameters(ids[2])
    with pytest.raises(NotFound):
        developer.get_trial("00000000-0000-0000-0000-000000000000")
    assert developer.list_trials("tri", 1, offset=4, limit=10).items[0].id == ids[4]


def test_parameters_are_served_as_octet_stream(developer: Client, datasets, seed_trials, url: str) -> None:
    import httpx

    developer.create_train_job("raw", TASK, *datasets, [_builtin(developer, "SlicedMLP")])
    trial_id = seed_trials("raw", 1, [("COMPLETED", 0.5, True)])[0]
    response = httpx.get(f"{url}/trials/{trial_id}/parameters", headers={"Authorization": f"Bearer {developer.token}"})
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-easel-params-format"] == "safetensors"
    assert "attachment" in response.headers["content-disposition"]


def test_inference_job_life_cycle(developer: Client, datasets, seed_trials) -> None:
    mlp, vgg = _builtin(developer, "SlicedMLP"), _builtin(developer, "SlicedVGG")
    developer.create_train_job("serve", TASK, *datasets, [mlp, vgg])
    with pytest.raises(Conflict, match="is STARTED; deploy it once it has finished") as caught:
        developer.create_inference_job("serve", 1)
    assert caught.value.code == "train_job_not_finished"
    ids = seed_trials("serve", 1, [("COMPLETED", 0.6, True), ("COMPLETED", 0.9, True), ("COMPLETED", 0.7, True),
                                   ("COMPLETED", 0.95, False)], finish_as="COMPLETED")
    job = developer.create_inference_job("serve", -1, workers=2)
    assert (job.app, job.app_version, job.status, job.workers) == ("serve", 1, "STARTED", 2)
    assert job.trial_ids == [ids[1], ids[2]]  # best with parameters per model, best first
    assert sorted(s.kind for s in job.services) == ["EXPLAINER", "INFERENCE_WORKER", "INFERENCE_WORKER", "PREDICTOR"]
    predictor = next(s for s in job.services if s.kind == "PREDICTOR")
    assert job.predictor_url == f"http://127.0.0.1:{predictor.port}"  # chosen at launch
    with pytest.raises(Conflict, match="already has a running inference job"):
        developer.create_inference_job("serve", 1)
    assert developer.get_inference_job("serve", 1) == job
    assert [j.id for j in developer.list_inference_jobs(app="serve")] == [job.id]
    assert developer.list_inference_jobs(app="nothing").total == 0
    stopped = developer.stop_inference_job("serve", 1)
    assert stopped.status == "STOPPED" and {s.status for s in stopped.services} == {"STOPPED"}
    again = developer.create_inference_job("serve", 1)
    assert again.id != job.id and developer.get_inference_job("serve", 1).id == again.id
    assert developer.list_inference_jobs().total == 2


def test_inference_job_needs_something_to_deploy(developer: Client, datasets, seed_trials) -> None:
    developer.create_train_job("empty", TASK, *datasets, [_builtin(developer, "SlicedMLP")])
    seed_trials("empty", 1, [("ERRORED", None, False), ("COMPLETED", 0.5, False)], finish_as="STOPPED")
    with pytest.raises(Conflict, match="no completed trial with saved parameters"):
        developer.create_inference_job("empty", 1)
    with pytest.raises(NotFound):
        developer.create_inference_job("no-such-app")
    with pytest.raises(NotFound):
        developer.get_inference_job("empty", 1)
    with pytest.raises(Invalid, match="app_version"):
        developer.create_inference_job("empty", 0)


def test_best_by_mean_accuracy_across_rates(developer: Client, datasets, seed_trials, sessions) -> None:
    developer.create_train_job("obj", TASK, *datasets, [_builtin(developer, "SlicedMLP")])
    ids = seed_trials("obj", 1, [("COMPLETED", 0.95, False), ("COMPLETED", 0.90, False)])
    # trial 1 is best at full width but collapses when sliced; trial 2 holds up at every rate
    profiles = {ids[0]: [0.95, 0.5, 0.3, 0.2], ids[1]: [0.90, 0.88, 0.86, 0.8]}
    with session_scope(sessions) as session:
        for trial_id, accuracy in profiles.items():
            session.get_one(Trial, trial_id).profile = {"rates": [1.0, 0.75, 0.5, 0.25], "accuracy": accuracy}
    assert [t.id for t in developer.list_trials("obj", 1, best=2)] == [ids[0], ids[1]]
    by_mean = developer.list_trials("obj", 1, best=2, objective="mean_across_rates")
    assert [t.id for t in by_mean] == [ids[1], ids[0]]
    with pytest.raises(Invalid):
        developer.list_trials("obj", 1, best=1, objective="fastest")


def test_a_trial_shows_its_unit_progress(developer: Client, datasets, seed_trials, sessions, url: str) -> None:
    import httpx

    developer.create_train_job("hops", TASK, *datasets, [_builtin(developer, "SlicedMLP")])
    plain, hopping = seed_trials("hops", 1, [("COMPLETED", 0.5, False), ("RUNNING", None, False)])
    progress = {"units_done": 3, "units_total": 8, "epoch": 2, "shard": 0, "worker": "worker-b", "units_run": 4,
                "checkpoint_bytes": 1234, "path": [1, 0, 1], "paused_at_epoch": 3, "rung_scores": {"1": 0.5, "3": 0.75}}
    with session_scope(sessions) as session:
        session.get_one(Trial, hopping).progress = progress
    headers = {"Authorization": f"Bearer {developer.token}"}
    shown = httpx.get(f"{url}/trials/{hopping}", headers=headers).json()["progress"]
    assert shown == {k: v for k, v in progress.items() if k != "checkpoint_bytes"}
    assert httpx.get(f"{url}/trials/{plain}", headers=headers).json()["progress"] is None


def test_pool_reports_disabled_without_a_pool(developer: Client) -> None:
    pool = developer.get_pool()
    assert (pool.enabled, pool.size, pool.policy) == (False, 0, "regret_rate")
    assert "1/(2U)" in pool.fairness_floor and pool.workers == []


def test_a_seeded_budget_seeds_the_advisor_and_an_unseeded_one_does_not() -> None:
    """Pure logic: the advisor's command line carries the budget's SEED (its sampler's random state)."""
    def advisor_argv(budget: dict[str, object]) -> list[str]:
        job = SimpleNamespace(id="j" * 36, app="seeded", app_version=1, budget=budget, sub_train_jobs=[SimpleNamespace(id="s" * 36)])
        (advisor,) = [spec for spec in train_job_specs(job) if spec.kind == ServiceKind.ADVISOR]  # type: ignore[arg-type]
        return advisor.argv

    assert advisor_argv({"SEED": 11})[-2:] == ["--seed", "11"]
    assert "--seed" not in advisor_argv({})
