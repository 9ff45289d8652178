"""The model registry over REST (through the SDK): versions with an append-only stage history, and the promotion
gate measuring candidate and production on a held-out dataset in a real child process.

The trained parameters come from one real (quick) training of the built-in sliced MLP on digits; the "worse"
candidate is the same network with its weights drowned in noise, so its accuracy is lower at every width.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from admin_helpers import TASK
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from admin.services.orchestration import worker_version_id
from demo.life_cycle import write_digits
from easel.blobstore import LocalBlobStore
from easel.db.enums import TrialStatus
from easel.db.models import Service, SubTrainJob, TrainJob, Trial, new_id
from easel.db.session import session_scope
from easel.jobs import lifecycle
from easel.redis_client import make_redis
from easel.serving import workers_key
from easel.settings import Settings
from sdk import Client, Conflict, Forbidden, Invalid, NotFound

KNOBS = {"width": 64, "depth": 1, "image_size": 32, "lr": 0.05, "batch_size": 64, "weight_decay": 1e-5,
         "max_epochs": 20, "groups": 8, "seed": 0, "early_stop": False, "quick_train": True}


@pytest.fixture(scope="module")
def trained_params(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, bytes]:
    """(the held-out file, a trained network's parameters, the same network drowned in noise)."""
    import torch

    from builtin_templates.sliced import SlicedMLPTemplate

    folder = tmp_path_factory.mktemp("digits")
    train, val = write_digits(folder)
    template = SlicedMLPTemplate(**KNOBS)
    template.train(str(train))
    good = template.dump_parameters()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in template._require_net().parameters():
            tensor.add_(torch.randn(tensor.shape, generator=generator) * 3.0)
    return val, good, template.dump_parameters()


Seeder = Callable[[bytes], str]


@pytest.fixture
def app_with_trials(root: Client, sessions: sessionmaker[Session], blobs: LocalBlobStore,
                    trained_params: tuple[Path, bytes, bytes]) -> tuple[str, str, Seeder]:
    """An app with a finished train job, its held-out dataset id, and ``seed(params) -> trial id``."""
    val, _good, _bad = trained_params
    holdout = root.upload_dataset("digits-holdout", TASK, val)
    mlp = next(m for m in root.list_models(task=TASK) if m.name == "SlicedMLP")
    job = root.create_train_job("digits", TASK, holdout.id, holdout.id, [mlp.id])
    numbers = iter(range(1, 100))

    def seed(params: bytes) -> str:
        with session_scope(sessions) as session:
            sub = session.scalars(select(SubTrainJob).where(SubTrainJob.train_job_id == job.id)).one()
            trial = lifecycle.new_trial(sub.id, next(numbers), KNOBS)
            trial.id = new_id()
            trial.params_key = f"params/{sub.id}/{trial.id}.safetensors"
            blobs.put_bytes(trial.params_key, params)
            session.add(trial)
            session.flush()
            lifecycle.claim_trial(session, trial.id, 1, None)
            lifecycle.record_trial_result(session, trial.id, 1, TrialStatus.COMPLETED, score=0.5,
                                          profile={"rates": [1.0, 0.75, 0.5, 0.25]}, params_key=trial.params_key)
            return trial.id

    with session_scope(sessions) as session:  # the train job's services are the fake launcher's: end it here
        lifecycle.mark_train_job_stopped(session, session.get_one(TrainJob, job.id))
    return "digits", holdout.id, seed


def test_gate_refuses_a_worse_version_promotes_a_better_one_and_records_an_override(
        root: Client, app_with_trials: tuple[str, str, Seeder], trained_params: tuple[Path, bytes, bytes]) -> None:
    app, holdout, seed = app_with_trials
    _val, good, bad = trained_params
    first = root.register_version(app, trial_id=seed(good))
    assert (first.number, first.stage, [h.to_stage for h in first.history]) == (1, "staging", ["staging"])

    # No production yet: the gate measures the candidate alone and lets it through.
    version, verdict = root.set_stage(app, 1, "production", dataset_id=holdout)
    assert version.stage == "production" and verdict is not None and verdict.passed is True
    good_accuracy = verdict.numbers["candidate"]["accuracy"]
    assert len(good_accuracy) == 4 and min(good_accuracy) > 0.2

    # A worse candidate is refused, and the refusal is stored with its numbers.
    worse = root.register_version(app, trial_id=seed(bad))
    with pytest.raises(Conflict) as refused:
        root.set_stage(app, worse.number, "production", dataset_id=holdout, tolerance=0.02)
    assert refused.value.code == "promotion_refused" and "accuracy" in str(refused.value)
    [stored] = root.list_verdicts(app, worse.number)
    assert stored.passed is False and not stored.overridden and stored.against_version_id == first.id
    rows = stored.numbers["rates"]
    assert [r["rate"] for r in rows] == [1.0, 0.75, 0.5, 0.25]
    assert any(not r["accuracy_ok"] for r in rows)
    for row in rows:
        assert row["production_accuracy"] == pytest.approx(good_accuracy[rows.index(row)])
        assert row["accuracy_ok"] == (row["candidate_accuracy"] >= row["production_accuracy"] - 0.02)
    assert root.get_version(app, worse.number).stage == "staging"
    assert root.get_version(app, 1).stage == "production"

    # An admin may override (here without measuring again); the verdict and the history say so.
    version, verdict = root.set_stage(app, worse.number, "production", override=True, reason="hotfix")
    assert version.stage == "production" and verdict is not None
    assert verdict.overridden and verdict.passed is None and verdict.numbers == {}
    assert version.history[-1].reason.startswith("override by admin") and version.history[-1].verdict_id == verdict.id
    archived = root.get_version(app, 1)
    assert archived.stage == "archived" and archived.history[-1].reason == f"superseded by #{worse.number}"

    # A better candidate (the good network again) passes against the worse production one.
    better = root.register_version(app, trial_id=seed(good))
    version, verdict = root.set_stage(app, better.number, "production", dataset_id=holdout, tolerance=0.5)
    assert version.stage == "production" and verdict is not None and verdict.passed and not verdict.overridden
    assert all(r["accuracy_ok"] for r in verdict.numbers["rates"])
    assert [v.stage for v in root.list_versions(app)] == ["production", "archived", "archived"]
    # The history is only ever appended to.
    assert [(h.from_stage, h.to_stage) for h in root.get_version(app, worse.number).history] == [
        (None, "staging"), ("staging", "production"), ("production", "archived")]


def test_registry_errors(root: Client, make_user: Callable, app_with_trials: tuple[str, str, Seeder],
                         trained_params: tuple[Path, bytes, bytes], sessions: sessionmaker[Session]) -> None:
    app, holdout, seed = app_with_trials
    trial_id = seed(trained_params[1])
    root.register_version(app, trial_id=trial_id)
    with pytest.raises(Invalid, match="dataset_id"):
        root.set_stage(app, 1, "production")
    with pytest.raises(Conflict, match="already staging"):
        root.set_stage(app, 1, "staging")
    with pytest.raises(NotFound):
        root.get_version(app, 9)
    with pytest.raises(NotFound):
        root.register_version("other-app", trial_id=trial_id)
    with session_scope(sessions) as session:
        unfinished = lifecycle.new_trial(session.get_one(Trial, trial_id).sub_train_job_id, 50, KNOBS)
        session.add(unfinished)
        session.flush()
        unfinished_id = unfinished.id
    with pytest.raises(Conflict, match="completed"):
        root.register_version(app, trial_id=unfinished_id)
    developer, _user = make_user("MODEL_DEVELOPER")
    with pytest.raises(NotFound):  # not theirs
        developer.get_version(app, 1)
    with pytest.raises(Forbidden, match="admin"):
        developer.set_stage(app, 1, "production", override=True)
    # A non-production move needs no gate, and is recorded too.
    version, verdict = root.set_stage(app, 1, "archived", reason="not needed")
    assert verdict is None and version.history[-1].reason == "not needed"


def ready_like_real_workers(sessions: sessionmaker[Session], settings: Settings, job_id: str, version_id: str,
                            timeout_s: float = 120.0) -> int:
    """What a real inference worker does once it has loaded ``version_id``: a heartbeat on its row and an entry in
    the job's live-worker registry (the fake launcher runs no process). Returns how many were readied."""
    client = make_redis(settings)
    give_up = time.monotonic() + timeout_s
    try:
        while time.monotonic() < give_up:
            with session_scope(sessions) as session:
                rows = [s for s in session.scalars(select(Service).where(Service.inference_job_id == job_id))
                        if worker_version_id(s.command) == version_id]
                for row in rows:
                    row.heartbeat_at = datetime.now(UTC)
                    client.hset(workers_key(job_id), f"worker-{row.id[:8]}", json.dumps({"seen_at": time.time()}))
            if rows:
                return len(rows)
            time.sleep(0.2)
    finally:
        client.close()
    return 0


def test_auto_update_rolls_the_app_to_a_version_the_gate_passes_and_not_to_a_refused_one(
        root: Client, app_with_trials: tuple[str, str, Seeder], trained_params: tuple[Path, bytes, bytes],
        sessions: sessionmaker[Session], admin_settings: Settings) -> None:
    app, holdout, seed = app_with_trials
    _val, good, bad = trained_params
    root.register_version(app, trial_id=seed(good))
    serving = root.create_inference_job(app, 1)  # the best trial, deployed directly (services recorded, not run)
    _version, verdict = root.set_stage(app, 1, "production", dataset_id=holdout)
    assert verdict is not None and verdict.passed and root.list_inference_job_updates(app, 1) == []  # not opted in
    assert root.set_app(app, auto_update=True).auto_update and root.get_app(app).auto_update

    worse = root.register_version(app, trial_id=seed(bad))
    with pytest.raises(Conflict, match="refused"):
        root.set_stage(app, worse.number, "production", dataset_id=holdout, tolerance=0.02)
    assert root.list_inference_job_updates(app, 1) == []  # a refused version does not roll

    better = root.register_version(app, trial_id=seed(good))
    root.set_stage(app, better.number, "production", dataset_id=holdout, tolerance=0.5)
    [update] = root.list_inference_job_updates(app, 1)
    assert (update.inference_job_id, update.to_version_id, update.from_version_id) == (serving.id, better.id, None)
    assert ready_like_real_workers(sessions, admin_settings, serving.id, better.id) == 1
    done = root.wait_inference_job_update(app, 1, update.id, timeout_s=120)
    assert (done.status, done.error) == ("COMPLETED", None)
    assert root.get_inference_job(app, 1).model_version == better.number

    # An admin's override is not the gate's yes: it rolls nothing.
    root.set_stage(app, worse.number, "production", override=True, reason="hotfix")
    assert [u.id for u in root.list_inference_job_updates(app, 1)] == [update.id]
