"""``GET /train_jobs/{app}/{version}/events``: a train job as a live Server-Sent Events stream.

The stream sends event ``snapshot`` (a :class:`TrainJobSnapshot`: the job, its trials and their epochs so far)
at once and again whenever any of it changes, a ``: keep-alive`` comment when nothing changed for a while,
and event ``end`` after the snapshot of a finished job, then closes. PostgreSQL is the record of every trial,
so the stream reads it (every ``EASEL_EVENTS_POLL_S``) rather than the advisor's Redis channel: one reader per
open page, each read a few indexed queries.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from admin.deps import DbSession, Developer, PageParams, State
from admin.routes.common import paginate
from admin.routes.train_jobs import AppPath, VersionPath, owned_train_job, train_job_out
from admin.routes.trials import _with_models
from admin.schemas import EpochPoint, TrainJobSnapshot
from admin.state import AdminState
from easel.db.models import Service, SubTrainJob, TrainJob, Trial, TrialLog
from easel.jobs import lifecycle

router = APIRouter(prefix="/train_jobs", tags=["train jobs"])
TRIALS_LIMIT = 1000
KEEP_ALIVE_S = 15.0


class EventStream(StreamingResponse):
    media_type = "text/event-stream"


def load_snapshot(state: AdminState, job_id: str) -> TrainJobSnapshot:
    with state.sessions() as db:
        job = db.get_one(TrainJob, job_id)
        trials_stmt = select(Trial).join(SubTrainJob, SubTrainJob.id == Trial.sub_train_job_id).where(
            SubTrainJob.train_job_id == job.id
        ).order_by(Trial.created_at, Trial.no, Trial.id)
        trials, total = paginate(db, trials_stmt, PageParams(0, TRIALS_LIMIT))
        epochs: dict[str, list[EpochPoint]] = defaultdict(list)
        if trials:
            logs = db.execute(
                select(TrialLog.trial_id, TrialLog.metrics).where(
                    TrialLog.trial_id.in_([t.id for t in trials]), TrialLog.metrics.is_not(None)
                ).order_by(TrialLog.time, TrialLog.id)
            )
            for trial_id, metrics in logs:
                if isinstance(metrics, dict) and "epoch" in metrics:
                    values = {k: float(v) for k, v in metrics.items() if k != "epoch" and isinstance(v, int | float)}
                    epochs[trial_id].append(EpochPoint(epoch=int(metrics["epoch"]), metrics=values))
        worker_ids = {t.worker_service_id for t in trials if t.worker_service_id}
        names = dict(db.execute(select(Service.id, Service.name).where(Service.id.in_(worker_ids))).all()) \
            if worker_ids else {}
        workers = {t.id: names[t.worker_service_id] for t in trials if t.worker_service_id in names}
        return TrainJobSnapshot(job=train_job_out(db, job), trials=_with_models(db, trials), trials_total=total,
                                trials_limit=TRIALS_LIMIT, epochs=dict(epochs), workers=workers)


def sse(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


@router.get(
    "/{app}/{version}/events", response_class=EventStream,
    summary="Live updates of a train job (Server-Sent Events: `snapshot` on every change, `end` when finished)",
    responses={200: {"model": TrainJobSnapshot, "description": "a text/event-stream whose `snapshot` events carry "
                                                              "this JSON"}},
)
async def train_job_events(app: AppPath, version: VersionPath, db: DbSession, user: Developer, state: State,
                           request: Request) -> EventStream:
    job_id = (await run_in_threadpool(owned_train_job, db, app, version, user)).id
    db.close()  # the stream opens its own short sessions; this one must not stay checked out
    poll_s = state.settings.events_poll_s

    async def stream() -> AsyncIterator[str]:
        last_sent, last_write = "", time.monotonic()
        while not await request.is_disconnected():
            snapshot = await run_in_threadpool(load_snapshot, state, job_id)
            data = snapshot.model_dump_json()
            if data != last_sent:
                last_sent, last_write = data, time.monotonic()
                yield sse("snapshot", data)
            elif time.monotonic() - last_write > KEEP_ALIVE_S:
                last_write = time.monotonic()
                yield ": keep-alive\n\n"
            if snapshot.job.status not in lifecycle.LIVE_JOB:
                yield sse("end", json.dumps({"status": snapshot.job.status.value}))
                return
            await asyncio.sleep(poll_s)

    return EventStream(stream(), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
