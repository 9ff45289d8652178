"""The TrainContext a worker hands to a template: logs go to trial_logs and the events stream; the
``should_stop`` answer applies the job's pruner (median rule, ASHA; none without EARLY_STOP) and the
sub-job's stop signal."""

from __future__ import annotations

import math

from sqlalchemy.orm import Session, sessionmaker

from easel.db.enums import LogLevel
from easel.db.models import TrialLog
from easel.db.session import session_scope
from easel.model import TrainContext
from easel.pruning import Pruner
from easel.tuning import TuningChannel


def _json_number(value: float) -> float | None:
    """A metric as JSON stores it: a diverged trial's NaN or infinite loss becomes null (JSON has no NaN, and
    PostgreSQL would refuse the whole log line — and with it the trial)."""
    number = float(value)
    return number if math.isfinite(number) else None


class WorkerContext(TrainContext):
    def __init__(self, sessions: sessionmaker[Session], channel: TuningChannel, trial_id: str, trial_no: int,
                 pruner: Pruner | None) -> None:
        super().__init__()
        self.sessions = sessions
        self.channel = channel
        self.trial_id = trial_id
        self.trial_no = trial_no
        self.pruner = pruner
        self.stopped_early_at: int | None = None

    def log(self, message: str, **metrics: float) -> None:
        self._record(LogLevel.INFO, message, metrics)

    def log_warning(self, message: str, **metrics: float) -> None:
        self._record(LogLevel.WARNING, message, metrics)

    def _record(self, level: LogLevel, message: str, metrics: dict[str, float]) -> None:
        super().log(message, **metrics)
        with session_scope(self.sessions) as session:
            session.add(TrialLog(trial_id=self.trial_id, level=level, message=message,
                                 metrics={k: _json_number(v) for k, v in metrics.items()} or None))

    def job_stopping(self, epoch: int) -> bool:
        """Whether the sub-job is stopping (asked between units when no pruner needs a score)."""
        if not self.channel.client.exists(self.channel.key("stopped")):
            return False
        self.stopped_early_at = epoch
        self.log(f"stopping after epoch {epoch}: the sub-job is stopping", epoch=epoch)
        return True

    def should_stop(self, epoch: int, score: float) -> bool:
        self.channel.emit("epoch", trial=self.trial_id, no=self.trial_no, epoch=epoch, score=float(score))
        hopeless = self.pruner is not None and self.pruner.should_prune(epoch, score, self.channel.scores_at(epoch))
        self.channel.record_epoch(epoch, score)
        stop_all = bool(self.channel.client.exists(self.channel.key("stopped")))
        if hopeless or stop_all:
            self.stopped_early_at = epoch
            reason = f"pruned by the {type(self.pruner).__name__}" if hopeless else "the sub-job is stopping"
            self.log(f"stopping after epoch {epoch}: {reason}", epoch=epoch, score=score)
        return hopeless or stop_all
