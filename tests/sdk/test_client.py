"""Every admin route through ``sdk.Client`` against a real server, plus the SDK's own pieces."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from conftest_sdk_helpers import finish_train_job

from easel.settings import Settings
from easel.stack.process import free_port
from sdk import (
    Client,
    Conflict,
    ConnectionFailed,
    Dataset,
    EaselError,
    Forbidden,
    InferenceJob,
    Invalid,
    Model,
    NotFound,
    Page,
    PayloadTooLarge,
    ProgressReader,
    ServerError,
    TrainBudget,
    Unauthorized,
    Unavailable,
    UnsupportedFormat,
    User,
)
from sdk import (
    TrainJob as TrainJobType,
)
from sdk import (
    Trial as TrialType,
)
from tests.support import GOOD_TEMPLATE, image_zip, npz_file

TASK = "IMAGE_CLASSIFICATION"


def test_every_route(root: Client, url: str, tmp_path: Path, sdk_settings: Settings) -> None:
    assert root.health().status == "ok"
    # users and tokens
    developer = root.create_user("dev@easel.test", "dev-password-1", "MODEL_DEVELOPER")
    assert isinstance(developer, User) and root.get_user(developer.id) == developer
    assert developer.id in [u.id for u in root.list_users()]
    with Client(url) as dev:
        token = dev.login("dev@easel.test", "dev-password-1")
        assert token.user == developer and dev.me() == developer
        # datasets
        train = dev.upload_dataset("train", TASK, image_zip(tmp_path / "train.zip"))
        val = dev.upload_dataset("val", TASK, npz_file(tmp_path / "val.npz", shape=(3, 8, 8)))
        assert isinstance(train, Dataset) and train.num_classes == 2 and val.format == "NPZ"
        assert dev.get_dataset(val.id) == val
        assert isinstance(dev.list_datasets(), Page) and dev.list_datasets().total == 2
        # models
        template = tmp_path / "tiny.py"
        template.write_text(GOOD_TEMPLATE)
        tiny = dev.upload_model("tiny", TASK, template, class_name="TinyModel", access_right="PUBLIC")
        assert isinstance(tiny, Model) and tiny.model_class == "TinyModel"
        assert dev.get_model(tiny.id) == tiny
        mlp = next(m for m in dev.list_models(task=TASK) if m.name == "SlicedMLP")
        spare = dev.upload_model("spare", TASK, template)
        dev.delete_model(spare.id)
        # train jobs and trials
        job = dev.create_train_job("sdk-app", TASK, train.id, val.id, [mlp.id, tiny.id],
                                   budget=TrainBudget(model_trial_count=3, time_hours=0.1, workers=2))
        assert isinstance(job, TrainJobType) and job.app_version == 1 and len(job.sub_train_jobs) == 2
        assert all(len(s.services) == 3 for s in job.sub_train_jobs)
        assert dev.get_train_job("sdk-app", 1) == job
        assert [j.id for j in dev.list_train_jobs(app="sdk-app")] == [job.id]
        trial_ids = finish_train_job(sdk_settings, "sdk-app", 1)
        trials = dev.list_trials("sdk-app", 1)
        assert trials.total == 2 and all(isinstance(t, TrialType) for t in trials)
        assert [t.id for t in dev.list_trials("sdk-app", 1, best=1)] == [trial_ids[1]]
        trial = dev.get_trial(trial_ids[1])
        assert trial.score == 0.9 and trial.has_parameters
        assert dev.get_trial_logs(trial.id).items[0].metrics == {"score": 0.9}
        params = dev.download_trial_parameters(trial.id, tmp_path / "p.safetensors")
        assert json.loads(params.read_bytes()[8:]) == {"__metadata__": {"no": "2"}}
        assert dev.stop_train_job("sdk-app", 1).status == "COMPLETED"  # finished: stop is a no-op
        # inference jobs
        deployed = dev.create_inference_job("sdk-app", workers=2, gpu_count=0)
        assert isinstance(deployed, InferenceJob) and deployed.trial_ids == [trial_ids[1]]
        assert deployed.predictor_url.startswith("http://") and deployed.workers == 2  # recorded at once
        assert dev.get_inference_job("sdk-app", 1) == deployed
        assert dev.list_inference_jobs(app="sdk-app").total == 1
        assert dev.stop_inference_job("sdk-app", 1).status == "STOPPED"
        # what is in use cannot go
        with pytest.raises(Conflict):
            dev.delete_dataset(train.id)
        with pytest.raises(Conflict):
            dev.delete_model(tiny.id)
    root.delete_user(developer.id)
    assert root.get_user(developer.id).banned_at is not None


def test_iter_all_walks_every_page(make_user, tmp_path: Path) -> None:
    client, _ = make_user("APP_DEVELOPER")
    made = [client.upload_dataset(f"d{i}", TASK, npz_file(tmp_path / f"{i}.npz", n=6)).id for i in range(5)]
    assert sorted(d.id for d in client.iter_all(client.list_datasets, page_size=2)) == sorted(made)


def test_upload_progress_reaches_the_total(make_user, tmp_path: Path) -> None:
    client, _ = make_user("APP_DEVELOPER")
    path = npz_file(tmp_path / "big.npz", n=400, shape=(16, 16))  # ~400 KB: several chunks
    calls: list[tuple[int, int]] = []
    dataset = client.upload_dataset("big", TASK, path, progress=lambda sent, total: calls.append((sent, total)))
    assert dataset.num_samples == 400
    size = path.stat().st_size
    assert calls[-1] == (size, size)
    assert [s for s, _ in calls] == sorted(s for s, _ in calls) and len(calls) >= 2


def test_errors_map_to_exception_classes(make_user, url: str, tmp_path: Path) -> None:
    client, _ = make_user("APP_USER")
    with pytest.raises(Forbidden) as forbidden:
        client.list_datasets()
    assert (forbidden.value.status_code, forbidden.value.code) == (403, "forbidden")
    developer, _ = make_user("APP_DEVELOPER")
    with pytest.raises(NotFound):
        developer.get_dataset("00000000-0000-0000-0000-000000000000")
    with pytest.raises(Invalid):
        developer.create_train_job("x", TASK, "a", "b", ["m"] * 21)
    with pytest.raises(UnsupportedFormat):
        bad = tmp_path / "x.txt"
        bad.write_text("x")
        developer.upload_dataset("x", TASK, bad)
    with Client(url, token="garbage") as anonymous, pytest.raises(Unauthorized):
        anonymous.me()
    with Client(f"http://127.0.0.1:{free_port()}") as nowhere, pytest.raises(ConnectionFailed, match="cannot reach"):
        nowhere.health()
    assert issubclass(UnsupportedFormat, Invalid) and issubclass(PayloadTooLarge, Invalid)
    assert all(issubclass(c, EaselError) for c in (Forbidden, NotFound, Conflict, Unauthorized, ConnectionFailed))


def test_error_parsing_without_a_server() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(503, json={"error": "unavailable", "detail": "database down"})
        if request.url.path == "/users/me":
            return httpx.Response(502, text="<html>bad gateway</html>")
        return httpx.Response(500, json={"error": "internal", "detail": "internal server error (reference abc)"})

    with Client("http://easel.invalid", transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(Unavailable, match="database down"):
            client.health()
        with pytest.raises(ServerError, match="bad gateway") as caught:
            client.me()
        assert caught.value.status_code == 502
        with pytest.raises(ServerError, match="reference abc"):
            client.list_models()


def test_progress_reader_is_a_file() -> None:
    seen: list[tuple[int, int]] = []
    reader = ProgressReader(io.BytesIO(b"abcdefgh"), 8, lambda s, t: seen.append((s, t)))
    assert reader.read(3) == b"abc" and reader.read() == b"defgh"
    assert seen == [(3, 8), (8, 8)]
    reader.seek(0)
    assert reader.tell() == 0 and reader.read(2) == b"ab"
