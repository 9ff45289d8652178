"""The environment every launched service gets, so it finds the same database, Redis and broker."""

from __future__ import annotations

from easel.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    optional = {
        "EASEL_BLOB_URL": settings.blob_url, "EASEL_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "EASEL_S3_ACCESS_KEY_ID": settings.s3_access_key_id,
        "EASEL_S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key,
    }
    return {
        **{name: value for name, value in optional.items() if value is not None},
        "EASEL_S3_REGION": settings.s3_region,
        "EASEL_DATA_DIR": str(settings.data_dir),
        "EASEL_DATABASE_URL": settings.resolved_database_url,
        "EASEL_REDIS_URL": settings.resolved_redis_url,
        "EASEL_KAFKA_BOOTSTRAP": settings.resolved_kafka_bootstrap,
        "EASEL_LAUNCHER": settings.launcher.value,
        "EASEL_DEVICE": settings.device.value,
        "EASEL_SECRET_KEY": settings.secret_key,
        "EASEL_ADMIN_HOST": settings.admin_host,
        "EASEL_ADMIN_PORT": str(settings.admin_port),
    }
