"""The advisor with the promoting ASHA (budget ``PRUNER`` ``"asha_promote"``; Li et al., MLSys 2020).

Every trial trains in *stretches*: a proposal carries ``until_epoch`` (a rung, ``min_epochs · ηᵏ``), the worker
trains the trial from its checkpoint up to that epoch, writes the epoch's score into ``progress.rung_scores``
and pauses it (the row stays RUNNING with ``progress.paused_at_epoch``; the lease is released). Whenever a
worker is free the advisor asks :class:`~advisor.promotions.PromotionLadder` what it should do: resume the best
paused trial of the highest rung whose top ``⌊n/η⌋`` holds one not yet promoted, up to the next rung, or else
start a new BO proposal up to the first rung. With the budget's ``ASHA_BRACKETS`` > 1 the ladder is asynchronous
Hyperband's (:class:`~advisor.promotions.BracketedLadder`): a new trial's first rung is its bracket's, which the
trial's number decides. A trial that reaches its last epoch completes as usual. When no new trial may start,
nothing is in flight and nothing can be promoted — or when the sub-job stops — every trial still paused ends
TERMINATED, its error saying where it was pruned and with which score.

The optimiser is told each configuration once, at the fidelity every configuration reaches: its score at the
first rung (or its final result when it ends before pausing there). Telling it the final scores of the few
promoted trials as well would mix fidelities in one model of the score. (With brackets the first rung differs
from bracket to bracket, so the optimiser does hear mixed fidelities: a known limit.)

The trials table is the record: a restarted advisor rebuilds the ladder from the rows' ``rung_scores`` and
``units_done`` (a trial trained past a rung went on from it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from advisor.promotions import BracketedLadder, PromotionLadder
from advisor.records import FINISHED
from advisor.service import MAX_ATTEMPTS, Advisor, Outstanding
from easel.db.enums import TrialStatus
from easel.db.models import Trial
from easel.tuning import Proposal

log = logging.getLogger("easel.advisor")


@dataclass
class Stretch:
    """A trial's stretch in flight: queued or running up to ``target`` (an epoch)."""

    target: int
    unseen_since: float | None = None  # when it was first found neither queued nor leased


@dataclass
class PromotingAdvisor(Advisor):
    ladder: PromotionLadder | BracketedLadder = field(default_factory=PromotionLadder)
    stretches: dict[str, Stretch] = field(default_factory=dict)  # trial id -> its stretch in flight
    informed: set[str] = field(default_factory=set)  # trials the optimiser has been told of (once each)

    # -- restart safety ----------------------------------------------------------------------------
    def rebuild(self) -> None:
        """The ladder, the optimiser and the stretches in flight, from the trials table."""
        self.channel.clear_queue()
        for trial in self.records.all():
            self.created += 1
            done, paused_at, scores = _progress(trial)
            finished = trial.status in FINISHED
            # A worker holding the lease of a trial paused in the row has just resumed it (promoted).
            waiting = paused_at is not None and not finished and self.channel.lease_holder(trial.id) is None
            self.ladder.admit(trial.id, trial.no)
            for epoch, score in sorted(scores.items()):
                self.ladder.reached(trial.id, epoch, score)
                if not (waiting and epoch == paused_at):  # it went on from every other rung it reached
                    self.ladder.mark_promoted(trial.id, epoch)
            self._inform(trial)
            if finished:
                continue
            self.outstanding[trial.id] = Outstanding(Proposal(trial.id, trial.no, trial.knobs, trial.attempts))
            if waiting:
                continue  # paused at a rung: waits for a promotion
            target = self.ladder.next_rung(trial.id, done)
            self.stretches[trial.id] = Stretch(target)
            if trial.status == TrialStatus.PENDING:
                self._propose(trial.id, target, done)
        log.info("promoting ASHA rebuilt from %d trials (%d in flight)", self.created, len(self.stretches))

    # -- the loop ----------------------------------------------------------------------------------
    def supply_idle_workers(self) -> None:
        idle = len(self.channel.workers()) - len(self.stretches)
        while idle > 0:
            promotion = self.ladder.promote()
            if promotion is not None:
                self._propose(promotion.trial, promotion.to_epoch, promotion.from_epoch)
                log.info("promoting trial %s: epoch %d -> %d", self.outstanding[promotion.trial].proposal.no,
                         promotion.from_epoch, promotion.to_epoch)
            elif self.created < self.budget.MODEL_TRIAL_COUNT:
                tuned = self.sampler.ask()
                trial = self.records.create(self.space.complete(tuned))
                self.outstanding[trial.id] = Outstanding(Proposal(trial.id, trial.no, trial.knobs, trial.attempts))
                self.created += 1
                self._propose(trial.id, self.ladder.admit(trial.id, trial.no), 0)
                log.info("proposed trial %d: %s", trial.no, tuned)
            else:
                return
            idle -= 1

    def _propose(self, trial_id: str, target: int, done: int) -> None:
        """Queue the stretch of ``trial_id`` from epoch ``done`` up to ``target``; the event ``stretch_proposed``
        records the decision (the benchmark checks the advisor's decisions against the ladder's with it)."""
        item = self.outstanding[trial_id]
        item.proposal = Proposal(trial_id, item.proposal.no, item.proposal.knobs, item.proposal.attempt,
                                 until_epoch=target)
        self.stretches[trial_id] = Stretch(target)
        self.channel.propose(item.proposal)
        self.channel.emit("stretch_proposed", trial=trial_id, no=item.proposal.no, from_epoch=done,
                          until_epoch=target, attempt=item.proposal.attempt)

    def reconcile(self) -> None:
        if self.outstanding:
            self._follow_stretches()
        nothing_left = (self.created >= self.budget.MODEL_TRIAL_COUNT and not self.stretches
                        and self.ladder.candidate() is None)
        if nothing_left or self.stopping:
            self._prune_paused("the budget's trials are used up" if nothing_left else "the sub-job is stopping")

    def _follow_stretches(self) -> None:
        # Queue and leases first, rows second (as the base advisor): a worker writes the pause before releasing
        # its lease, so a stretch seen unleased here is seen paused below unless its worker really is gone.
        queued = {p.trial_id for p in self.channel.queued()}
        held = {trial_id for trial_id in self.stretches if self.channel.lease_holder(trial_id) is not None}
        rows = {t.id: t for t in self.records.all() if t.id in self.outstanding}
        now = time.monotonic()
        for trial_id, item in list(self.outstanding.items()):
            trial = rows.get(trial_id)
            if trial is None or trial.status in FINISHED:
                if trial is not None:
                    self._inform(trial)
                    log.info("trial %d %s score=%s", trial.no, trial.status.value, trial.score)
                self.outstanding.pop(trial_id)
                self.stretches.pop(trial_id, None)
                continue
            stretch = self.stretches.get(trial_id)
            if stretch is None:
                continue  # paused at a rung, waiting for a promotion
            done, paused_at, scores = _progress(trial)
            if paused_at == stretch.target == done and trial_id not in held:
                self.ladder.reached(trial_id, paused_at, scores[paused_at])
                self._inform(trial)
                self.stretches.pop(trial_id)
                log.info("trial %d paused at epoch %d: score %.4f", trial.no, paused_at, scores[paused_at])
                continue
            if trial_id in queued or trial_id in held:
                stretch.unseen_since = None
                continue
            # Neither queued nor leased nor paused where it should: its worker died (or is between pop and lease).
            if stretch.unseen_since is None:
                stretch.unseen_since = now
            if now - stretch.unseen_since >= self.channel.lease_s:
                self._stretch_lost(trial, item, stretch)

    def _stretch_lost(self, trial: Trial, item: Outstanding, stretch: Stretch) -> None:
        done, _paused_at, _scores = _progress(trial)
        # Each unit done earns one more attempt: a stretch resumes from the last checkpoint.
        if trial.attempts >= MAX_ATTEMPTS + done:
            reason = f"lease expired on {trial.attempts} attempts: the workers running it were lost"
            self.records.finish(trial.id, TrialStatus.ERRORED, reason)
            self.outstanding.pop(trial.id)
            self.stretches.pop(trial.id)
            self._inform(trial, ended=True)
            log.warning("trial %d errored: %s", trial.no, reason)
            return
        attempt = self.records.reissue(trial.id, trial.attempts)
        if attempt is None:
            return  # it finished meanwhile: the next reconcile sees it
        item.proposal = Proposal(trial.id, trial.no, trial.knobs, attempt)
        self._propose(trial.id, stretch.target, done)
        log.warning("trial %d: worker lost after %d epochs; attempt %d resumes up to epoch %d", trial.no, done,
                    attempt, stretch.target)

    def _prune_paused(self, reason: str) -> None:
        """End every unfinished trial with no stretch in flight — paused at a rung, or (the sub-job stopping) its
        stretch taken off the queue: TERMINATED, the reason saying where it stopped."""
        paused = [trial_id for trial_id in self.outstanding if trial_id not in self.stretches]
        done = {t.id: _progress(t)[0] for t in self.records.all() if t.id in paused} if paused else {}
        for trial_id in paused:
            epoch = self.ladder.paused_at(trial_id)
            if epoch is not None:
                detail = f"pruned by ASHA (promoting): paused at epoch {epoch} and never promoted"
            elif done.get(trial_id):
                detail = f"stopped after epoch {done[trial_id]}, before its next stretch started"
            else:
                detail = "not started"
            self.records.finish(trial_id, TrialStatus.TERMINATED, f"{detail}; {reason}")
            self.outstanding.pop(trial_id)
        if paused:
            log.info("pruned %d paused trials: %s", len(paused), reason)

    def stop_proposing(self, reason: str) -> None:
        """Queued stretches and paused trials end now (TERMINATED); a running stretch ends its trial at the next
        epoch's end (the worker sees the stop and completes it)."""
        log.info("stopping: %s", reason)
        self.stopping = True
        queued = {p.trial_id for p in self.channel.queued()}
        self.channel.clear_queue()
        for trial_id in queued:
            self.stretches.pop(trial_id, None)
        self._prune_paused(reason)
        self.channel.stop_workers()

    def _inform(self, trial: Trial, ended: bool = False) -> None:
        """Tell the optimiser of this configuration once: its first rung's score, else its final result
        (``ended``: the row is stale, the trial has just been ended without a score)."""
        if trial.id in self.informed:
            return
        _done, _paused_at, scores = _progress(trial)
        if scores:
            score: float | None = scores[min(scores)]
        elif trial.status in FINISHED or ended:
            score = trial.score if trial.status == TrialStatus.COMPLETED else None
        else:
            return
        self.informed.add(trial.id)
        self.sampler.tell({name: trial.knobs[name] for name in self.space.names}, score)


def _progress(trial: Trial) -> tuple[int, int | None, dict[int, float]]:
    """Units (epochs) done, the epoch it is paused at (None: not paused), and its scores at the rungs reached."""
    progress = trial.progress or {}
    paused_at = progress.get("paused_at_epoch")
    scores = {int(epoch): float(score) for epoch, score in (progress.get("rung_scores") or {}).items()}
    return int(progress.get("units_done", 0)), None if paused_at is None else int(paused_at), scores


__all__ = ["PromotingAdvisor", "Stretch"]
