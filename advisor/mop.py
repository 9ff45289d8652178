"""The advisor in MOP mode (model hopper parallelism): shard the training set, then place units, not trials.

The training set is shuffled once and cut into one shard per worker (:mod:`easel.datasets.sharding`), stored
in the blob store; each worker owns one shard and reads only it. Up to one trial per shard trains at once;
each runs one unit (one pass over one shard) at a time and visits every shard once per epoch, placed by
:func:`advisor.hopper.place_units` (Cerebro's randomized scheduler). The trials table is the record: a
trial's ``progress.path`` lists the shard of each unit done, so a restarted advisor places from there.

A unit whose worker died (neither queued nor leased, and no progress, for ``lease_s``) is lost; the trial is
re-issued as a new attempt (PENDING) and its next unit resumes from the last checkpoint on whichever worker
owns the right shard. A trial errs only when attempts are lost without progress: its budget of attempts grows
with the units it has done.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field

from advisor.hopper import HopState, place_units
from advisor.records import FINISHED
from advisor.service import MAX_ATTEMPTS, Advisor, Outstanding
from easel.blobstore import BlobStore
from easel.datasets.sharding import shard_file, to_npz_bytes
from easel.db.enums import JobStatus, TrialStatus
from easel.db.models import Trial
from easel.tuning import Proposal, shard_blob_key

log = logging.getLogger("easel.advisor")

SHARD_SEED = 0


@dataclass
class Placement:
    worker: str
    unit: int
    since: float = field(default_factory=time.monotonic)
    unseen_since: float | None = None


@dataclass
class HopperAdvisor(Advisor):
    blobs: BlobStore | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    placed: dict[str, Placement] = field(default_factory=dict)  # trial id -> its unit in flight

    # -- shards --------------------------------------------------------------------------------------
    def prepare_shards(self) -> list[int]:
        """Cut the training set into one shard per worker (once per sub-job; kept in Redis and the blobs)."""
        sizes = self.channel.shard_sizes()
        if sizes:
            return sizes
        if self.blobs is None:
            raise ValueError("MOP mode needs the blob store to shard the training set")
        key = self.records.train_dataset_key()
        parts = shard_file(self.blobs.local_path(key), self.budget.WORKERS, SHARD_SEED)
        for k, part in enumerate(parts):
            self.blobs.put_bytes(shard_blob_key(self.channel.sub_train_job_id, k), to_npz_bytes(part))
        sizes = [len(part.y) for part in parts]
        self.channel.set_shards(sizes)  # last: workers wait for it before owning a shard
        log.info("MOP: training set cut into %d shards of %s samples", len(sizes), sizes)
        return sizes

    # -- restart safety ----------------------------------------------------------------------------
    def rebuild(self) -> None:
        """As the base advisor, but nothing goes on the proposals queue: units are placed from the rows."""
        self.channel.clear_queue()
        for worker in self.channel.workers():
            self.channel.clear_units(worker)
        for trial in self.records.all():
            self.created += 1
            if trial.status in FINISHED:
                self._told(trial)
                continue
            self.outstanding[trial.id] = Outstanding(Proposal(trial.id, trial.no, trial.knobs, trial.attempts))

    def run(self) -> JobStatus:
        self._retrying(self.prepare_shards)
        return super().run()

    # -- placing units -----------------------------------------------------------------------------
    def supply_idle_workers(self) -> None:
        owners = self.channel.shard_owners()
        while len(self.outstanding) < len(owners) and self.created < self.budget.MODEL_TRIAL_COUNT:
            tuned = self.sampler.ask()
            trial = self.records.create(self.space.complete(tuned))
            self.outstanding[trial.id] = Outstanding(Proposal(trial.id, trial.no, trial.knobs, trial.attempts))
            self.created += 1
            log.info("proposed trial %d: %s", trial.no, tuned)
        busy_workers = {p.worker for p in self.placed.values()}
        idle = {worker: shard for shard, worker in owners.items() if worker not in busy_workers}
        if not idle or not self.outstanding:
            return
        shards = len(self.channel.shard_sizes())
        rows = {t.id: t for t in self.records.all() if t.id in self.outstanding}
        states = []
        for trial_id, row in rows.items():
            if row.status in FINISHED:
                continue
            done, path = _done_and_path(row)
            states.append(HopState(trial_id, done, frozenset(path[done - done % shards:done]),
                                   busy=trial_id in self.placed))
        for trial_id, worker, shard in place_units(idle, states, self.rng):
            row = rows[trial_id]
            done, _path = _done_and_path(row)
            proposal = Proposal(row.id, row.no, row.knobs, row.attempts, unit=done, shard=shard)
            self.outstanding[trial_id].proposal = proposal
            self.placed[trial_id] = Placement(worker, done)
            self.channel.place_unit(worker, proposal)
            log.debug("trial %d unit %d -> %s (shard %d)", row.no, done + 1, worker, shard)

    def reconcile(self) -> None:
        if not self.outstanding:
            return
        owners = set(self.channel.shard_owners().values())
        queued = {p.trial_id for worker in {pl.worker for pl in self.placed.values()}
                  for p in self.channel.placed_units(worker)}
        held = {trial_id for trial_id in self.placed if self.channel.lease_holder(trial_id) is not None}
        rows = {t.id: t for t in self.records.all() if t.id in self.outstanding}
        now = time.monotonic()
        for trial_id, item in list(self.outstanding.items()):
            trial = rows.get(trial_id)
            if trial is None or trial.status in FINISHED:
                if trial is not None:
                    self._told(trial)
                self.outstanding.pop(trial_id)
                self.placed.pop(trial_id, None)
                continue
            placement = self.placed.get(trial_id)
            if placement is None:
                continue
            done, _path = _done_and_path(trial)
            if done != placement.unit and trial_id not in held:
                self.placed.pop(trial_id)  # the unit ended (or was handed back): place the next one
                continue
            if trial_id in held or (trial_id in queued and placement.worker in owners):
                placement.unseen_since = None
                continue
            if trial_id in queued:  # queued on a worker that lost its shard (it died): take it back
                self.channel.clear_units(placement.worker)
                self.placed.pop(trial_id)
                continue
            if placement.unseen_since is None:
                placement.unseen_since = now
            if now - placement.unseen_since >= self.channel.lease_s:
                self.placed.pop(trial_id)
                if trial.status == TrialStatus.RUNNING:
                    self._unit_lost(trial, item)

    def _unit_lost(self, trial: Trial, item: Outstanding) -> None:
        done, _path = _done_and_path(trial)
        if trial.attempts >= MAX_ATTEMPTS + done:
            reason = f"lease expired on {trial.attempts} attempts: the workers running it were lost"
            self.records.finish(trial.id, TrialStatus.ERRORED, reason)
            self.outstanding.pop(trial.id)
            log.warning("trial %d errored: %s", trial.no, reason)
            return
        attempt = self.records.reissue(trial.id, trial.attempts)
        if attempt is not None:
            item.proposal = Proposal(trial.id, trial.no, trial.knobs, attempt)
            log.warning("trial %d: unit %d lost with its worker; attempt %d resumes from the checkpoint",
                        trial.no, done + 1, attempt)

    def stop_proposing(self, reason: str) -> None:
        """Trials between units end now (TERMINATED); a unit running ends its trial at the epoch's end."""
        log.info("stopping: %s", reason)
        self.stopping = True
        for worker in {p.worker for p in self.placed.values()}:
            self.channel.clear_units(worker)
        for trial_id in list(self.outstanding):
            if self.channel.lease_holder(trial_id) is None:
                self.records.finish(trial_id, TrialStatus.TERMINATED, f"stopped between units: {reason}")
                self.outstanding.pop(trial_id)
                self.placed.pop(trial_id, None)
        self.channel.stop_workers()


def _done_and_path(trial: Trial) -> tuple[int, list[int]]:
    progress = trial.progress or {}
    return int(progress.get("units_done", 0)), [int(s) for s in progress.get("path", [])]


__all__ = ["HopperAdvisor"]
