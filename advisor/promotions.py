"""Promoting ASHA's bookkeeping (Li et al., MLSys 2020, Algorithm 2): which paused trial a free worker resumes.

Pure logic: the advisor feeds it the rung scores its trials reported (they live in each trial row's
``progress.rung_scores``) and asks it what a free worker should do next. Rungs are at epochs
``min_epochs · ηᵏ`` (k = 0, 1, …); a trial trains up to its next rung and pauses there. A free worker takes the
best trial of the highest rung whose top ``⌊n/η⌋`` (n: trials that reached that rung) holds one not yet promoted
from it, and resumes it up to the rung above; when no rung has one, it starts a new configuration. A trial is
promoted from a rung at most once; a trial never promoted from its last rung stays paused (pruned when the
job's budget ends). Unlike the stopping variant (:class:`easel.pruning.SuccessiveHalvingPruner`), an early
trial is judged once enough others have reached its rung, not on arrival.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Promotion:
    trial: str
    from_epoch: int  # the rung it is paused at
    to_epoch: int  # the rung it trains up to next


@dataclass
class PromotionLadder:
    min_epochs: int = 1
    eta: int = 3
    _scores: dict[int, list[tuple[float, int, str]]] = field(default_factory=dict)  # rung -> (score, order, trial)
    _promoted: dict[int, set[str]] = field(default_factory=dict)  # rung -> trials promoted from it
    _order: int = 0

    def __post_init__(self) -> None:
        if self.min_epochs < 1:
            raise ValueError(f"min_epochs must be >= 1, got {self.min_epochs}")
        if self.eta < 2:
            raise ValueError(f"eta must be >= 2, got {self.eta}")

    def rung_epoch(self, rung: int) -> int:
        return self.min_epochs * self.eta ** rung

    def rung_of(self, epoch: int) -> int | None:
        """The rung ``k`` at epoch ``min_epochs · ηᵏ``, or None when ``epoch`` is not a rung."""
        k, at = 0, self.min_epochs
        while at < epoch:
            k, at = k + 1, at * self.eta
        return k if at == epoch else None

    @property
    def first_epoch(self) -> int:
        """Where every new trial pauses first."""
        return self.min_epochs

    def reached(self, trial: str, epoch: int, score: float) -> None:
        """``trial`` paused at ``epoch`` (a rung) with validation score ``score``."""
        rung = self.rung_of(epoch)
        if rung is None:
            raise ValueError(f"epoch {epoch} is not a rung (rungs are at {self.min_epochs}·{self.eta}^k)")
        if any(t == trial for _s, _o, t in self._scores.get(rung, [])):
            raise ValueError(f"trial {trial!r} already reached the rung at epoch {epoch}")
        self._scores.setdefault(rung, []).append((float(score), self._order, trial))
        self._order += 1

    def mark_promoted(self, trial: str, epoch: int) -> None:
        """Record that ``trial`` went on from the rung at ``epoch`` (an advisor rebuilding from the trials table)."""
        rung = self.rung_of(epoch)
        if rung is None:
            raise ValueError(f"epoch {epoch} is not a rung")
        self._promoted.setdefault(rung, set()).add(trial)

    def candidate(self) -> Promotion | None:
        """The promotion a free worker should take now (highest rung first, best score first; ties: the one
        that reached the rung first), or None: start a new configuration."""
        for rung in sorted(self._scores, reverse=True):
            ranked = sorted(self._scores[rung], key=lambda entry: (-entry[0], entry[1]))
            for _score, _order, trial in ranked[:len(ranked) // self.eta]:
                if trial not in self._promoted.get(rung, set()):
                    return Promotion(trial, self.rung_epoch(rung), self.rung_epoch(rung + 1))
        return None

    def promote(self) -> Promotion | None:
        """As :meth:`candidate`, and record it: a trial is promoted from a rung once."""
        promotion = self.candidate()
        if promotion is not None:
            self.mark_promoted(promotion.trial, promotion.from_epoch)
        return promotion

    def paused_at(self, trial: str) -> int | None:
        """The highest rung epoch ``trial`` reached and was not promoted from, if it is paused there."""
        rungs = [rung for rung, entries in self._scores.items() if any(t == trial for _s, _o, t in entries)]
        if not rungs:
            return None
        top = max(rungs)
        return None if trial in self._promoted.get(top, set()) else self.rung_epoch(top)


__all__ = ["Promotion", "PromotionLadder"]
