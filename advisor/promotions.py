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

    def admit(self, trial: str, no: int) -> int:  # noqa: ARG002 - one ladder: every trial starts alike
        """Register a new trial (numbered ``no``, 1, 2, … in the order trials are created); the epoch its first
        stretch trains up to."""
        return self.min_epochs

    def next_rung(self, trial: str, epoch: int) -> int:  # noqa: ARG002 - one ladder: the same rungs for all
        """The first rung epoch of ``trial`` after ``epoch`` (where a stretch from ``epoch`` pauses)."""
        k = 0
        while self.rung_epoch(k) <= epoch:
            k += 1
        return self.rung_epoch(k)

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


MAX_ROUND = 100_000  # trials per round of brackets: η^(brackets-1) ≤ 10⁴, a last bracket first judged at 10⁴ epochs


def hyperband_shares(brackets: int, eta: int) -> list[int]:
    """Hyperband's number of configurations per bracket (Li et al., JMLR 2018, Algorithm 1), most aggressive
    bracket first: bracket ``j`` (minimum resource ``min_epochs · ηʲ``, ``s = brackets - 1 - j`` halvings) gets
    ``⌈brackets / (s + 1) · ηˢ⌉``, which gives every bracket about the same total budget."""
    if brackets < 1:
        raise ValueError(f"brackets must be >= 1, got {brackets}")
    if eta < 2:
        raise ValueError(f"eta must be >= 2, got {eta}")
    return [-(-brackets * eta ** (brackets - 1 - j) // (brackets - j)) for j in range(brackets)]


@dataclass
class BracketedLadder:
    """Asynchronous Hyperband (Li et al., MLSys 2020, §3.3): several promoting ASHA ladders ("brackets") side by
    side, bracket ``j`` with minimum resource ``min_epochs · ηʲ`` — the last one's (when it reaches the trials'
    epochs) trains its configurations to the end unjudged. ASHA alone bets that a configuration's rank after
    ``min_epochs`` predicts its final rank; a slow starter loses that bet at the first rung and waits there.
    The brackets hedge the bet as Hyperband does, at Hyperband's allocation (:func:`hyperband_shares`).

    New trials go to brackets by smooth weighted round robin over those shares (the trial's number decides, so
    an advisor rebuilding from the trials table puts every trial back where it was). A free worker takes the
    promotion whose rung is furthest along (highest epoch; ties: the more aggressive bracket), else starts a new
    configuration. With ``brackets = 1`` this is :class:`PromotionLadder`."""

    min_epochs: int = 1
    eta: int = 3
    brackets: int = 3
    shares: list[int] = field(init=False)  # configurations per bracket in each round (Hyperband's n_s)
    ladders: list[PromotionLadder] = field(init=False)  # bracket j: minimum resource min_epochs·ηʲ
    _round: list[int] = field(init=False)  # the brackets of one round of sum(shares) trials, in order
    _bracket: dict[str, int] = field(default_factory=dict)  # trial -> its bracket

    def __post_init__(self) -> None:
        if self.min_epochs < 1:
            raise ValueError(f"min_epochs must be >= 1, got {self.min_epochs}")
        self.shares = hyperband_shares(self.brackets, self.eta)
        if sum(self.shares) > MAX_ROUND:
            last = self.min_epochs * self.eta ** (self.brackets - 1)
            raise ValueError(f"brackets: {self.brackets} brackets at eta {self.eta} deal rounds of "
                             f"{sum(self.shares)} trials (the last bracket first judges at epoch {last}); "
                             f"at most {MAX_ROUND}")
        self.ladders = [PromotionLadder(self.min_epochs * self.eta ** j, self.eta) for j in range(self.brackets)]
        # Smooth weighted round robin (nginx's): each pick adds every bracket's share to its credit and takes the
        # most credited (ties: the more aggressive), which pays the total back. After one round every bracket
        # was picked its share of times and every credit is 0 again, so the order repeats round after round.
        credit, total, self._round = [0] * self.brackets, sum(self.shares), []
        for _ in range(total):
            credit = [c + share for c, share in zip(credit, self.shares, strict=True)]
            chosen = max(range(self.brackets), key=lambda j: (credit[j], -j))
            credit[chosen] -= total
            self._round.append(chosen)

    def bracket_for(self, no: int) -> int:
        """The bracket of the ``no``-th trial (1-based): smooth weighted round robin over the shares."""
        if no < 1:
            raise ValueError(f"no must be >= 1, got {no}")
        return self._round[(no - 1) % len(self._round)]

    def admit(self, trial: str, no: int) -> int:
        bracket = self._bracket.setdefault(trial, self.bracket_for(no))
        return self.ladders[bracket].first_epoch

    def _ladder(self, trial: str) -> PromotionLadder:
        if trial not in self._bracket:
            raise ValueError(f"trial {trial!r} was not admitted")
        return self.ladders[self._bracket[trial]]

    def bracket_of(self, trial: str) -> int:
        self._ladder(trial)
        return self._bracket[trial]

    def next_rung(self, trial: str, epoch: int) -> int:
        return self._ladder(trial).next_rung(trial, epoch)

    def reached(self, trial: str, epoch: int, score: float) -> None:
        self._ladder(trial).reached(trial, epoch, score)

    def mark_promoted(self, trial: str, epoch: int) -> None:
        self._ladder(trial).mark_promoted(trial, epoch)

    def paused_at(self, trial: str) -> int | None:
        return self._ladder(trial).paused_at(trial)

    def candidate(self) -> Promotion | None:
        offers = [(promotion, j) for j, ladder in enumerate(self.ladders)
                  if (promotion := ladder.candidate()) is not None]
        if not offers:
            return None
        return min(offers, key=lambda offer: (-offer[0].from_epoch, offer[1]))[0]

    def promote(self) -> Promotion | None:
        promotion = self.candidate()
        if promotion is not None:
            self.mark_promoted(promotion.trial, promotion.from_epoch)
        return promotion


def make_ladder(min_epochs: int, eta: int, brackets: int = 1) -> PromotionLadder | BracketedLadder:
    """The promoting ASHA's bookkeeping: one ladder, or asynchronous Hyperband's ``brackets`` of them."""
    if brackets < 1:
        raise ValueError(f"brackets must be >= 1, got {brackets}")
    return PromotionLadder(min_epochs, eta) if brackets == 1 else BracketedLadder(min_epochs, eta, brackets)


__all__ = ["BracketedLadder", "Promotion", "PromotionLadder", "hyperband_shares", "make_ladder"]
