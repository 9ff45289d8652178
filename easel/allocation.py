"""Who gets the train pool's next free worker: pure allocation policy (no I/O), after ease.ml (Karlaš et al.,
PVLDB'18) — give the next unit of compute to the user whose expected quality gain per unit cost is highest.

A *candidate* is one sub-train-job with work waiting for a worker. Its advisor publishes the expected
improvement (EI, in score units: accuracy points as a fraction) of its next proposal over its current best,
from its own GP, an optimistic estimate of its current regret (the GP's upper confidence bound at that proposal
minus its best), and the expected cost of a trial (the mean duration of its finished trials). Its *rate* is
EI / cost. A candidate that has not yet two observations (no GP, no spread) is *cold*: its rate is unknown.

Policies:

* ``cost_aware`` — users compete, not jobs (more jobs buy no more weight). In this order:

  1. **Fairness floor, a share of pool time.** With ``U`` users having work waiting and ``W`` workers, each
     waiting user accrues a claim of ``W / (2U)`` worker-seconds per second (a share ``1/(2U)`` of the pool);
     every assignment it gets is charged its expected trial cost. A user whose claim covers its next trial is
     served before anything else (the most owed, relative to its trial cost, first; when the rules below would
     serve an owed user anyway, they do, and the floor is not counted). All claims together accrue
     at half the pool's capacity, so the floor never needs more than half the workers and a waiting user's unmet
     claim stays bounded (about one trial of its own plus the wait for a worker to come free): over any stretch
     it waits, it gets at least ``1/(2U)`` of the pool's worker-seconds up to that slack, however steep another
     user's curve. A claim is never below minus one trial: having been served more than the floor counts for at
     most one trial, so the floor looks back over a sliding window and bites only when a user is really starved.
  2. **Cold start per user**: a user none of whose jobs has a gain yet goes next — the one given the fewest
     assignments so far, then the longest waiter (a user whose advisor bids a moment after another's gets its
     first trial before the earlier one's third: until a first result, a user's whole reachable score is regret);
     a warm user's new job waits for its user to win, and is then served before that user's warm jobs.
  3. **Expected gain per second**: the user whose best job's rate is highest. EI is the expected drop of that
     user's regret (reachable − best so far) that the trial buys, so serving the highest EI per second first is
     the weighted-shortest-job rule for the total regret integrated over time (ease.ml's cost-aware greedy).
  4. **No gain left**: a user whose GP says its current regret is gone — the optimistic regret its advisor
     publishes (UCB at the next proposal − best) below ``NO_GAIN_LEFT`` — yields to every user with gain left
     (those served in turn after them).

* ``regret_rate`` — the same users-compete rule and the same fairness floor, but each option is scored by what it
  does to the *total regret* (Σ over users of reachable − best so far, integrated over time), so options of
  different users compare on one scale:

  1. **First results first, and wait for them**: a user never served yet goes next (the longest waiter first). Until its first result its whole reachable score is regret (≈ 1 per
     second), more than any trial of a user with a result can buy back; so while a user whose job is live has
     not bid yet (its advisor is still starting: ``ready`` False, a fraction of a second), a free worker is
     *held* for it rather than given a second concurrent trial of someone else (the choice is None).
  2. **Expected regret reduction per second**: ``expected_gain`` — the expected rise of the user's best
     from one more trial, with scores capped at ``SCORE_CEILING`` (accuracy cannot pass 1, so a user at .95
     has at most .05 left to win, one at .62 has .38) and counting the user's trials already running under
     the same belief (a second concurrent trial buys only what the first may not: ``E[max(best, Y₁..Y_k+1)] −
     E[max(best, Y₁..Y_k)]``, the batch EI) — divided by the trial's expected seconds. A gain reached at the
     end of a trial lowers the regret from then to the common horizon, so by the exchange argument the highest
     gain per second first minimises the total (weighted shortest processing time). A user with one result
     has no spread of its own yet: its belief is its score with the median spread the other users' beliefs
     show (``PRIOR_STD`` before any has one); a job with no result, the mean of the others' beliefs. A user with
     nothing left to win has a rate near 0 and is served last (no separate rule).
  3. **Turn guard: no user falls behind its round-robin turn** by more than ``TURN_SLACK`` trial-lengths of the
     pool (the mean expected trial of the waiting users). Round-robin runs in the shadow on the same free workers
     (each free spell of a worker is one turn, to the waiting user round-robin has kept waiting longest — so a
     user alone when workers come free gets them all, as under turns); a user whose oldest turn not yet matched
     by an assignment is older than the slack is served first (the longest overdue first). Ranking by the rise of
     the best serves last the user nearest a perfect score, and for a long while: the guard bounds that wait by
     turns, which is what time to target is judged against; the ranking reorders the turns within the slack —
     first results, then the steepest users first. In the long run the shares by assignment are those of turns
     (the ranking only moves users within the slack, the floor still guarantees worker-seconds).
  4. The floor as in ``cost_aware``.

* ``fifo`` — the oldest job first (job order), the platform's behaviour before the pool.
* ``round_robin`` — users in turn (the longest waiter first), each user's oldest job first.

**Invariant — a free worker never idles while a job with budget left has a proposal** (every policy is work
conserving): :meth:`Allocator.choose` returns None only when no candidate is ready, or — ``regret_rate``'s start
hold, the one bounded exception — to hold *one* free worker per never-served user whose job is live and whose
advisor has not bid yet (``held``: the workers the caller already holds for them), and only while the caller lists
that job as starting (``EASEL_TRAIN_POOL_START_WAIT_S`` after its creation at most). However small a ready job's
score (a lone user's second concurrent trial buys almost nothing under the batch EI), it is served rather than
left waiting: a rate ranks the ready jobs, it never turns a worker away.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

POLICIES = ("cost_aware", "regret_rate", "fifo", "round_robin")
MIN_COST_S = 0.05  # a trial costs at least this much: a clock too coarse to see it must not make it free
NO_GAIN_LEFT = 0.001  # an optimistic regret below a tenth of a point: the user's GP sees nothing left to win
UCB_BETA = 2.0  # the upper confidence bound's width in standard deviations (≈ 98 % one-sided)
SCORE_CEILING = 1.0  # scores are "higher is better, e.g. accuracy in [0, 1]" (the template contract)
PRIOR_STD = 0.1  # a score's spread before any user's results show one (a tenth of the accuracy scale)
TURN_SLACK = 0.5  # regret_rate: how far (in trial-lengths of the pool) a user may fall behind its round-robin turn
PROCESS_LOCAL = {"remembered": False}  # an Allocator field a restarted admin must not restore (its clock, …)
_GRID = 200  # Simpson intervals of the batch-EI integral (error far below a hundredth of a point)


def expected_improvement(mean: float, std: float, best: float) -> float:
    """E[max(0, Y - best)] for Y ~ N(mean, std²) (maximising); ``std`` 0 gives the sure improvement."""
    if not (math.isfinite(mean) and math.isfinite(std) and math.isfinite(best)) or std < 0:
        raise ValueError(f"mean, std and best must be finite and std >= 0; got {mean!r}, {std!r}, {best!r}")
    if std == 0:
        return max(0.0, mean - best)
    z = (mean - best) / std
    pdf = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    return max(0.0, (mean - best) * cdf + std * pdf)


def optimistic_regret(mean: float, std: float, best: float) -> float:
    """max(0, UCB − best) with UCB = mean + ``UCB_BETA``·std: how far the best may still be from what is
    reachable near the next proposal, optimistically (GP-UCB's bound on the instantaneous regret)."""
    if not (math.isfinite(mean) and math.isfinite(std) and math.isfinite(best)) or std < 0:
        raise ValueError(f"mean, std and best must be finite and std >= 0; got {mean!r}, {std!r}, {best!r}")
    return max(0.0, mean + UCB_BETA * std - best)


def expected_gain(mean: float, std: float, best: float, ceiling: float = math.inf, in_flight: int = 0) -> float:
    """The expected rise of ``best`` from one more trial whose score Y ~ N(mean, std²), capped at ``ceiling``, when
    ``in_flight`` trials under the same belief are already running: E[max(best, Y₁..Y_k+1)] − E[max(best,
    Y₁..Y_k)] = ∫_best^ceiling F(y)^k (1 − F(y)) dy (F the normal CDF, k = ``in_flight``). With k = 0 and no
    ceiling it is the expected improvement."""
    if not (math.isfinite(mean) and math.isfinite(std) and math.isfinite(best)) or std < 0:
        raise ValueError(f"mean, std and best must be finite and std >= 0; got {mean!r}, {std!r}, {best!r}")
    if math.isnan(ceiling):
        raise ValueError(f"ceiling must be a number, not {ceiling!r}")
    if in_flight < 0:
        raise ValueError(f"in_flight must be >= 0, not {in_flight!r}")
    if ceiling <= best:
        return 0.0
    if std == 0:
        return max(0.0, min(mean, ceiling) - best) if in_flight == 0 else 0.0
    if in_flight == 0:
        capped = expected_improvement(mean, std, ceiling) if math.isfinite(ceiling) else 0.0
        return max(0.0, expected_improvement(mean, std, best) - capped)
    low, high = best, min(ceiling, mean + 8 * std)  # above mean + 8 std, 1 − F is below 1e-15
    if high <= low:
        return 0.0
    step = (high - low) / _GRID

    def integrand(y: float) -> float:
        cdf = 0.5 * (1 + math.erf((y - mean) / (std * math.sqrt(2))))
        return cdf ** in_flight * (1 - cdf)

    total = integrand(low) + integrand(high)
    total += sum((4 if i % 2 else 2) * integrand(low + i * step) for i in range(1, _GRID))
    return max(0.0, total * step / 3)


@dataclass(frozen=True)
class Candidate:
    sub_train_job_id: str
    train_job_id: str
    user_id: str
    submitted: float  # when its job was created (UNIX seconds): the FIFO order
    gain: float | None = None  # EI of its next proposal over its best; None: cold (fewer than two observations)
    cost_s: float | None = None  # expected seconds of one trial; None: none finished yet
    regret: float | None = None  # optimistic current regret (UCB − best); None: unknown (cold, or not published)
    # What ``regret_rate`` reads (the other policies ignore them):
    mean: float | None = None  # belief about its next proposal's score (GP posterior or scores seen); None: none
    std: float | None = None
    best: float | None = None  # its best score so far (None before its first result)
    observed: int = 0  # its results so far
    running: int = 0  # its trials on workers now
    ready: bool = True  # False: its job is live but its advisor has not bid yet (only ``regret_rate`` waits for it)

    @property
    def rate(self) -> float:
        """Expected gain per second of a worker (infinite while cold)."""
        if self.gain is None or self.cost_s is None:
            return math.inf
        return max(0.0, self.gain) / max(self.cost_s, MIN_COST_S)

    @property
    def cold(self) -> bool:
        return math.isinf(self.rate)

    @property
    def gain_left(self) -> bool:
        """False when its GP says nothing is left to win (an unknown regret counts as gain left)."""
        return self.regret is None or self.regret >= NO_GAIN_LEFT


@dataclass(frozen=True)
class Choice:
    candidate: Candidate
    reason: str  # "cold start", "highest gain per second", "fairness floor", "no gain left", "fifo", "round robin",
    # "first result", "highest regret reduction per second", "round-robin turn"
    waited: int  # assignments its user had waited
    rate: float | None = None  # regret_rate: the expected rise of its user's best per second it was chosen at


@dataclass
class Allocator:
    """The allocation state of one pool of ``workers``: how long each waiting user has waited (in assignments,
    for round-robin and the API) and what the fairness floor owes it (in worker-seconds)."""

    policy: str = "cost_aware"
    workers: int = 1
    waits: dict[str, int] = field(default_factory=dict)
    owed_s: dict[str, float] = field(default_factory=dict)  # the floor's claim of each waiting user
    assignments: int = 0
    by_user: Counter[str] = field(default_factory=Counter)
    floors: Counter[str] = field(default_factory=Counter)  # assignments the floor forced, per user
    charged_s: Counter[str] = field(default_factory=Counter)  # expected worker-seconds given, per user
    last_at: float | None = None
    # regret_rate's turn guard — round-robin run in the shadow on the same free workers: the times it would have
    # served each waiting user that this allocator has not matched yet, how far each is ahead of it instead,
    # round-robin's own waits, and the workers whose current free spell it has counted. Readings of this
    # process's clock: not remembered across an admin restart (the guard starts afresh, as turns would).
    turns_due: dict[str, deque[float]] = field(default_factory=dict, metadata=PROCESS_LOCAL)
    turns_ahead: Counter[str] = field(default_factory=Counter, metadata=PROCESS_LOCAL)
    turn_waits: dict[str, int] = field(default_factory=dict, metadata=PROCESS_LOCAL)
    turned: set[str] = field(default_factory=set, metadata=PROCESS_LOCAL)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {self.policy!r}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, not {self.workers!r}")

    def choose(self, candidates: Sequence[Candidate], now: float | None = None, held: int = 0,
               worker: str | None = None) -> Choice | None:
        """The next assignment among ``candidates`` at ``now`` (monotonic seconds; the clock when omitted), or
        None when there is none (or, ``regret_rate`` only, when this free worker is held for a starting user —
        ``held``: free workers already held for them, so at most one each); the state moved on."""
        now = time.monotonic() if now is None else now
        if self.last_at is not None and now < self.last_at:
            raise ValueError(f"now must not go back in time: {now!r} < {self.last_at!r}")
        if held < 0:
            raise ValueError(f"held must be >= 0, not {held!r}")
        order = sorted((c for c in candidates if c.ready), key=lambda c: (c.submitted, c.sub_train_job_id))
        users = list(dict.fromkeys(c.user_id for c in order))  # in order of their oldest job
        self._accrue(users, now)
        if not order:
            return None
        self.waits = {user: self.waits.get(user, 0) for user in users}  # a user without work stops waiting
        if self.policy == "regret_rate":
            self._take_turn(users, now, worker)
        rate: float | None = None
        if self.policy == "fifo":
            chosen, reason = order[0], "fifo"
        elif self.policy == "round_robin":
            chosen, reason = next(c for c in order if c.user_id == self._longest(users)), "round robin"
        elif self.policy == "regret_rate":
            starting = {c.user_id for c in candidates if not c.ready} - set(users)
            picked = self._regret_rate(order, users, starting, held)
            if picked is None:
                return None
            chosen, reason, rate = picked
        else:
            chosen, reason = self._cost_aware(order, users)
        waited = self.waits[chosen.user_id]
        if self.policy == "regret_rate":
            self.turned.discard(worker or "")
            if self.turns_due[chosen.user_id]:
                self.turns_due[chosen.user_id].popleft()  # its oldest turn is taken
            else:
                self.turns_ahead[chosen.user_id] += 1
        for user in users:
            self.waits[user] = 0 if user == chosen.user_id else self.waits[user] + 1
        cost = self._expected_cost(chosen, order)
        self.owed_s[chosen.user_id] = max(self.owed_s[chosen.user_id] - cost, -cost)
        self.charged_s[chosen.user_id] += cost
        self.assignments += 1
        self.by_user[chosen.user_id] += 1
        return Choice(chosen, reason, waited, rate)

    def _cost_aware(self, order: list[Candidate], users: list[str]) -> tuple[Candidate, str]:
        mine = {user: [c for c in order if c.user_id == user] for user in users}
        job = {user: self._within(mine[user]) for user in users}
        cost = {user: self._expected_cost(job[user], order) for user in users}
        cold = [user for user in users if all(c.cold for c in mine[user])]
        warm = {user: [c for c in mine[user] if not c.cold and c.gain_left] for user in users}
        hopeful = [user for user in users if warm[user]]
        if cold:
            user = min(cold, key=lambda u: (self.by_user[u], -self.waits[u], users.index(u)))
            reason = "cold start"
        elif hopeful:
            user = max(hopeful, key=lambda u: (max(c.rate for c in warm[u]), self.waits[u], -users.index(u)))
            reason = "highest gain per second"
        else:
            user, reason = self._longest(users), "no gain left"
        owed = [u for u in users if len(users) > 1 and self.owed_s[u] >= cost[u]]
        if owed and user not in owed:  # the floor overrules only a choice that would leave an owed user waiting
            user, reason = max(owed, key=lambda u: (self.owed_s[u] / cost[u], -users.index(u))), "fairness floor"
            self.floors[user] += 1
        return job[user], reason

    def _regret_rate(self, order: list[Candidate], users: list[str], starting: set[str],
                     held: int = 0) -> tuple[Candidate, str, float | None] | None:
        mine = {user: [c for c in order if c.user_id == user] for user in users}
        # never served, nothing running, no result (a user served before whose bid shows no result yet has one
        # coming: the pass runs the moment its worker frees, before its advisor bids again)
        fresh = [user for user in users
                 if self.by_user[user] == 0 and all(c.observed == 0 and c.running == 0 for c in mine[user])]
        starting = {user for user in starting if self.by_user[user] == 0}
        if fresh:
            user = min(fresh, key=lambda u: (-self.waits[u], users.index(u)))
            chosen, reason, rate = mine[user][0], "first result", None
        elif len(starting) > held:  # a first result is coming: one worker waits for it (the module's invariant)
            return None
        elif (late := self._overdue(order, users, mine)) is not None:
            user = late
            chosen, reason, rate = mine[user][0], "round-robin turn", None
        else:
            rates = self._rates(order)
            best_job = {user: max(mine[user], key=lambda c: (rates[c.sub_train_job_id], -c.submitted))
                        for user in users}
            user = max(users, key=lambda u: (rates[best_job[u].sub_train_job_id], self.waits[u], -users.index(u)))
            chosen, reason = best_job[user], "highest regret reduction per second"
            rate = rates[chosen.sub_train_job_id]
        cost = {u: self._expected_cost(mine[u][0], order) for u in users}
        owed = [u for u in users if len(users) > 1 and self.owed_s[u] >= cost[u]]
        if owed and user not in owed:  # the floor, as in cost_aware
            user = max(owed, key=lambda u: (self.owed_s[u] / cost[u], -users.index(u)))
            chosen, reason, rate = mine[user][0], "fairness floor", None
            self.floors[user] += 1
        return chosen, reason, rate

    def _take_turn(self, users: list[str], now: float, worker: str | None) -> None:
        """Round-robin in the shadow: a worker free now (counted once per free spell when the caller names it)
        would have gone to the waiting user round-robin has kept waiting longest; remember when, unless this
        allocator has already served that user ahead of its turn. A user that stops waiting forgets its turns."""
        self.turns_due = {u: self.turns_due.get(u, deque()) for u in users}
        self.turns_ahead = Counter({u: self.turns_ahead[u] for u in users if self.turns_ahead[u]})
        self.turn_waits = {u: self.turn_waits.get(u, 0) for u in users}
        if worker is not None and worker in self.turned:
            return
        pick = max(users, key=lambda u: (self.turn_waits[u], -users.index(u)))
        for user in users:
            self.turn_waits[user] = 0 if user == pick else self.turn_waits[user] + 1
        if self.turns_ahead[pick]:
            self.turns_ahead[pick] -= 1
        else:
            self.turns_due[pick].append(now)
        if worker is not None:
            self.turned.add(worker)

    def _overdue(self, order: list[Candidate], users: list[str], mine: dict[str, list[Candidate]]) -> str | None:
        """The user longest past its round-robin turn by more than ``TURN_SLACK`` trial-lengths of the pool (the
        mean expected trial over the waiting users), if any."""
        if len(users) < 2:
            return None
        length = sum(self._expected_cost(mine[u][0], order) for u in users) / len(users)
        now = self.last_at or 0.0
        late = {u: now - self.turns_due[u][0] - TURN_SLACK * length for u in users if self.turns_due[u]}
        overdue = [u for u in late if late[u] >= 0]
        return max(overdue, key=lambda u: (late[u], -users.index(u))) if overdue else None

    def _rates(self, order: list[Candidate]) -> dict[str, float]:
        """Each job's expected rise of its user's best per second of a trial (``expected_gain`` over the cost)."""
        known = [c for c in order if c.mean is not None and c.std is not None]
        spread = sorted(c.std for c in known if c.std is not None)  # the spread the users' beliefs show
        prior_std = spread[len(spread) // 2] if spread else PRIOR_STD
        prior_mean = sum(c.mean for c in known if c.mean is not None) / len(known) if known else None
        best: dict[str, float] = {}
        running: Counter[str] = Counter()
        for c in order:
            running[c.user_id] += c.running
            if c.best is not None:
                best[c.user_id] = max(best.get(c.user_id, c.best), c.best)
        rates = {}
        for c in order:
            if c.mean is not None and c.std is not None:
                mean, std = c.mean, c.std
            elif c.observed > 0 and c.best is not None:
                mean, std = c.best, prior_std  # one result: its score, with the others' spread
            elif prior_mean is not None:
                mean, std = prior_mean, prior_std
            else:  # nobody has a belief yet: no ranking; the waits decide
                rates[c.sub_train_job_id] = 0.0
                continue
            ceiling = SCORE_CEILING if max(mean, best.get(c.user_id, 0.0)) <= SCORE_CEILING else math.inf
            # before its first result a user's best counts as 0 (all of its reachable score is regret)
            base = best.get(c.user_id, min(0.0, mean - 8 * std))
            gain = expected_gain(mean, std, base, ceiling, running[c.user_id])
            rates[c.sub_train_job_id] = gain / self._expected_cost(c, order)
        return rates

    @staticmethod
    def _within(jobs: list[Candidate]) -> Candidate:
        """A user's job to serve: a cold one first (it needs results to bid), else the highest rate, oldest first."""
        return max(jobs, key=lambda c: (c.cold, c.gain_left, c.rate if not c.cold else 0.0, -c.submitted))

    def _longest(self, users: list[str]) -> str:
        return max(users, key=lambda user: (self.waits.get(user, 0), -users.index(user)))

    def _accrue(self, users: list[str], now: float) -> None:
        """Grow each waiting user's floor claim by its share of the worker-seconds since the last choice; a user
        without work waiting holds no claim."""
        elapsed = 0.0 if self.last_at is None else now - self.last_at
        share = self.workers / (2 * len(users)) if len(users) > 1 else 0.0
        self.owed_s = {user: self.owed_s.get(user, 0.0) + share * elapsed for user in users}
        self.last_at = now

    @staticmethod
    def _expected_cost(candidate: Candidate, order: list[Candidate]) -> float:
        """Its mean trial duration; before its first, the mean over the jobs that know theirs."""
        if candidate.cost_s is not None:
            return max(candidate.cost_s, MIN_COST_S)
        known = [c.cost_s for c in order if c.cost_s is not None]
        return max(sum(known) / len(known), MIN_COST_S) if known else MIN_COST_S


__all__ = ["MIN_COST_S", "NO_GAIN_LEFT", "POLICIES", "PRIOR_STD", "PROCESS_LOCAL", "SCORE_CEILING", "TURN_SLACK",
           "UCB_BETA", "Allocator", "Candidate", "Choice", "expected_gain", "expected_improvement", "optimistic_regret"]
