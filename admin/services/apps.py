"""An app's options, and automatic serving updates for the apps that opt in.

An app is the name its train jobs share; it belongs to the user who trained its first version. Its options
(``apps`` row, written on the first change) say whether its running inference jobs roll over to every version
that **passes** the promotion gate (``auto_update``: the rolling update of :mod:`admin.services.rollout`, losing
no instance), and whether newly published templates that fit its data are tuned for it (``auto_tune``, see
:mod:`admin.services.knowledge`). A version promoted by an admin's override, or refused by the gate, rolls
nothing: only the gate's yes is trusted to replace what serves.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.services import rollout
from admin.state import AdminState
from easel.db.enums import UpdateStatus
from easel.db.models import App, InferenceJob, InferenceJobUpdate, ModelVersion, TrainJob
from easel.jobs import lifecycle

log = logging.getLogger("admin.apps")


def app_owner(db: Session, app: str) -> str | None:
    """The user who trained the app's first version (None: no such app)."""
    return db.scalar(select(TrainJob.owner_id).where(TrainJob.app == app)
                     .order_by(TrainJob.app_version).limit(1))


def app_options(db: Session, app: str, owner_id: str, *, lock: bool = False) -> App:
    """The app's options row, a default (not added) one when it has none yet."""
    stmt = select(App).where(App.name == app)
    row = db.scalars(stmt.with_for_update() if lock else stmt).first()
    return row if row is not None else App(name=app, owner_id=owner_id, auto_update=False, auto_tune=False)


def start_auto_updates(state: AdminState, db: Session, version: ModelVersion, by_user_id: str) -> list[InferenceJobUpdate]:
    """Roll every running inference job of ``version``'s app over to it, if the app opted in to ``auto_update``.

    Call it once the gate has passed ``version`` into production (its stage change committed). Jobs already
    serving it, or in the middle of another update, are left alone (logged). The updates are committed here and
    run in the background like any rolling update; they are returned.
    """
    options = db.scalars(select(App).where(App.name == version.app)).first()
    if options is None or not options.auto_update:
        return []
    jobs = db.scalars(select(InferenceJob).join(TrainJob, TrainJob.id == InferenceJob.train_job_id).where(
        TrainJob.app == version.app, InferenceJob.status.in_(lifecycle.LIVE_INFERENCE_JOB))
        .order_by(InferenceJob.created_at).with_for_update(of=InferenceJob)).all()
    updates = []
    for job in jobs:
        if job.model_version_id == version.id:
            continue
        running = db.scalar(select(InferenceJobUpdate.id).where(InferenceJobUpdate.inference_job_id == job.id,
                                                                InferenceJobUpdate.status == UpdateStatus.RUNNING))
        if running is not None:
            log.warning("auto-update of %s to #%d skipped for inference job %s: update %s is running", version.app,
                        version.number, job.id, running)
            continue
        update = lifecycle.new_inference_job_update(inference_job_id=job.id, from_version_id=job.model_version_id,
                                                    to_version_id=version.id, by_user_id=by_user_id)
        db.add(update)
        updates.append(update)
    db.commit()
    for update in updates:
        log.info("auto-update: inference job %s of %s rolls to #%d (update %s)", update.inference_job_id,
                 version.app, version.number, update.id)
        rollout.start_update(state, update.id)
    return updates


__all__ = ["app_options", "app_owner", "start_auto_updates"]
