"""The advisor service: one per sub-train-job; proposes knobs, hands them to workers, enforces the budget.

Loop: keep every idle worker supplied with one proposal; wake on worker events (XREAD BLOCK) or after
at most ``tick_s`` to check leases; reconcile the trials table (the record); tell the optimiser each
finished trial; stop when the trial count is reached and nothing is outstanding, or when time runs out.
The protocol is described in :mod:`easel.tuning`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from advisor.bidding import make_bid
from advisor.records import FINISHED, TrialRecords
from advisor.samplers import Sampler, make_sampler
from advisor.space import SearchSpace, space_from_knob_config
from easel.backoff import Backoff, Throttle
from easel.blobstore import BlobStore
from easel.db.enums import JobStatus, TrialStatus
from easel.db.models import Trial
from easel.faults import INFRASTRUCTURE_ERRORS
from easel.jobs import TrainBudget
from easel.pool import PoolChannel
from easel.settings import Settings, get_settings
from easel.tuning import Proposal, TuningChannel

log = logging.getLogger("easel.advisor")

T = TypeVar("T")

# A proposal whose worker is lost (it died, or Redis/PostgreSQL failed under it: an infrastructure attempt) is
# re-issued; a template's own failure is recorded by the worker and never retried.
MAX_ATTEMPTS = 3


@dataclass
class Outstanding:
    proposal: Proposal
    unseen_since: float | None = None  # when it was first found neither queued nor leased


@dataclass
class Advisor:
    records: TrialRecords
    channel: TuningChannel
    budget: TrainBudget
    space: SearchSpace
    sampler: Sampler
    tick_s: float = 1.0
    outstanding: dict[str, Outstanding] = field(default_factory=dict)
    created: int = 0
    began: float = field(default_factory=time.monotonic)
    stopping: bool = False
    pool: PoolChannel | None = None  # the shared train pool's channel: bid for workers there
    _last_event: str = "$"
    _backoff: Backoff = field(default_factory=lambda: Backoff(base_s=0.2, cap_s=5.0))
    _throttle: Throttle = field(default_factory=lambda: Throttle(10.0))

    @classmethod
    def for_sub_job(cls, records: TrialRecords, channel: TuningChannel, backend: str = "gp",
                    seed: int | None = None, blobs: BlobStore | None = None,
                    pool: PoolChannel | None = None, settings: Settings | None = None) -> Advisor:
        """The sub-job's advisor, rebuilt from its trials: a :class:`~advisor.promoting.PromotingAdvisor` when the
        job asks for the promoting ASHA (with early stopping; its parameters from the budget, else ``settings``),
        a :class:`~advisor.mop.HopperAdvisor` when it asks for MOP mode (it needs ``blobs`` to shard the training
        set). With ``pool`` its workers come from the shared train pool (not in MOP mode, whose shards need
        workers of their own, nor with the promoting ASHA, whose stretches are proposed to the job's own
        workers: there the workers' stopping ASHA stands in)."""
        _sub, job, model = records.job()
        budget = TrainBudget.from_stored(job.budget)
        space = space_from_knob_config(model.knob_config, {"EARLY_STOP": budget.EARLY_STOP})
        sampler = make_sampler(backend, space, seed=seed)
        if budget.PRUNER == "asha_promote" and budget.EARLY_STOP and pool is None:
            from advisor.promoting import PromotingAdvisor  # it builds on this module
            from advisor.promotions import make_ladder

            settings = settings or get_settings()
            ladder = make_ladder(budget.ASHA_MIN_EPOCHS or settings.asha_min_epochs,
                                 budget.ASHA_REDUCTION_FACTOR or settings.asha_reduction_factor,
                                 budget.ASHA_BRACKETS or settings.asha_brackets)
            advisor: Advisor = PromotingAdvisor(records, channel, budget, space, sampler, ladder=ladder)
        elif budget.MOP and pool is None:
            from advisor.mop import HopperAdvisor  # it builds on this module

            advisor = HopperAdvisor(records, channel, budget, space, sampler, blobs=blobs)
        else:
            advisor = cls(records, channel, budget, space, sampler, pool=pool)
        advisor.rebuild()
        return advisor

    # -- restart safety ----------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Tell the optimiser every finished trial; pick up the unfinished ones; re-queue pending ones."""
        self.channel.clear_queue()
        for trial in self.records.all():
            self.created += 1
            tuned = {name: trial.knobs[name] for name in self.space.names}
            if trial.status in FINISHED:
                score = trial.score if trial.status == TrialStatus.COMPLETED else None
                self.sampler.tell(tuned, score)
                continue
            proposal = Proposal(trial.id, trial.no, trial.knobs, trial.attempts)
            self.outstanding[trial.id] = Outstanding(proposal)
            if trial.status == TrialStatus.PENDING:
                self.channel.propose(proposal)
        if self.created:
            log.info("rebuilt from %d earlier trials (%d unfinished)", self.created, len(self.outstanding))

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> JobStatus:
        self._retrying(self.records.mark_running)
        self._last_event = "$"
        while not self._retrying(self._step):
            pass
        self._retrying(self.channel.stop_workers)
        if (pool := self.pool) is not None:
            self._retrying(lambda: pool.withdraw(self.channel.sub_train_job_id))
        self._retrying(self.records.mark_completed)
        log.info("sub-train-job done: %d trials", self.created)
        return JobStatus.COMPLETED

    def _step(self) -> bool:
        """One pass of the loop; True when the sub-job is done."""
        self.reconcile()
        if self.over_time() and not self.stopping:
            self.stop_proposing("time budget used up")
        if not self.stopping:
            self.supply_idle_workers()
        if self.pool is not None:
            self.publish_bid()
        if self.created >= self.budget.MODEL_TRIAL_COUNT and not self.outstanding:
            return True
        if self.stopping and not self.outstanding:
            return True
        for entry_id, event in self.channel.read_events(self._last_event, block_s=self.tick_s):
            self._last_event = entry_id
            log.debug("event %s", event)
        return False

    def _retrying(self, action: Callable[[], T]) -> T:
        """Run ``action`` until it gets through an infrastructure outage (Redis or PostgreSQL restarting),
        waiting a capped, jittered, growing delay between tries: the advisor outlives the outage instead of
        spending the supervisor's restart budget."""
        while True:
            try:
                result = action()
            except INFRASTRUCTURE_ERRORS as error:
                if self._throttle.ready() is not None:
                    log.warning("infrastructure failure (%s); retrying", error)
                time.sleep(self._backoff.next_delay())
                continue
            self._backoff.reset()
            return result

    def over_time(self) -> bool:
        return time.monotonic() - self.began >= self.budget.seconds

    def stop_proposing(self, reason: str) -> None:
        log.info("stopping: %s", reason)
        self.stopping = True
        queued = {p.trial_id for p in self.channel.queued()}
        self.channel.clear_queue()
        for trial_id in queued:
            self.records.finish(trial_id, TrialStatus.TERMINATED, f"not started: {reason}")
            self.outstanding.pop(trial_id, None)
        self.channel.stop_workers()  # running trials end at their next epoch boundary

    def supply_idle_workers(self) -> None:
        if self.pool is None:
            idle = len(self.channel.workers()) - len(self.outstanding)
        else:
            # Pool workers announce themselves only while they wait for a proposal; one more proposal is kept
            # queued: the next one, whose expected improvement the bid publishes.
            idle = 1 + len(self.channel.workers()) - len(self.channel.queued())
        while idle > 0 and self.created < self.budget.MODEL_TRIAL_COUNT:
            tuned = self.sampler.ask()
            trial = self.records.create(self.space.complete(tuned))
            proposal = Proposal(trial.id, trial.no, trial.knobs, trial.attempts)
            self.outstanding[trial.id] = Outstanding(proposal)
            self.channel.propose(proposal)
            self.created += 1
            idle -= 1
            log.info("proposed trial %d: %s", trial.no, tuned)

    def publish_bid(self) -> None:
        """Tell the pool's allocator what the next queued proposal is expected to gain, and at what cost."""
        assert self.pool is not None
        queued = self.channel.queued()
        upcoming = queued[-1] if queued else None  # workers BRPOP: the oldest queued proposal goes first
        next_knobs = None if upcoming is None else {name: upcoming.knobs[name] for name in self.space.names}
        open_trials = 0 if self.stopping else len(queued) + max(0, self.budget.MODEL_TRIAL_COUNT - self.created)
        self.pool.publish_bid(self.channel.sub_train_job_id,
                              make_bid(self.records.all(), self.sampler, next_knobs, open_trials))

    def reconcile(self) -> None:
        if not self.outstanding:
            return
        # Queue and leases first, rows second: a worker writes its result before releasing the lease, so a
        # trial seen unleased here is seen finished below unless its worker really is gone.
        queued = {p.trial_id for p in self.channel.queued()}
        held = {trial_id for trial_id in self.outstanding if self.channel.lease_holder(trial_id) is not None}
        rows = {t.id: t for t in self.records.all() if t.id in self.outstanding}
        now = time.monotonic()
        for trial_id, item in list(self.outstanding.items()):
            trial = rows.get(trial_id)
            if trial is None:
                self.outstanding.pop(trial_id)
                continue
            if trial.status in FINISHED:
                self._told(trial)
                self.outstanding.pop(trial_id)
                continue
            if trial_id in queued or trial_id in held:
                item.unseen_since = None
                continue
            # Neither queued nor leased: the worker that took it died (or is between pop and lease).
            if item.unseen_since is None:
                item.unseen_since = now
            if now - item.unseen_since >= self.channel.lease_s or trial.status == TrialStatus.RUNNING:
                self._expired(trial, item)

    def _told(self, trial: Trial) -> None:
        tuned = {name: trial.knobs[name] for name in self.space.names}
        score = trial.score if trial.status == TrialStatus.COMPLETED else None
        self.sampler.tell(tuned, score)
        log.info("trial %d %s score=%s", trial.no, trial.status.value, score)

    def _expired(self, trial: Trial, item: Outstanding) -> None:
        # A trial trained unit by unit resumes where it stopped: each unit it got done earns one more attempt.
        if trial.attempts >= MAX_ATTEMPTS + int((trial.progress or {}).get("units_done", 0)):
            reason = f"lease expired on {trial.attempts} attempts: the worker running it was lost"
            self.records.finish(trial.id, TrialStatus.ERRORED, reason)
            self._told(self.records_row(trial.id))
            self.outstanding.pop(trial.id)
            log.warning("trial %d errored: %s", trial.no, reason)
            return
        attempt = self.records.reissue(trial.id, trial.attempts)
        if attempt is None:
            return  # it finished meanwhile: the next reconcile tells the optimiser
        proposal = Proposal(trial.id, trial.no, trial.knobs, attempt)
        item.proposal, item.unseen_since = proposal, None
        self.channel.propose(proposal)
        log.warning("trial %d: worker lost, re-issued (attempt %d)", trial.no, attempt)

    def records_row(self, trial_id: str) -> Trial:
        return next(t for t in self.records.all() if t.id == trial_id)
