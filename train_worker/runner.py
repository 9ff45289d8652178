"""Run one trial: build the template with the proposal's knobs, train, evaluate every slice rate, profile,
save the parameters (safe format, atomic write) and the results to the trial row.

A template with :meth:`~easel.model.BaseModel.train_unit` trains unit by unit (one epoch per unit): after each
unit its state is checkpointed in the blob store and the trial row's ``progress`` says how many units are
done, so an attempt re-issued after its worker died resumes from the last checkpoint on any worker and loses
at most the unit that was running. Other templates train in one piece with ``train``. Every call into
template code goes through the ``template`` object from :func:`easel.sandbox.open_template` (a sandbox proxy
for uploaded code)."""

from __future__ import annotations

import logging
import os
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
from easel.db.models import Dataset, Model, Service, SubTrainJob, TrainJob, Trial, TrialLog
from easel.db.session import session_scope
from easel.faults import InfrastructureError, is_infrastructure_error
from easel.jobs import PROFILE_BATCH_SIZE, Profile, TrainBudget, lifecycle
from easel.model import BaseModel, UnitSpec
from easel.pruning import Pruner, make_pruner
from easel.sandbox import close_template, is_sandboxed, open_template
from easel.settings import Settings
from easel.tuning import Proposal, TuningChannel, shard_blob_key
from train_worker.checkpoints import CheckpointStore
from train_worker.context import WorkerContext
from train_worker.kept_sandbox import KeptSandbox
from train_worker.templates import load_template_class
from train_worker.warmup import warm_up_torch

log = logging.getLogger("easel.train_worker")



@dataclass
class TrialSetup:
    model: Model
    train_path: str
    val_path: str
    budget: TrainBudget


@dataclass(frozen=True)
class SubJobRows:
    """What a trial's setup reads from PostgreSQL: fixed for the sub-job's life (a job's model, datasets and
    budget never change once it has started), so a runner reads it once, not at every trial or stretch."""

    model: Model
    train_key: str
    val_key: str
    budget: TrainBudget


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


def job_pruner(budget: TrainBudget, settings: Settings) -> Pruner:
    """The job's pruner; ASHA's parameters from the job's budget, else from the settings. The promoting ASHA's
    trials get no pruner (their advisor pauses them at the rungs) unless they were proposed whole — with the
    shared train pool — where the stopping ASHA stands in."""
    name = "asha" if budget.PRUNER == "asha_promote" else budget.PRUNER
    return make_pruner(name, min_epochs=budget.ASHA_MIN_EPOCHS or settings.asha_min_epochs,
                       reduction_factor=budget.ASHA_REDUCTION_FACTOR or settings.asha_reduction_factor)


class TrialRunner:
    def __init__(self, sessions: sessionmaker[Session], channel: TuningChannel, blobs: BlobStore,
                 worker_id: str, service_id: str | None, settings: Settings | None = None) -> None:
        self.sessions, self.channel, self.blobs = sessions, channel, blobs
        self.worker_id, self.service_id = worker_id, service_id
        self.settings = settings or Settings()
        self._classes: dict[str, type] = {}  # model id -> template class: import template code once
        self.checkpoints = CheckpointStore(blobs, channel.sub_train_job_id)
        self.data_bytes_read = 0  # training data this worker's units read (MOP: its shard), for the benchmarks
        self.kept_sandbox = KeptSandbox()
        self._paused: tuple[int, float] | None = None  # (epoch, score) where the stretch run now paused its trial
        self._rows: SubJobRows | None = None

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
        """The trial's model, data paths and budget. The rows are read once per runner (one transaction of five
        reads saved on every stretch of the promoting ASHA and every MOP unit); the paths are asked of the blob
        store each time, which for S3 refreshes a local copy whose object changed."""
        rows = self._rows
        if rows is None:
            with session_scope(self.sessions) as session:
                sub = session.get_one(SubTrainJob, self.channel.sub_train_job_id)
                job = session.get_one(TrainJob, sub.train_job_id)
                train = session.get_one(Dataset, job.train_dataset_id)
                val = session.get_one(Dataset, job.val_dataset_id)
                rows = self._rows = SubJobRows(session.get_one(Model, sub.model_id), train.blob_key, val.blob_key,
                                               TrainBudget.from_stored(job.budget))
        return TrialSetup(rows.model, str(self.blobs.local_path(rows.train_key)),
                          str(self.blobs.local_path(rows.val_key)), rows.budget)

    def _claim(self, proposal: Proposal) -> bool:
        """PENDING → RUNNING for this attempt only (a re-issued trial belongs to its newest attempt); in MOP
        mode a RUNNING trial's next unit is taken by whichever worker it hops to, and a trial paused at a rung
        (promoting ASHA) by whichever worker resumes it."""
        with session_scope(self.sessions) as session:
            if proposal.unit is not None or proposal.until_epoch is not None:
                return lifecycle.hop_trial(session, proposal.trial_id, proposal.attempt, self.service_id)
            return lifecycle.claim_trial(session, proposal.trial_id, proposal.attempt, self.service_id)

    def _write(self, proposal: Proposal, status: TrialStatus, **values: Any) -> bool:
        with session_scope(self.sessions) as session:
            return lifecycle.record_trial_result(session, proposal.trial_id, proposal.attempt, status, **values)

    def run(self, proposal: Proposal) -> TrialStatus | None:
        """Run the proposal; returns its final status (RUNNING when it was one MOP unit of a trial that goes on
        elsewhere, or a stretch that paused the trial at a rung), or None if it was not ours to run.

        An infrastructure failure (Redis, PostgreSQL) while it runs raises :class:`InfrastructureError` and
        leaves the row alone: the advisor re-issues the trial as a new attempt once its lease has lapsed.
        """
        if not self.channel.acquire_lease(proposal.trial_id, self.worker_id):
            return None
        try:
            if not self._claim(proposal):
                return None
            self.channel.emit("trial_started", trial=proposal.trial_id, no=proposal.no, worker=self.worker_id,
                              unit=proposal.unit)
            with Heartbeat(self.channel, self.sessions, proposal.trial_id, self.worker_id, self.service_id):
                try:
                    results = self._train_and_measure(proposal)
                    if results is None:
                        return TrialStatus.RUNNING  # MOP: the trial hops on for its next unit; or it paused
                except Exception as failure:  # noqa: BLE001 - a template failure is the trial's, not the worker's
                    if is_infrastructure_error(failure):
                        raise InfrastructureError(f"trial {proposal.no} attempt {proposal.attempt} lost to an "
                                                  f"infrastructure failure: {failure}") from failure
                    error = traceback.format_exc()
                    self._log(proposal.trial_id, LogLevel.ERROR, f"trial failed:\n{error}")
                    self._write(proposal, status=TrialStatus.ERRORED, error=error)
                    self.channel.emit("trial_errored", trial=proposal.trial_id, no=proposal.no)
                    return TrialStatus.ERRORED
            if self._write(proposal, status=TrialStatus.COMPLETED, **results):
                self.checkpoints.clear(proposal.trial_id)
            self.channel.emit("trial_done", trial=proposal.trial_id, no=proposal.no, score=results["score"])
            return TrialStatus.COMPLETED
        finally:
            try:
                self.channel.release_lease(proposal.trial_id)
                if (paused := self._paused) is not None:
                    # Announced once the lease is free: an advisor woken by it can promote the trial at once.
                    self.channel.emit("trial_paused", trial=proposal.trial_id, no=proposal.no, epoch=paused[0],
                                      score=paused[1], worker=self.worker_id)
            except redis.RedisError:  # the lease expires by itself; the advisor reads the pause from the row
                log.warning("could not release the lease on (or announce the pause of) trial %s", proposal.trial_id)
            self._paused = None

    def _train_and_measure(self, proposal: Proposal) -> dict[str, Any] | None:
        setup = self.setup()
        # Uploaded code runs in a sandbox that sees only its datasets: one per trial, seeing the training and
        # validation sets; in MOP mode one per worker, kept from unit to unit (train_worker/kept_sandbox.py),
        # seeing this worker's shard and the validation set.
        if proposal.unit is None:
            template = open_template(setup.model, self.blobs, self.settings, proposal.knobs,
                                     files=[setup.train_path, setup.val_path])
            try:
                return self._train(proposal, setup, template)
            finally:
                close_template(template)
        files = [self._shard_path(int(proposal.shard or 0)), setup.val_path]
        try:
            template = self.kept_sandbox.open(setup.model, self.blobs, self.settings, proposal.knobs, files)
            return self._train(proposal, setup, template)
        except BaseException:
            self.kept_sandbox.close()  # a unit that failed may have left the child in any state
            raise

    def close(self) -> None:
        """Release what the worker keeps between proposals (MOP mode's sandbox)."""
        self.kept_sandbox.close()

    def _train(self, proposal: Proposal, setup: TrialSetup, template: BaseModel) -> dict[str, Any] | None:
        early_stop = any(proposal.knobs.get(name) is True for name, knob in setup.model.knob_config.items()
                         if knob.get("type") == "policy" and knob.get("policy") == "EARLY_STOP")
        # A stretch of the promoting ASHA (until_epoch) is judged by its advisor at the rung: no pruner here.
        promoting = proposal.until_epoch is not None
        pruner = job_pruner(setup.budget, self.settings) if early_stop and not promoting else None
        context = WorkerContext(self.sessions, self.channel, proposal.trial_id, proposal.no, pruner)
        context.log(f"trial {proposal.no} (attempt {proposal.attempt}) on {self.worker_id}: {proposal.knobs}")
        if template.supports_units() or proposal.unit is not None:
            if not self._train_in_units(proposal, setup, template, context):
                return None
        else:
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

    def _train_in_units(self, proposal: Proposal, setup: TrialSetup, template: BaseModel,
                        context: WorkerContext) -> bool:
        """Unit after unit from the last good checkpoint (one unit per epoch), or in MOP mode the one unit the
        proposal names, on this worker's shard; with ``until_epoch`` (promoting ASHA) up to that epoch, where the
        trial pauses. The pruner is asked after each epoch but the last. Returns True when the trial has finished
        training (last unit done, or pruned)."""
        mop = proposal.unit is not None
        if mop and not template.supports_units():
            raise ValueError(f"MOP mode needs a template with train_unit; {setup.model.model_class} trains in one "
                             "piece (start the job without MOP)")
        sizes = tuple(self.channel.shard_sizes()) if mop else ()
        shards = len(sizes) or 1
        epochs = template.planned_epochs()
        total = epochs * shards
        progress = self._progress(proposal.trial_id)
        done, path = int(progress.get("units_done", 0)), list(progress.get("path", []))
        if mop and proposal.unit != done:
            log.warning("trial %d: unit %s placed but %d are done; dropping it", proposal.no, proposal.unit, done)
            return False
        # All done but no result written (the worker died in between): the last unit runs again, since the
        # template object must hold the trained model to profile it.
        resumption = self.checkpoints.resume(proposal.trial_id, min(done, total - 1))
        start = resumption.units
        if start < done:
            context.log_warning(f"re-running units {start + 1}..{done} of {total}: "
                                + "; ".join(resumption.problems or ["the last unit must run to hold the model"]))
        elif done:
            context.log(f"resuming after unit {done} of {total} from its checkpoint")
        if mop and (start < done or proposal.shard in path[start - start % shards:start]):
            # The units to redo ran on other shards: hand the trial back to the scheduler from there.
            self._record_progress(proposal, {**progress, "units_done": start, "path": path[:start]})
            return False
        pause_after = proposal.until_epoch if proposal.until_epoch is not None and not mop else None
        if pause_after is not None and start >= pause_after:
            return False  # this stretch's rung is reached already (a proposal repeated): stay paused
        rung_scores = dict(progress.get("rung_scores", {}))
        state = resumption.state
        units_run = int(progress.get("units_run", 0))
        stop = start + 1 if mop else (total if pause_after is None else min(total, pause_after))
        for index in range(start, stop):
            shard = int(proposal.shard or 0) if mop else 0
            unit = UnitSpec(index=index, epoch=index // shards + 1, epochs=epochs, shard=shard, shards=shards,
                            shard_sizes=sizes)
            data_path = self._shard_path(shard) if mop else setup.train_path
            self.data_bytes_read += os.path.getsize(data_path)  # the template reads its unit's data file
            self.channel.emit("unit_started", trial=proposal.trial_id, unit=index + 1, worker=self.worker_id,
                              shard=shard)
            state = template.train_unit(data_path, state, unit, context=context)
            written = self.checkpoints.save(proposal.trial_id, index + 1, state)
            units_run += 1
            path = [*path[:index], shard]
            progress = {"units_done": index + 1, "units_total": total, "epoch": unit.epoch, "shard": shard,
                        "worker": self.worker_id, "units_run": units_run, "checkpoint_bytes": written, "path": path}
            pausing = pause_after is not None and index + 1 == pause_after < total
            if pausing:  # the score goes in the same write as the pause: the advisor never sees one without the other
                score = float(template.evaluate(setup.val_path))
                rung_scores[str(unit.epoch)] = score
                progress["paused_at_epoch"] = unit.epoch
            if rung_scores:
                progress["rung_scores"] = rung_scores
            if not self._record_progress(proposal, progress):
                log.warning("trial %d attempt %d is no longer ours; stopping", proposal.no, proposal.attempt)
                return False
            self.channel.emit("unit_done", trial=proposal.trial_id, unit=index + 1, worker=self.worker_id,
                              read_bytes=self.checkpoints.bytes_read + self.data_bytes_read,
                              written_bytes=self.checkpoints.bytes_written)
            if pausing:
                context.log(f"paused at epoch {unit.epoch} (a rung): validation score {score:.4f}", epoch=unit.epoch,
                            score=score)
                self._paused = (unit.epoch, score)
                return False
            if unit.ends_epoch and unit.epoch < epochs:
                if context.pruner is None:  # nobody needs the epoch's score: skip the evaluation
                    if context.job_stopping(unit.epoch):
                        return True
                    continue
                score = float(template.evaluate(setup.val_path))
                context.log(f"epoch {unit.epoch}: validation score {score:.4f}", epoch=unit.epoch, score=score)
                if context.should_stop(unit.epoch, score):
                    return True
        return len(path) >= total

    def _shard_path(self, shard: int) -> str:
        """This worker's shard of the training set (MOP mode): the only training data it reads."""
        return str(self.blobs.local_path(shard_blob_key(self.channel.sub_train_job_id, shard)))

    def _progress(self, trial_id: str) -> dict[str, Any]:
        with session_scope(self.sessions) as session:
            return dict(session.get_one(Trial, trial_id).progress or {})

    def _record_progress(self, proposal: Proposal, progress: dict[str, Any]) -> bool:
        with session_scope(self.sessions) as session:
            return lifecycle.record_trial_progress(session, proposal.trial_id, proposal.attempt, progress)

    def _log(self, trial_id: str, level: LogLevel, message: str) -> None:
        with session_scope(self.sessions) as session:
            session.add(TrialLog(trial_id=trial_id, level=level, message=message))
