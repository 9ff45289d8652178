"""The promoting ASHA through the real advisor and a real train worker (threads of this process, over the
session's PostgreSQL, Redis and blob folder): trials pause at their rungs, the best are resumed from their
checkpoints (the Counter template asserts it gets the state of the units done), the order of stretches is the
one the ladder gives on the recorded rung scores, and every trial ends accounted for: completed, or pruned
where it paused. An advisor that restarts rebuilds its ladder from the trials table."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from hopping_jobs import add_trial, drop_job, make_sub_job
from sqlalchemy import select
from unit_template import Counter

from advisor.promoting import PromotingAdvisor
from advisor.promotions import BracketedLadder, Promotion, make_ladder
from advisor.records import TrialRecords
from advisor.service import Advisor
from easel.blobstore import LocalBlobStore
from easel.db.enums import TrialStatus
from easel.db.models import Trial, TrialLog
from easel.db.session import session_scope
from easel.jobs import lifecycle
from easel.redis_client import make_redis
from easel.tuning import TuningChannel
from train_worker.runner import TrialRunner
from train_worker.service import serve

TRIALS, EPOCHS = 5, 4  # Counter trains 4 epochs; with η = 2 the rungs are at epochs 1 and 2, then the end
KNOBS = {"epochs": EPOCHS, "unit_s": 0.2, "early_stop": True}
BUDGET = {"MODEL_TRIAL_COUNT": TRIALS, "PRUNER": "asha_promote", "ASHA_MIN_EPOCHS": 1, "ASHA_REDUCTION_FACTOR": 2,
          "EARLY_STOP": True, "WORKERS": 1}


def _in_thread(target: Callable[[], object], failures: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            failures.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _stretches(events: list[dict]) -> list[tuple[str, int]]:
    """(trial, first epoch of the stretch) as the worker ran them: a stretch ends where its trial pauses."""
    out, running = [], None
    for event in events:
        if event["type"] == "unit_started" and event["trial"] != running:
            running = event["trial"]
            out.append((running, event["unit"]))
        elif event["type"] == "trial_paused":
            running = None
    return out


def _expected_stretches(trials: list[Trial], paused: dict[tuple[str, int], float],
                        brackets: int) -> list[tuple[str, int]]:
    """(trial, first epoch of the stretch) in the order one worker gets them, worked out by the ladder alone
    from the rung scores the trials recorded."""
    ladder, created, order = make_ladder(1, 2, brackets), 0, []
    while True:
        promotion = ladder.promote()
        if promotion is not None:
            trial, start, target = promotion.trial, promotion.from_epoch, promotion.to_epoch
        elif created < len(trials):
            trial, start = trials[created].id, 0
            target = ladder.admit(trial, trials[created].no)
            created += 1
        else:
            return order
        order.append((trial, start + 1))
        if target < EPOCHS:
            ladder.reached(trial, target, paused[(trial, target)])


# brackets = 2: asynchronous Hyperband, trials alternating between ASHA from epoch 1 and ASHA from epoch 2
@pytest.mark.parametrize("brackets", [1, 2])
def test_trials_pause_at_rungs_and_the_best_resume_from_their_checkpoints(settings, sessions,  # noqa: ANN001
                                                                         brackets: int) -> None:
    sub_id = make_sub_job(settings, sessions, template=Counter, dataset=b"unused", builtin=True,
                          budget={**BUDGET, "ASHA_BRACKETS": brackets})
    advisor_channel, worker_channel = (TuningChannel(make_redis(settings, decode_responses=True), sub_id, lease_s=3)
                                       for _ in range(2))
    advisor = Advisor.for_sub_job(TrialRecords(sessions, sub_id), advisor_channel, "random", seed=0,
                                  settings=settings)
    assert isinstance(advisor, PromotingAdvisor)
    assert isinstance(advisor.ladder, BracketedLadder) == (brackets > 1)
    runner = TrialRunner(sessions, worker_channel, LocalBlobStore(settings.blob_dir), "worker-a", None, settings)
    failures: list[BaseException] = []
    try:
        worker = _in_thread(lambda: serve(worker_channel, runner, idle_timeout_s=120), failures)
        advising = _in_thread(advisor.run, failures)
        advising.join(timeout=240)
        worker.join(timeout=30)
        assert not advising.is_alive() and not worker.is_alive(), "the sub-job ended and its worker was stopped"
        assert not failures, failures
        assert advisor.sampler.told == TRIALS, "the optimiser hears of each config once (its first rung's score)"
        events = [e for _id, e in advisor_channel.read_events("0", block_s=0.1, count=10_000)]
        with session_scope(sessions) as session:
            trials = list(session.scalars(select(Trial).where(Trial.sub_train_job_id == sub_id).order_by(Trial.no)))
            resumed_logs = {t.id: [m for m in session.scalars(select(TrialLog.message)
                                                              .where(TrialLog.trial_id == t.id))
                                   if m.startswith("resuming after unit")] for t in trials}
    finally:
        advisor_channel.reset()
        drop_job(sessions, sub_id)

    assert len(trials) == TRIALS
    for trial in trials:  # every trial accounted for: completed to its end, or pruned where it paused
        progress = trial.progress
        if trial.status == TrialStatus.COMPLETED:
            assert progress["units_done"] == EPOCHS and trial.score is not None
        else:
            assert trial.status == TrialStatus.TERMINATED, (trial.no, trial.status, trial.error)
            assert progress["paused_at_epoch"] == progress["units_done"] in (1, 2)
            assert trial.error.startswith(f"pruned by ASHA (promoting): paused at epoch {progress['units_done']} "
                                          "and never promoted"), trial.error
    started = [(e["trial"], e["unit"]) for e in events if e["type"] == "unit_started"]
    assert len(started) == len(set(started)), "no epoch trained twice: every resume starts at its checkpoint"
    assert len(started) == sum(t.progress["units_done"] for t in trials)
    stretches = _stretches(events)
    paused = {(e["trial"], e["epoch"]): e["score"] for e in events if e["type"] == "trial_paused"}
    assert stretches == _expected_stretches(trials, paused, brackets)
    resumed = [(trial, unit) for trial, unit in stretches if unit > 1]
    assert resumed, "the best paused trial was promoted"
    for trial, unit in resumed:
        assert f"resuming after unit {unit - 1} of {EPOCHS} from its checkpoint" in resumed_logs[trial]
    assert any(t.status == TrialStatus.TERMINATED for t in trials), "some trial was never promoted"


def _paused_trial(sessions, sub_id: str, no: int, progress: dict) -> str:  # noqa: ANN001
    trial_id = add_trial(sessions, sub_id, no, {**KNOBS, "x": no / 10})
    with session_scope(sessions) as session:
        assert lifecycle.claim_trial(session, trial_id, 1, None)
        assert lifecycle.record_trial_progress(session, trial_id, 1, {"units_done": progress["units_done"],
                                                                       "units_total": EPOCHS, **progress})
    return trial_id


def test_a_restarted_advisor_rebuilds_its_ladder_reissues_a_lost_stretch_and_ends_paused_trials(settings, sessions) -> None:  # noqa: ANN001
    sub_id = make_sub_job(settings, sessions, template=Counter, dataset=b"unused", builtin=True, budget=BUDGET)
    channel = TuningChannel(make_redis(settings, decode_responses=True), sub_id, lease_s=3)
    try:
        good = _paused_trial(sessions, sub_id, 1, {"units_done": 1, "paused_at_epoch": 1, "rung_scores": {"1": 0.9}})
        weak = _paused_trial(sessions, sub_id, 2, {"units_done": 1, "paused_at_epoch": 1, "rung_scores": {"1": 0.1}})
        # went on from epoch 1 and is training towards epoch 2 (its worker holds no lease: it is re-issued later)
        going = _paused_trial(sessions, sub_id, 3, {"units_done": 1, "rung_scores": {"1": 0.8}})
        advisor = Advisor.for_sub_job(TrialRecords(sessions, sub_id), channel, "random", seed=0, settings=settings)
        assert isinstance(advisor, PromotingAdvisor) and advisor.created == 3
        assert set(advisor.stretches) == {going} and advisor.stretches[going].target == 2
        # rung 1 holds 3 (the best ⌊3/2⌋ = 1 goes on): 0.9 has not gone on yet
        assert advisor.ladder.candidate() == Promotion(good, 1, 2)
        assert [advisor.ladder.paused_at(t) for t in (good, weak, going)] == [1, 1, None], "going went on already"
        # Nobody holds going's lease: once lease_s has passed unseen, its stretch is re-issued as attempt 2.
        deadline = time.monotonic() + 60
        while not advisor.channel.queued() and time.monotonic() < deadline:
            advisor.reconcile()
            advisor.channel.read_events("$", block_s=0.5)  # the advisor's own wait between passes
        (reissued,) = advisor.channel.queued()
        assert (reissued.trial_id, reissued.attempt, reissued.until_epoch) == (going, 2, 2)
        advisor.stop_proposing("time budget used up")
        rows = {t.id: t for t in TrialRecords(sessions, sub_id).all()}
    finally:
        channel.reset()
        drop_job(sessions, sub_id)
    for paused in (good, weak):
        assert rows[paused].status == TrialStatus.TERMINATED
        assert rows[paused].error == ("pruned by ASHA (promoting): paused at epoch 1 and never promoted; "
                                      "time budget used up")
    assert rows[going].status == TrialStatus.TERMINATED
    assert rows[going].error == "stopped after epoch 1, before its next stretch started; time budget used up"


def test_a_restarted_advisor_puts_every_trial_back_in_its_hyperband_bracket(settings, sessions) -> None:  # noqa: ANN001
    budget = {**BUDGET, "ASHA_BRACKETS": 2, "MODEL_TRIAL_COUNT": 6}  # shares 2, 2: brackets 0, 1, 0, 1, …
    sub_id = make_sub_job(settings, sessions, template=Counter, dataset=b"unused", builtin=True, budget=budget)
    channel = TuningChannel(make_redis(settings, decode_responses=True), sub_id, lease_s=3)
    try:
        # bracket 0 (rungs at epochs 1, 2, 4): paused at 1; bracket 1 (rungs at 2, 4): paused at 2
        first = _paused_trial(sessions, sub_id, 1, {"units_done": 1, "paused_at_epoch": 1, "rung_scores": {"1": 0.5}})
        second = _paused_trial(sessions, sub_id, 2, {"units_done": 2, "paused_at_epoch": 2, "rung_scores": {"2": 0.6}})
        # went on from their first rungs: bracket 0's next rung after epoch 1 is 2, bracket 1's after 2 is 4
        third = _paused_trial(sessions, sub_id, 3, {"units_done": 1, "rung_scores": {"1": 0.7}})
        fourth = _paused_trial(sessions, sub_id, 4, {"units_done": 2, "rung_scores": {"2": 0.8}})
        advisor = Advisor.for_sub_job(TrialRecords(sessions, sub_id), channel, "random", seed=0, settings=settings)
        assert isinstance(advisor, PromotingAdvisor) and isinstance(advisor.ladder, BracketedLadder)
        assert [advisor.ladder.bracket_of(t) for t in (first, second, third, fourth)] == [0, 1, 0, 1]
        assert {t: s.target for t, s in advisor.stretches.items()} == {third: 2, fourth: 4}
        assert [advisor.ladder.paused_at(t) for t in (first, second)] == [1, 2]
        assert advisor.ladder.candidate() is None, "each rung holds 2 trials and its best half went on"
        # Two workers free: the next new trials are numbers 5 (bracket 0, up to epoch 1) and 6 (bracket 1, up to 2).
        for worker in ("w1", "w2", "w3", "w4"):
            channel.announce(worker, {})
        advisor.supply_idle_workers()
        assert sorted((p.no, p.until_epoch) for p in channel.queued()) == [(5, 1), (6, 2)]
    finally:
        channel.reset()
        drop_job(sessions, sub_id)
