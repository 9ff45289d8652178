"""Run one trial: build the template with the proposal's knobs, train, evaluate every slice rate, profile,
save the parameters (safe format, atomic write) and the results to the trial row."""

from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from easel.blobstore import BlobStore
from easel.db.enums import LogLevel, TrialStatus
from easel.db.models import Dataset, Model, Service, SubTrainJob, TrainJob, TrialLog
from easel.db.session import session_scope
from easel.faults import InfrastructureError, is_infrastructure_error
from easel.jobs import PROFILE_BATCH_SIZE, Profile, lifecycle
from easel.sandbox import close_template, is_sandboxed, open_template
from easel.settings import Settings
from easel.tuning import Proposal, TuningChannel
from train_worker.context import WorkerContext
from train_worker.templates import load_template_class
from train_worker.warmup import warm_up_torch

log = logging.getLogger("easel.train_worker")



@dataclass
class TrialSetup:
    model: Model
    train_path: str
    val_path: str


class Heartbeat:
    """Renews the trial's lease (and the service's heartbeat) every ``lease_s / 3`` until stopped."""

    def __init__(self, channel: TuningChannel, sessions: sessionmaker[Session], trial_id: str, worker_id: str,
                 service_id: str | None) -> None:
        self.channel, self.sessions = channel, sessions
        self.trial_id, self.worker_id, self.service_id = trial_id, worker_id, service_id
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self.channel.lease_s / 3):
            try:
                if not self.channel.renew_lease(self.trial_id, self.worker_id):
                    log.warning("lost the lease on trial %s", self.trial_id)
                if self.service_id:
                    with session_scope(self.sessions) as session:
                        session.execute(update(Service).where(Service.id == self.service_id)
                                        .values(heartbeat_at=datetime.now(UTC)))
            except Exception as error:  # noqa: BLE001 - an outage must not end the heartbeat; it tries again
                log.warning("heartbeat failed (%s); trying again", error)


class TrialRunner:
    def __init__(self, sessions: sessionmaker[Session], channel: TuningChannel, blobs: BlobStore,
                 worker_id: str, service_id: str | None, settings: Settings | None = None) -> None:
        self.sessions, self.channel, self.blobs = sessions, channel, blobs
        self.worker_id, self.service_id = worker_id, service_id
        self.settings = settings or Settings()
        self._classes: dict[str, type] = {}  # model id -> template class: import template code once

    def prepare(self) -> None:
        """Warm up PyTorch and import the template once, before taking work. A template that fails to import
        is not fatal here: each trial then reports the error as its own."""
        log.info("warmed up PyTorch in %.2f s", warm_up_torch())
        try:
            model = self.setup().model
            if not is_sandboxed(model, self.settings):  # uploaded code never runs in this process
                self._template_class(model)
        except Exception:  # noqa: BLE001 - reported per trial by _train_and_measure
            log.warning("template did not load at start; trials will report why", exc_info=True)

    def _template_class(self, model: Model) -> type:
        template_cls = self._classes.get(model.id)
        if template_cls is None:
            template_cls = self._classes[model.id] = load_template_class(model, self.blobs)
        return template_cls

    def setup(self) -> TrialSetup:
        with session_scope(self.sessions) as session:
            sub = session.get_one(SubTrainJob, self.channel.sub_train_job_id)
            job = session.get_one(TrainJob, sub.train_job_id)
            model = session.get_one(Model, sub.model_id)
            train = session.get_one(Dataset, job.train_dataset_id)
            val = session.get_one(Dataset, job.val_dataset_id)
            return TrialSetup(model, str(self.blobs.local_path(train.blob_key)),
                              str(self.blobs.local_path(val.blob_key)))

    def _claim(self, proposal: Proposal) -> bool:
        """PENDING → RUNNING for this attempt only (a re-issued trial belongs to its newest attempt)."""
        with session_scope(self.sessions) as session:
            return lifecycle.claim_trial(session, proposal.trial_id, proposal.attempt, self.service_id)

    def _write(self, proposal: Proposal, status: TrialStatus, **values: Any) -> bool:
        with session_scope(self.sessions) as session:
            return lifecycle.record_trial_result(session, proposal.trial_id, proposal.attempt, status, **values)

    def run(self, proposal: Proposal) -> TrialStatus | None:
        """Run the proposal; returns its final status, or None if it was not ours to run.

        An infrastructure failure (Redis, PostgreSQL) while it runs raises :class:`InfrastructureError` and
        leaves the row alone: the advisor re-issues the trial as a new attempt once its lease has lapsed.
        """
        if not self.channel.acquire_lease(proposal.trial_id, self.worker_id):
            return None
        try:
            if not self._claim(proposal):
                return None
            self.channel.emit("trial_started", trial=proposal.trial_id, no=proposal.no, worker=self.worker_id)
            with Heartbeat(self.channel, self.sessions, proposal.trial_id, self.worker_id, self.service_id):
                try:
                    results = self._train_and_measure(proposal)
                except Exception as failure:  # noqa: BLE001 - a template failure is the trial's, not the worker's
                    if is_infrastructure_error(failure):
                        raise InfrastructureError(f"trial {proposal.no} attempt {proposal.attempt} lost to an "
                                                  f"infrastructure failure: {failure}") from failure
                    error = traceback.format_exc()
                    self._log(proposal.trial_id, LogLevel.ERROR, f"trial failed:\n{error}")
                    self._write(proposal, status=TrialStatus.ERRORED, error=error)
                    self.channel.emit("trial_errored", trial=proposal.trial_id, no=proposal.no)
                    return TrialStatus.ERRORED
            self._write(proposal, status=TrialStatus.COMPLETED, **results)
            self.channel.emit("trial_done", trial=proposal.trial_id, no=proposal.no, score=results["score"])
            return TrialStatus.COMPLETED
        finally:
            try:
                self.channel.release_lease(proposal.trial_id)
            except redis.RedisError:  # it expires by itself
                log.warning("could not release the lease on trial %s", proposal.trial_id)

    def _train_and_measure(self, proposal: Proposal) -> dict[str, Any]:
        setup = self.setup()
        # Uploaded code runs in a sandbox (one per trial) that sees only the two datasets.
        template = open_template(setup.model, self.blobs, self.settings, proposal.knobs,
                                 files=[setup.train_path, setup.val_path])
        try:
            return self._train(proposal, setup, template)
        finally:
            close_template(template)

    def _train(self, proposal: Proposal, setup: TrialSetup, template: Any) -> dict[str, Any]:
        early_stop = any(template.knobs.get(name) is True for name, knob in setup.model.knob_config.items()
                         if knob.get("type") == "policy" and knob.get("policy") == "EARLY_STOP")
        context = WorkerContext(self.sessions, self.channel, proposal.trial_id, proposal.no, early_stop)
        context.log(f"trial {proposal.no} (attempt {proposal.attempt}) on {self.worker_id}: {proposal.knobs}")
        template.train(setup.train_path, context=context)
        # t_i is measured at the mini-batch size the inference workers plan with.
        measured = template.profile(setup.val_path, list(template.SLICE_RATES), batch_size=PROFILE_BATCH_SIZE)
        profile = Profile.from_json({**measured, "batch_size": PROFILE_BATCH_SIZE,
                                     "stopped_early_at": context.stopped_early_at})
        accuracy = profile.accuracy_by_rate()
        score = float(accuracy.get(1.0, max(accuracy.values())))
        params = template.dump_parameters()
        key = f"params/{self.channel.sub_train_job_id}/{proposal.trial_id}.safetensors"
        self.blobs.put_bytes(key, params)
        context.log(f"trial {proposal.no} done: score {score:.4f}", score=score)
        return {"score": score, "profile": profile.to_json(), "params_key": key}

    def _log(self, trial_id: str, level: LogLevel, message: str) -> None:
        with session_scope(self.sessions) as session:
            session.add(TrialLog(trial_id=trial_id, level=level, message=message))
