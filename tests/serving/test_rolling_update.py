"""Rolling updates on the real serving stack, under a steady load from client threads (``easel.chaos``): an
inference job serving registered version #1 moves to #2 without losing an instance, and a version whose
parameters cannot load leaves the serving version in place with the update ERRORED. Assertions are counts.

#1 and #2 register the same trained trial twice (what differs is the version that answers, which each answer
names); #3's parameters are garbage.
"""

from __future__ import annotations

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from serving_helpers import Deployed
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from easel.blobstore import LocalBlobStore
from easel.chaos import SteadyLoad, process_alive, wait_for
from easel.db.enums import ServiceKind, ServiceStatus, TrialStatus
from easel.db.models import ModelVersion, Service, Trial
from easel.db.session import session_scope
from easel.jobs import lifecycle
from easel.settings import Settings
from sdk import InferenceJobUpdate
from tests.monitoring.monitoring_files import metric_names, panel_exprs, rule_exprs

N = 16  # instances per request


def workers(sessions: sessionmaker[Session], job_id: str) -> list[Service]:
    with session_scope(sessions) as session:
        return list(session.scalars(select(Service).where(
            Service.inference_job_id == job_id, Service.kind == ServiceKind.INFERENCE_WORKER)))


def version_id(sessions: sessionmaker[Session], app: str, number: int) -> str:
    with session_scope(sessions) as session:
        return session.scalars(select(ModelVersion.id).where(ModelVersion.app == app,
                                                             ModelVersion.number == number)).one()


def broken_trial(sessions: sessionmaker[Session], settings: Settings, good_trial_id: str) -> str:
    """A completed trial of the same sub-job whose parameters file is garbage (what a bad upload looks like)."""
    with session_scope(sessions) as session:
        good = session.get_one(Trial, good_trial_id)
        trial = lifecycle.new_trial(good.sub_train_job_id, 999, dict(good.knobs))
        session.add(trial)
        session.flush()
        key = f"params/{good.sub_train_job_id}/broken-{trial.id}.safetensors"
        LocalBlobStore(settings.blob_dir).put_bytes(key, b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
        lifecycle.claim_trial(session, trial.id, 1, None)
        lifecycle.record_trial_result(session, trial.id, 1, TrialStatus.COMPLETED, score=0.0,
                                      profile=dict(good.profile or {}), params_key=key)
        return trial.id


def wait_update(deployed: Deployed, update: InferenceJobUpdate) -> InferenceJobUpdate:
    return deployed.client.wait_inference_job_update(deployed.app, deployed.version, update.id, timeout_s=300)


def test_rolling_update_loses_nothing_and_a_broken_version_leaves_the_old_one_serving(
        trained, sessions: sessionmaker[Session], serving_settings: Settings, serving_admin) -> None:
    client, app, version = trained.client, trained.app, trained.version
    best = client.list_trials(app, version, best=1).items[0]
    assert client.register_version(app, trial_id=best.id).number == 1
    assert client.register_version(app, trial_id=best.id).number == 2
    assert client.register_version(app, trial_id=broken_trial(sessions, serving_settings, best.id)).number == 3
    client.create_inference_job(app, version, workers=2, model_version=1)
    job = client.wait_inference_job(app, version, timeout_s=180)
    assert job.model_version == 1
    key = client.create_api_key(app, version, "rolling-update").key or ""  # the job's keys outlive its updates
    deployed = Deployed(client, app, version, job, trained.x, trained.y, key)
    old = {s.id for s in workers(sessions, job.id)}
    assert len(old) == 2

    batch = np.asarray(trained.x[:N]).tolist()
    with SteadyLoad(lambda: job.predictor_url, batch, deadline_s=2.0, threads=2, pause_s=0.05,
                    api_key=key) as steady:
        wait_for(lambda: steady.snapshot().versions.get("1", 0) >= 4 * N, 120, "version 1 serving")
        update = wait_update(deployed, client.update_inference_job(app, version, 2))
        assert (update.status, update.error) == ("COMPLETED", None)
        served_v2 = steady.snapshot().versions.get("2", 0)
        wait_for(lambda: steady.snapshot().versions.get("2", 0) >= served_v2 + 8 * N, 120, "version 2 serving")

        # A version that cannot load: the update errs with the reason, and #2 keeps serving throughout.
        failed = wait_update(deployed, client.update_inference_job(app, version, 3))
        after_failure = steady.snapshot()
        wait_for(lambda: steady.snapshot().versions.get("2", 0) >= after_failure.versions["2"] + 8 * N, 120,
                 "version 2 still serving after the failed update")
    tally = steady.tally
    assert failed.status == "ERRORED" and "version #3 did not start" in (failed.error or ""), failed
    assert tally.accepted > 0 and tally.unanswered == 0 and tally.lost_in_flight == 0, tally
    assert tally.other_errors == 0 and set(tally.codes) == {"200"}, tally
    assert tally.served + tally.dropped == tally.instances_accepted, tally
    assert set(tally.versions) == {"1", "2"} and tally.versions["1"] > 0 and tally.versions["2"] > 0, tally
    assert after_failure.versions.get("1", 0) == tally.versions["1"], "nothing answered by #1 once #2 took over"

    v2 = version_id(sessions, app, 2)
    rows = workers(sessions, job.id)
    live = [s for s in rows if s.status == ServiceStatus.RUNNING]
    assert len(live) == 2 and all(s.model_version_id == v2 and s.id not in old for s in live), rows
    gone = [s for s in rows if s.id in old]
    assert all(s.status == ServiceStatus.STOPPED and not process_alive(s.pid) for s in gone), gone
    broken = [s for s in rows if s.id not in old and s not in live]
    assert len(broken) == 2 and all(s.status != ServiceStatus.RUNNING for s in broken), broken
    assert client.get_inference_job(app, version).model_version == 2
    answer = client.predict(app, version, batch, deadline_s=2.0, api_key=key)
    assert {p.model_version for p in answer if p.served} == {2}

    # Feedback on that answer: measured effective accuracy is its served-and-correct share, counted here.
    truth = [int(y) for y in trained.y[:N]]
    correct = sum(p.served and str(p.label) == str(t) for p, t in zip(answer, truth, strict=True))
    scored = client.send_feedback(app, version, answer.task_id, truth)
    assert (scored["labelled"], scored["served"], scored["correct"]) == (N, answer.served, correct)
    assert scored["measured_effective_accuracy"] == correct / N

    # Monitoring: every metric the alert rules and the dashboard query is exported by the running stack.
    exported = wait_for(lambda: scraped_names(serving_admin.url, job.id, client.token or ""), 60, "admin's serving sample of the job")
    wanted = set().union(*(metric_names(e) for e in rule_exprs().values()),
                         *(metric_names(e) for exprs in panel_exprs().values() for e in exprs))
    assert wanted and wanted <= exported, sorted(wanted - exported)
    client.stop_inference_job(app, version)


def scraped_names(admin_url: str, job_id: str, admin_token: str) -> set[str] | None:
    """The sample names on admin's /metrics once it has a serving sample of the job (None before)."""
    text = httpx.get(f"{admin_url}/metrics", headers={"Authorization": f"Bearer {admin_token}"}, timeout=10).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    if not any(s.labels.get("inference_job") == job_id for s in samples):
        return None
    return {s.name for s in samples}
