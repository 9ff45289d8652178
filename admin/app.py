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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles

from admin.errors import install_error_handlers
from admin.middleware import BodySizeLimit
from admin.routes import (
    datasets,
    explanations,
    health,
    inference_jobs,
    models,
    tokens,
    train_jobs,
    trials,
    users,
)
from admin.services.supervisor import Supervisor
from admin.services.templates import register_builtin_templates
from admin.services.users import seed_superadmin
from admin.state import AdminState
from admin.version import VERSION
from easel.db.migrate import upgrade
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
]

UPLOAD_OVERHEAD = 1 << 20  # multipart framing and form fields around the file
WEBUI_DIST = Path(__file__).resolve().parents[1] / "webui" / "dist"


def start_up(state: AdminState) -> None:
    """Migrate, seed the superadmin, register built-ins: each idempotent, safe to repeat."""
    upgrade(state.settings.resolved_database_url)
    seed_superadmin(state.sessions, state.settings)
    names = register_builtin_templates(state.sessions)
    log.info("admin ready: built-in templates %s", ", ".join(names))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    state = AdminState.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(start_up, state)
        # Only launched services can die and be replaced; deferred ones are records.
        supervisor = Supervisor(state) if settings.launch_services else None
        if supervisor is not None:
            supervisor.start()
        try:
            yield
        finally:
            if supervisor is not None:
                supervisor.stop()
            state.close()

    app = FastAPI(title="Easel admin", version=VERSION, description=DESCRIPTION, openapi_tags=TAGS,
                  lifespan=lifespan)
    app.state.admin = state
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=max(settings.max_upload_bytes, settings.max_template_bytes)
                       + UPLOAD_OVERHEAD)
    for module in (health, tokens, users, datasets, models, train_jobs, trials, inference_jobs, explanations):
        app.include_router(module.router)
    if WEBUI_DIST.is_dir():  # the dashboard, once built (`npm run build` in webui/)
        app.mount("/ui", StaticFiles(directory=WEBUI_DIST, html=True), name="webui")
    return app
