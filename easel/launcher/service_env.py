"""The environment a launched service gets: where the shared parts are, and only its own credentials.

A service connects to PostgreSQL as its own role (:mod:`easel.db.roles`) with that role's URL alone; only admin
gets the token-signing key, the superadmin's password and the other roles' URLs (:data:`ADMIN_ONLY_ENV`), and
none of them leaks to a service through the launcher's own inherited environment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from easel.db.enums import ServiceKind
from easel.db.roles import SERVICE_ROLES
from easel.settings import Settings

#: admin's secrets: never in a service's environment
ADMIN_ONLY_ENV = frozenset({"EASEL_SECRET_KEY", "EASEL_SUPERADMIN_PASSWORD", "EASEL_DATABASE_URL",
                            "EASEL_SERVICE_DATABASE_URLS", "EASEL_METRICS_TOKEN"})


def settings_env(settings: Settings, kind: ServiceKind = ServiceKind.ADMIN) -> dict[str, str]:
    """The ``EASEL_*`` settings of a service of ``kind``: admin's hold its secrets; a service's hold its own
    database role's URL (none for a kind that uses no database)."""
    optional = {
        "EASEL_BLOB_URL": settings.blob_url, "EASEL_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "EASEL_S3_ACCESS_KEY_ID": settings.s3_access_key_id,
        "EASEL_S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key,
    }
    env = {
        **{name: value for name, value in optional.items() if value is not None},
        "EASEL_S3_REGION": settings.s3_region,
        "EASEL_DATA_DIR": str(settings.data_dir),
        "EASEL_REDIS_URL": settings.resolved_redis_url,
        "EASEL_KAFKA_BOOTSTRAP": settings.resolved_kafka_bootstrap,
        "EASEL_LAUNCHER": settings.launcher.value,
        "EASEL_DEVICE": settings.device.value,
        "EASEL_ADMIN_HOST": settings.admin_host,
        "EASEL_ADMIN_PORT": str(settings.admin_port),
    }
    if kind == ServiceKind.ADMIN:
        env["EASEL_DATABASE_URL"] = settings.resolved_database_url
        env["EASEL_SECRET_KEY"] = settings.secret_key
        if settings.service_database_urls:
            env["EASEL_SERVICE_DATABASE_URLS"] = json.dumps(settings.service_database_urls)
    elif kind in SERVICE_ROLES:
        env["EASEL_DATABASE_URL"] = settings.database_url_for(SERVICE_ROLES[kind])
    if kind in (ServiceKind.PREDICTOR, ServiceKind.INFERENCE_WORKER):  # admin's choice of the requests hop's client
        env["EASEL_SERVING_KAFKA_CLIENT"] = settings.serving_kafka_client
    return env


def inherited_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The launcher's own environment minus admin's secrets (a child inherits the rest: PATH, locale ...)."""
    return {key: value for key, value in environ.items() if key not in ADMIN_ONLY_ENV}


__all__ = ["ADMIN_ONLY_ENV", "inherited_env", "settings_env"]
