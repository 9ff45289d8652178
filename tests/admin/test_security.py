"""The attacks of issue #13 on admin, replayed against the real stack: forged and out-of-range tokens, login
brute force, weak passwords, oversized and chunked bodies, zip and .npz bombs, a flood of slow template
uploads, numeric overflow, quotas — each refused with a 4xx in the error envelope, memory bounded."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import jwt
import numpy as np
import psutil
import pytest
from admin_helpers import PASSWORD, TASK

from admin.security import ALGORITHM, ISSUER, _signing_key, create_token
from easel.settings import DEV_SECRET_KEY, Settings
from sdk import Client
from tests.support import GOOD_TEMPLATE, ServerThread, npz_file

MiB = 1 << 20
RSS_GROWTH_LIMIT = 100 * MiB


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def peak_rss_growth() -> Iterator[list[int]]:
    """The most this process's RSS grew above its start while the block ran (admin serves in-thread here)."""
    process = psutil.Process()
    start = process.memory_info().rss
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], process.memory_info().rss - start)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], process.memory_info().rss - start)


# -- tokens --------------------------------------------------------------------------------------------
def test_a_token_forged_with_the_development_key_is_refused(url: str, root: Client) -> None:
    me = root.me()
    forged, _ = create_token(me.id, "SUPERADMIN", DEV_SECRET_KEY, 3600)
    answer = httpx.get(f"{url}/users", headers=_bearer(forged))
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"
    assert httpx.get(f"{url}/users", headers=_bearer(root.token)).status_code == 200


@pytest.mark.parametrize("exp", [10**20, 10**400, 1e300])
def test_an_out_of_range_expiry_is_401_not_500(url: str, root: Client, admin_settings: Settings, exp: float) -> None:
    claims = {"sub": root.me().id, "role": "SUPERADMIN", "iss": ISSUER, "iat": int(time.time()), "exp": exp}
    token = jwt.encode(claims, _signing_key(admin_settings.secret_key), algorithm=ALGORITHM)
    answer = httpx.get(f"{url}/users/me", headers=_bearer(token))
    assert answer.status_code == 401 and set(answer.json()) == {"error", "detail"}


# -- logins and passwords ------------------------------------------------------------------------------
def test_login_brute_force_is_locked_out_with_429(url: str, root: Client, admin_settings: Settings) -> None:
    root.create_user("victim@easel.test", PASSWORD, "APP_USER")
    statuses = [httpx.post(f"{url}/tokens", json={"email": "victim@easel.test", "password": f"guess-{i}"}).status_code
                for i in range(admin_settings.login_max_failures)]
    assert statuses == [401] * admin_settings.login_max_failures
    locked = httpx.post(f"{url}/tokens", json={"email": "victim@easel.test", "password": PASSWORD})
    assert locked.status_code == 429 and locked.json()["error"] == "login_locked"
    assert 0 < int(locked.headers["Retry-After"]) <= admin_settings.login_lockout_s
    # another account is not locked by the victim's lockout
    assert httpx.post(f"{url}/tokens", json={"email": root.me().email, "password": "not it"}).status_code == 401


@pytest.mark.parametrize("password", ["12345678", " " * 12, "password1234", "aaaaaaaaaaaa"])
def test_weak_passwords_are_refused_with_the_reason(url: str, root: Client, password: str) -> None:
    answer = httpx.post(f"{url}/users", headers=_bearer(root.token),
                        json={"email": "weak@easel.test", "password": password, "role": "APP_USER"})
    assert answer.status_code == 422 and answer.json()["error"] in ("weak_password", "invalid")
    assert "password" in answer.json()["detail"]


def test_a_user_changes_their_password_under_the_policy(url: str, make_user) -> None:
    client, user = make_user("APP_USER")
    change = f"{url}/users/me/password"
    weak = httpx.put(change, headers=_bearer(client.token),
                     json={"current_password": PASSWORD, "new_password": "qwertyuiop"})
    assert weak.status_code == 422 and weak.json()["error"] == "weak_password"
    wrong = httpx.put(change, headers=_bearer(client.token),
                      json={"current_password": "not my password", "new_password": "violet-harbour-lantern-9"})
    assert wrong.status_code == 401
    done = httpx.put(change, headers=_bearer(client.token),
                     json={"current_password": PASSWORD, "new_password": "violet-harbour-lantern-9"})
    assert done.status_code == 204
    with Client(url) as fresh:
        assert fresh.login(user.email, "violet-harbour-lantern-9").user.id == user.id


# -- bodies -------------------------------------------------------------------------------------------
def test_a_chunked_600_mib_body_is_413_with_bounded_memory(url: str) -> None:
    sent = [0]

    def body() -> Iterator[bytes]:
        chunk = b"x" * MiB
        for _ in range(600):
            sent[0] += len(chunk)
            yield chunk

    with peak_rss_growth() as growth:
        answer = httpx.post(f"{url}/tokens", content=body(), headers={"Content-Type": "application/json"},
                            timeout=300)
    assert answer.status_code == 413 and answer.json()["error"] == "too_large"
    assert "Content-Length" not in answer.request.headers  # it really was chunked
    assert growth[0] <= RSS_GROWTH_LIMIT, f"RSS grew {growth[0] / MiB:.0f} MiB"


def test_json_routes_have_a_small_cap_and_uploads_a_larger_one(url: str, root: Client,
                                                              admin_settings: Settings) -> None:
    padding = "x" * (admin_settings.max_json_bytes + 1)
    answer = httpx.post(f"{url}/tokens", json={"email": "a@b.cd", "password": padding})
    assert answer.status_code == 413
    assert str(admin_settings.max_json_bytes) in answer.json()["detail"]


def _zip_bomb(path: Path, inflated: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("b/ok.png", b"\x89PNG")
        with archive.open("a/bomb.png", "w", force_zip64=True) as member:
            for _ in range(inflated // MiB):
                member.write(bytes(MiB))
    return path


def _npz_bomb(path: Path, inflated: int) -> Path:
    """x of ``inflated`` bytes of zeros (packed ~1000-fold), y to match."""
    columns = 1024
    rows = inflated // (8 * columns)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False,
                                                          "shape": (rows, columns)})
            for _ in range(inflated // MiB):
                member.write(bytes(MiB))
        labels = io.BytesIO()
        np.save(labels, np.arange(rows, dtype=np.int64) % 2)
        archive.writestr("y.npy", labels.getvalue())
    return path


@pytest.mark.parametrize("kind", ["zip", "npz"])
def test_archive_bombs_are_refused_with_bounded_memory(url: str, make_user, files: Path, kind: str) -> None:
    client, _ = make_user("APP_DEVELOPER")
    inflated = 200 * MiB
    bomb = _zip_bomb(files / "bomb.zip", inflated) if kind == "zip" else _npz_bomb(files / "bomb.npz", inflated)
    assert bomb.stat().st_size < inflated // 100
    with peak_rss_growth() as growth, open(bomb, "rb") as handle:
        answer = httpx.post(f"{url}/datasets", headers=_bearer(client.token), data={"name": "bomb", "task": TASK},
                            files={"file": (bomb.name, handle)}, timeout=120)
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_dataset", answer.text
    assert growth[0] <= RSS_GROWTH_LIMIT, f"RSS grew {growth[0] / MiB:.0f} MiB"


# -- template checks ------------------------------------------------------------------------------------
SLOW_TEMPLATE = "import time\ntime.sleep(2)\n" + GOOD_TEMPLATE


def test_42_concurrent_slow_template_uploads_make_no_5xx_and_health_answers(
        url: str, make_user, admin_settings: Settings) -> None:
    client, _ = make_user("MODEL_DEVELOPER")

    def upload(index: int) -> tuple[int, str | None]:
        answer = httpx.post(f"{url}/models", headers=_bearer(client.token), data={"name": f"slow-{index}", "task": TASK},
                            files={"file": ("slow.py", SLOW_TEMPLATE.encode())}, timeout=120)
        return answer.status_code, answer.headers.get("Retry-After")

    with ThreadPoolExecutor(max_workers=42) as pool:
        uploads = [pool.submit(upload, i) for i in range(42)]
        health = [httpx.get(f"{url}/health", timeout=60) for _ in range(3)]
        answers = [future.result() for future in uploads]
    assert [h.status_code for h in health] == [200, 200, 200]
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {201, 422, 429}, statuses  # checked, refused, or told to retry: never a 5xx
    assert all(retry is not None and int(retry) > 0 for status, retry in answers if status == 429)
    assert statuses.count(201) + statuses.count(422) >= 1


# -- numbers -------------------------------------------------------------------------------------------
def test_numeric_overflow_is_422(url: str, make_user) -> None:
    client, _ = make_user("APP_DEVELOPER")
    huge = "1" + "0" * 400
    for path, raw in [
        ("/train_jobs", '{"app": "a", "task": "T", "train_dataset_id": "x", "val_dataset_id": "y", '
                        '"model_ids": ["m"], "budget": {"MODEL_TRIAL_COUNT": HUGE}}'),
        ("/train_jobs", '{"app": "a", "task": "T", "train_dataset_id": "x", "val_dataset_id": "y", '
                        '"model_ids": ["m"], "budget": {"TIME_HOURS": HUGE}}'),
        ("/inference_jobs/a/1/predict", '{"instances": [[0.5, HUGE]], "deadline_s": 1}'),
        ("/inference_jobs/a/1/predict", '{"instances": [[0.5]], "deadline_s": HUGE}'),
        ("/inference_jobs", '{"app": "a", "app_version": HUGE}'),
    ]:
        answer = httpx.post(f"{url}{path}", content=raw.replace("HUGE", huge), headers={**_bearer(client.token),
                                                                  "Content-Type": "application/json"})
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"] == "invalid"


# -- quotas --------------------------------------------------------------------------------------------
def test_per_user_quotas_name_the_limit(url: str, make_user, files: Path, admin_server: ServerThread,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    state = admin_server.app.state.admin
    monkeypatch.setattr(state, "settings", state.settings.model_copy(
        update={"quota_live_jobs": 1, "quota_train_workers": 2}))
    developer, _ = make_user("APP_DEVELOPER")
    train = developer.upload_dataset("train", TASK, npz_file(files / "train.npz")).id
    val = developer.upload_dataset("val", TASK, npz_file(files / "val.npz", n=12)).id
    mlp = next(m.id for m in developer.list_models() if m.name == "SlicedMLP")
    body = {"app": "quota", "task": TASK, "train_dataset_id": train, "val_dataset_id": val, "model_ids": [mlp]}
    too_many_workers = httpx.post(f"{url}/train_jobs", headers=_bearer(developer.token),
                                  json={**body, "budget": {"WORKERS": 3}})
    assert too_many_workers.status_code == 409 and too_many_workers.json()["error"] == "quota_exceeded"
    assert "EASEL_QUOTA_TRAIN_WORKERS" in too_many_workers.json()["detail"]
    assert httpx.post(f"{url}/train_jobs", headers=_bearer(developer.token), json=body).status_code == 201
    second = httpx.post(f"{url}/train_jobs", headers=_bearer(developer.token), json=body)
    assert second.status_code == 409 and "EASEL_QUOTA_LIVE_JOBS" in second.json()["detail"]
    other, _ = make_user("APP_DEVELOPER")  # quotas are per user
    assert httpx.post(f"{url}/train_jobs", headers=_bearer(other.token), json={**body, "app": "quota-b"}
                      ).status_code != 409
