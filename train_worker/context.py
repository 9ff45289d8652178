"""The TrainContext a worker hands to a template: logs go to trial_logs and the events stream; the
``should_stop`` answer applies the median early-stopping rule and the sub-job's stop signal."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from easel.db.enums import LogLevel
from easel.db.models import TrialLog
from easel.db.session import session_scope
from easel.model import TrainContext
from easel.tuning import TuningChannel


class WorkerContext(TrainContext):
    def __init__(self, sessions: sessionmaker[Session], channel: TuningChannel, trial_id: str, trial_no: int,
                 early_stop: bool) -> None:
        super().__init__()
        self.sessions = sessions
        self.channel = channel
        self.trial_id = trial_id
        self.trial_no = trial_no
        self.early_stop = early_stop
        self.stopped_early_at: int | None = None

    def log(self, message: str, **metrics: float) -> None:
        super().log(message, **metrics)
        with session_scope(self.sessions) as session:
            session.add(TrialLog(trial_id=self.trial_id, level=LogLevel.INFO, message=message,
                                 metrics={k: float(v) for k, v in metrics.items()} or None))

    def should_stop(self, epoch: int, score: float) -> bool:
        self.channel.emit("epoch", trial=self.trial_id, no=self.trial_no, epoch=epoch, score=float(score))
        hopeless = self.early_stop and self.channel.should_stop_early(epoch, score)
        self.channel.record_epoch(epoch, score)
        stop_all = bool(self.channel.client.exists(self.channel.key("stopped")))
        if hopeless or stop_all:
            self.stopped_early_at = epoch
            reason = "below the median of earlier trials" if hopeless else "the sub-job is stopping"
            self.log(f"stopping after epoch {epoch}: {reason}", epoch=epoch, score=score)
        return hopeless or stop_all
