"""Test support: run admin in a background thread on a real port, reset its tables, make sample files.

Used by the admin, SDK, tuning and serving test suites (``from tests.support import ServerThread``): the server is the real uvicorn
serving the real app over HTTP on 127.0.0.1, against the real database of the test session.

Example::

    with ServerThread(create_app(settings)) as server:
        client = sdk.Client(server.url)
"""

from __future__ import annotations

import csv
import io
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import delete

from easel.db.enums import ModelSource, UserRole
from easel.db.models import (
    App,
    Dataset,
    Feedback,
    InferenceJob,
    InferenceJobUpdate,
    Model,
    ModelVersion,
    PromotionVerdict,
    Service,
    ServingSample,
    StageChange,
    SubTrainJob,
    TrainJob,
    Trial,
    TrialLog,
    User,
)
from easel.db.session import make_engine
from easel.stack.process import free_port


class ServerThread:
    """uvicorn serving ``app`` on 127.0.0.1 in a daemon thread; a context manager."""

    def __init__(self, app: FastAPI, port: int | None = None, start_timeout_s: float = 60.0) -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start_timeout_s = start_timeout_s
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"admin-{self.port}", daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the admin server thread exited during start-up (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the admin server did not start within {self.start_timeout_s:.0f}s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def reset_database(database_url: str) -> None:
    """Delete every row the API creates, keeping superadmins and built-in templates (tests only!)."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            for statement in (
                delete(ServingSample), delete(Feedback), delete(InferenceJobUpdate), delete(StageChange), delete(PromotionVerdict),
                delete(ModelVersion), delete(TrialLog), delete(Trial), delete(Service), delete(InferenceJob), delete(SubTrainJob),
                delete(TrainJob), delete(App), delete(Model).where(Model.source != ModelSource.BUILTIN), delete(Dataset),
                delete(User).where(User.role != UserRole.SUPERADMIN),
            ):
                connection.execute(statement)
    finally:
        engine.dispose()


def reset_login_guard(redis_url: str) -> None:
    """Forget every failed login admin's guard counted (tests only!), so one test's failures lock no other's."""
    import redis

    from admin.services.login_guard import KEY_PREFIX

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(f"{KEY_PREFIX}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# -- sample dataset files ------------------------------------------------------------------------------
def png_bytes(size: tuple[int, int] = (8, 8), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def image_zip(path: Path, classes: dict[str, int] | None = None, *, top: str | None = "data",
              extra: dict[str, bytes] | None = None) -> Path:
    """A zip of class folders with small PNGs (default: 2 classes x 3 images), plus ``extra`` entries."""
    classes = {"cat": 3, "dog": 3} if classes is None else classes
    with zipfile.ZipFile(path, "w") as archive:
        for index, (label, count) in enumerate(classes.items()):
            for i in range(count):
                name = f"{label}/{i}.png" if top is None else f"{top}/{label}/{i}.png"
                archive.writestr(name, png_bytes(color=(40 * index % 256, 10 * i % 256, 90)))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def npz_file(path: Path, n: int = 40, shape: tuple[int, ...] = (8, 8), num_classes: int = 3, **arrays: Any) -> Path:
    """``x`` random floats of ``shape``, ``y`` cycling through ``num_classes`` labels, plus ``arrays``."""
    import numpy as np

    rng = np.random.default_rng(0)
    data = {"x": rng.random((n, *shape), dtype=np.float32), "y": np.arange(n) % num_classes}
    data.update(arrays)
    np.savez(path, **data)
    return path


def csv_file(path: Path, rows: int = 30, features: int = 4, classes: tuple[str, ...] = ("a", "b")) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"f{i}" for i in range(features)] + ["label"])
        for r in range(rows):
            writer.writerow([f"{(r * (i + 1)) % 7 / 7:.3f}" for i in range(features)] + [classes[r % len(classes)]])
    return path


GOOD_TEMPLATE = '''
from easel.model import BaseModel, CategoricalKnob, FixedKnob, FloatKnob, IntegerKnob, PolicyKnob


class TinyModel(BaseModel):
    """A do-nothing template for tests: predicts class 0."""

    TASKS = ("IMAGE_CLASSIFICATION",)

    @classmethod
    def get_knob_config(cls):
        return {
            "lr": FloatKnob(1e-4, 1e-1, log_scale=True),
            "layers": IntegerKnob(1, 4),
            "act": CategoricalKnob(["relu", "tanh"]),
            "epochs": FixedKnob(3),
            "early_stop": PolicyKnob("EARLY_STOP"),
        }

    def train(self, dataset_path, *, context=None, **kwargs):
        self.label = 0

    def evaluate(self, dataset_path, slice_rate=1.0):
        return 0.5

    def predict(self, queries, slice_rate=1.0):
        return [0 for _ in queries]

    def dump_parameters(self):
        return b"0"

    def load_parameters(self, params):
        self.label = int(params)
'''
