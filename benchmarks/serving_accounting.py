"""Where every instance of a (b) sweep point went, so that a lost task can never hide in an accuracy figure again.

Per point and policy, from what the system itself recorded — the predictor's answers (``totals`` of each
response) and the workers' ``easel_worker_instances_total`` counters read before and after the point:

* ``sent``: instances in the tasks sent;
* ``served``: answered served (the predictor's view);
* ``dropped_in_plan``: answered dropped by a worker (its plan, or the late rule, gave up on them);
* ``expired_unrun``: instances a worker held in its book until their deadline had passed, never planned;
* ``dropped_by_predictor``: instances no worker answered in time, answered dropped by the predictor at its
  deadline (they include ``expired_unrun``, answers that came late, and ``never_reached_a_worker``);
* ``never_reached_a_worker``: ``sent`` less every instance a worker counted (served, dropped or expired) — what
  no worker ever read, or read and let go uncounted (a generation or partition given up with tasks still queued);
  nonzero only if tasks are lost on the way (a redelivery can make a worker count one twice).

And the pipeline's recorded costs an oracle may include (:func:`pipeline_costs`): the pre-worker delay (the
predictor's ``to_worker`` stage: the worker's poll time less the predictor's send stamp) and the worker's recorded
wall time per mini-batch beyond the model's own compute (the bare model's time per mini-batch).
"""

from __future__ import annotations

from typing import Any

POLICY_WIDTH = 15


def _status_counts(counters: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in counters.items():
        if name.startswith("easel_worker_instances_total{") and 'status="' in name:
            status = name.split('status="', 1)[1].split('"', 1)[0]
            out[status] = out.get(status, 0.0) + value
    return out


def account(answers: list[dict[str, Any]], before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    """The instance accounting of one point (see the module docstring). ``answers``: the predictor's responses;
    ``before``/``after``: the workers' summed counters around the point (after its last deadline had passed)."""
    totals = [a["totals"] for a in answers]
    sent = sum(int(t["instances"]) for t in totals)
    unanswered = sum(int(t["unanswered"]) for t in totals)
    start, end = _status_counts(before), _status_counts(after)
    worker = {s: int(round(end.get(s, 0.0) - start.get(s, 0.0))) for s in ("served", "dropped", "expired")}
    return {
        "sent": sent,
        "served": sum(int(t["served"]) for t in totals),
        "dropped_in_plan": sum(int(t["dropped"]) - int(t["unanswered"]) for t in totals),
        "expired_unrun": worker["expired"],
        "dropped_by_predictor": unanswered,
        "never_reached_a_worker": sent - sum(worker.values()),
        "worker_served": worker["served"],
        "worker_dropped": worker["dropped"],
    }


def stage_mean(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]],
               stage: str) -> float | None:
    """The mean seconds of one predictor latency stage over the entries recorded between two reads."""
    s0, c0 = before.get(stage, (0.0, 0.0))
    s1, c1 = after.get(stage, (0.0, 0.0))
    return (s1 - s0) / (c1 - c0) if c1 > c0 else None


def pipeline_costs(batch_time_s: dict[str, float], model_time_s: dict[float, float],
                   pre_worker_s: float | None) -> dict[str, Any]:
    """What the pipeline recorded beside the model at one point: the pre-worker delay, and per width the worker's
    recorded seconds per mini-batch less the bare model's (its per-mini-batch overhead, contention included)."""
    return {"pre_worker_delay_s": pre_worker_s,
            "overhead_per_mini_batch_s": {f"{r:g}": batch_time_s[f"{r:g}"] - t for r, t in model_time_s.items()
                                          if f"{r:g}" in batch_time_s}}


def _delta(before: dict[str, float], after: dict[str, float], prefix: str) -> float:
    """The increase of every counter whose name starts with ``prefix`` (summed over its labels)."""
    return sum(v - before.get(k, 0.0) for k, v in after.items() if k.startswith(prefix))


def executor_costs(before: dict[str, float], after: dict[str, float], worker_seconds: float) -> dict[str, Any]:
    """What the plans expected of the mini-batches run, against what the pipeline carried, per mini-batch run at
    one point (the workers' counters around it): ``planned`` (the plan's ``t_i``), ``recorded`` (the worker's
    measured batch time), ``wall`` (the executor's wall time on its shares over the mini-batches run: the gaps
    between mini-batches and the re-plans included); and ``busy``, the executor's share time over
    ``worker_seconds`` (the point's span times the workers: the rest is spent waiting for work); and the mean
    seconds a share waited in its worker from its first message polled to its first plan (the book assembling the
    rest of it, or work ahead of it)."""
    run = _delta(before, after, "easel_worker_minibatches_total")
    share_s = _delta(before, after, "easel_worker_share_seconds_total")
    per_mb = {name: (_delta(before, after, prefix) / run if run else None) for name, prefix in (
        ("planned", "easel_worker_planned_batch_seconds_total"), ("recorded", "easel_worker_batch_seconds_sum"),
        ("predict", "easel_worker_predict_seconds_total"), ("answer", "easel_worker_answer_seconds_total"),
        ("predict_thread_cpu", "easel_worker_predict_thread_cpu_seconds_total"))}
    shares = _delta(before, after, "easel_worker_tasks_total")
    wait_s = _delta(before, after, "easel_worker_share_wait_seconds_total")
    return {"mini_batches_run": int(run), "shares": int(shares), "wait_s_per_share": wait_s / shares if shares else None,
            "planned_s_per_mini_batch": per_mb["planned"], "recorded_s_per_mini_batch": per_mb["recorded"],
            "predict_s_per_mini_batch": per_mb["predict"], "answer_s_per_mini_batch": per_mb["answer"],
            "predict_thread_cpu_s_per_mini_batch": per_mb["predict_thread_cpu"],
            "wall_s_per_mini_batch": share_s / run if run else None,
            "busy": share_s / worker_seconds if worker_seconds > 0 else None}


def accounting_table(sweep: dict[str, Any], policies: tuple[str, ...]) -> list[str]:
    """One line per point and policy: where the instances went (counts over all the point's tasks)."""
    lines = ["(b) accounting, instances over each point's tasks: sent = served + dropped in plan + dropped by the "
             "predictor; expired unrun and never read are parts of the last"]
    head = ("served", "in plan", "expired", "predictor", "never read")
    lines.append(f"{'N/D /s':>8} {'policy':<{POLICY_WIDTH}} {'sent':>8} " + " ".join(f"{h:>10}" for h in head)
                 + f" {'rotations':>9}")
    for i, n in enumerate(sweep["sizes"]):
        for policy in policies:
            row = sweep["policies"][policy][i]
            a = row.get("accounting")
            if a is None:
                continue
            cells = (a["served"], a["dropped_in_plan"], a["expired_unrun"], a["dropped_by_predictor"],
                     a["never_reached_a_worker"])
            lines.append(f"{n / sweep['deadline_s']:>8.0f} {policy:<{POLICY_WIDTH}} {a['sent']:>8} "
                         + " ".join(f"{c:>10}" for c in cells) + f" {row.get('rotations', '?'):>9}")
    return lines


__all__ = ["account", "accounting_table", "executor_costs", "pipeline_costs", "stage_mean"]
