from pathlib import Path

import pytest

from easel.settings import DeviceKind, LauncherKind, SettingsError, get_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("EASEL_"):
            monkeypatch.delenv(key)


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EASEL_DATA_DIR", str(tmp_path))
    settings = get_settings()
    assert settings.data_dir == tmp_path.resolve()
    assert settings.launcher is LauncherKind.LOCAL
    assert settings.device is DeviceKind.AUTO
    assert settings.resolved_database_url.endswith(f":{settings.postgres_port}/easel")
    assert settings.resolved_redis_url == f"redis://127.0.0.1:{settings.redis_port}/0"
    assert settings.resolved_kafka_bootstrap == f"127.0.0.1:{settings.kafka_port}"


def test_explicit_urls_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASEL_DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("EASEL_REDIS_URL", "redis://redis.example:6379/1")
    monkeypatch.setenv("EASEL_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    settings = get_settings()
    assert settings.resolved_database_url == "sqlite:///x.db"
    assert settings.resolved_redis_url == "redis://redis.example:6379/1"
    assert settings.resolved_kafka_bootstrap == "k1:9092,k2:9092"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EASEL_ADMIN_PORT", "not-a-port"),
        ("EASEL_ADMIN_PORT", "70000"),
        ("EASEL_LAUNCHER", "docker-swarm"),
        ("EASEL_DEVICE", "tpu"),
        ("EASEL_DATABASE_URL", "mysql://db"),
        ("EASEL_REDIS_URL", "http://redis"),
        ("EASEL_KAFKA_BOOTSTRAP", "broker-without-port"),
        ("EASEL_SECRET_KEY", "short"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        get_settings()
    assert variable in str(caught.value)
    assert repr(value) in str(caught.value)


def test_several_bad_values_are_all_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASEL_ADMIN_PORT", "x")
    monkeypatch.setenv("EASEL_DEVICE", "y")
    with pytest.raises(SettingsError) as caught:
        get_settings()
    assert "EASEL_ADMIN_PORT" in str(caught.value)
    assert "EASEL_DEVICE" in str(caught.value)
