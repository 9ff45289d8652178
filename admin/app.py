"""The admin application factory: ``create_app(settings)`` builds a FastAPI app over one database.

On start-up it applies the metadata migrations (idempotent), seeds the superadmin from settings and
registers the built-in model templates. OpenAPI is served at ``/openapi.json`` and docs at ``/docs``.

Example::

    import uvicorn
    from admin.app import create_app
    from easel.settings import get_settings

    uvicorn.run(create_app(get_settings()), host="127.0.0.1", port=3000)
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from admin.dashboard import mount_dashboard
from admin.middleware import BodySizeLimit
from admin.openapi import install_openapi
from admin.routes import (
    apps,
    datasets,
    explanations,
    health,
    inference_jobs,
    inference_live,
    inference_updates,
    models,
    monitoring,
    pool,
    predictor_keys,
    tokens,
    train_job_events,
    train_jobs,
    trials,
    users,
    versions,
)
from admin.services.monitoring import MetricsCollector, make_registry
from admin.services.rollout import fail_interrupted_updates
from admin.services.supervisor import Supervisor
from admin.services.templates import register_builtin_templates
from admin.services.train_pool import TrainPool
from admin.services.users import seed_superadmin
from admin.state import AdminState
from admin.version import VERSION
from easel.api_errors import install_error_handlers
from easel.db.migrate import upgrade
from easel.db.roles import grant_service_roles
from easel.launcher import Launcher
from easel.settings import Settings, get_settings

log = logging.getLogger("admin")

DESCRIPTION = """The control plane of Easel: users and tokens, datasets, model templates, train jobs and
their trials, inference jobs. Authenticate with `POST /tokens`, then send `Authorization: Bearer <token>`.
Every error is JSON `{"error": code, "detail": text}`. List routes take `offset` and `limit`."""

TAGS = [
    {"name": "health", "description": "liveness"},
    {"name": "auth", "description": "log in for a bearer token"},
    {"name": "users", "description": "accounts and roles (admins)"},
    {"name": "datasets", "description": "uploaded, validated training and validation data"},
    {"name": "models", "description": "model templates: built-in sliced networks and uploaded code"},
    {"name": "train jobs", "description": "hyperparameter search over models within a budget"},
    {"name": "trials", "description": "one trained configuration each"},
    {"name": "inference jobs", "description": "serving the best trials of an app version"},
    {"name": "explanations", "description": "LIME and Grad-CAM explanations of a served model's predictions"},
    {"name": "model versions", "description": "registered versions of an app's model, stages, promotion gate"},
    {"name": "apps", "description": "an app's options: automatic serving updates, knowledge-base growth"},
    {"name": "monitoring", "description": "feedback (true labels), per-app serving series, Prometheus /metrics"},
]

UPLOAD_OVERHEAD = 1 << 20  # multipart framing and form fields around the file


def start_up(state: AdminState) -> None:
    """Migrate, seed the superadmin, register built-ins, end interrupted updates: each idempotent, safe to repeat."""
    upgrade(state.settings.resolved_database_url)
    state.boot["migrated"] = time.time()
    grant_service_roles(state.engine)  # each service role its grants on the migrated schema (easel.db.roles)
    seed_superadmin(state.sessions, state.settings)
    names = register_builtin_templates(state.sessions)
    if interrupted := fail_interrupted_updates(state):
        log.warning("%d rolling updates were interrupted by admin stopping: ERRORED", interrupted)
    state.boot["seeded"] = time.time()
    log.info("admin ready: built-in templates %s", ", ".join(names))


def create_app(settings: Settings | None = None,
               launcher: Callable[[sessionmaker[Session]], Launcher] | None = None,
               boot: dict[str, float] | None = None) -> FastAPI:
    """The admin app; ``launcher`` makes its service launcher from the sessions (default: ``EASEL_LAUNCHER``'s);
    ``boot``: start-up phase times so far (``python -m admin`` passes its process start and imports)."""
    settings = settings or get_settings()
    state = AdminState.from_settings(settings, launcher)
    state.boot.update(boot or {})

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(start_up, state)
        supervisor = Supervisor(state)
        supervisor.start()
        pool = TrainPool(state) if state.settings.train_pool_workers > 0 else None
        if pool is not None:
            await run_in_threadpool(pool.start)
        collector = MetricsCollector(state)
        collector.start()
        state.boot["ready"] = time.time()
        try:
            yield
        finally:
            collector.stop()
            if pool is not None:
                pool.stop()
            supervisor.stop()
            state.close()

    app = FastAPI(title="Easel admin", version=VERSION, description=DESCRIPTION, openapi_tags=TAGS,
                  lifespan=lifespan)
    app.state.admin = state
    app.state.metrics_registry = make_registry(state)
    install_error_handlers(app, "admin")
    install_openapi(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_json_bytes, route_bytes={
        ("POST", "/datasets"): settings.max_upload_bytes + UPLOAD_OVERHEAD,
        ("POST", "/models"): settings.max_template_bytes + UPLOAD_OVERHEAD,
    })
    for module in (health, tokens, users, datasets, models, train_jobs, train_job_events, trials, inference_jobs,
                   inference_live, inference_updates, predictor_keys, explanations, versions, apps, monitoring,
                   pool):
        app.include_router(module.router)
    mount_dashboard(app, settings.webui_dist)  # `/` and `/ui/...`: the web dashboard (webui/), once built
    return app
