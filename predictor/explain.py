"""``POST /explain`` and ``GET /explanations/{id}``: explanations of this job's model, off the deadline path.

The predictor only checks and queues: the instance (shape, numbers), the method (``gradcam`` needs a
convolutional model; ``lime`` works for images and vectors), the slice rate (one the trial was profiled at),
the options. A bad request is a 4xx and nothing is queued. A good one is recorded (PostgreSQL + blob store)
and added to the job's explanation stream, which only the job's explainer processes read (see
:mod:`easel.explanations`); the answer waits for the explainer's done-signal, at most ``wait_s`` (default
``EASEL_EXPLAIN_TIMEOUT_S``) — past that the explanation is ERRORED and the answer is a 504.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import suppress
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from easel import explanations as store
from easel.api_errors import ApiError, Invalid, NotFound, Unavailable, describe_validation_errors
from easel.blobstore import BlobStore, make_blob_store
from easel.db.enums import ServiceKind
from easel.db.models import Service, Trial
from easel.db.session import session_scope
from easel.jobs import lifecycle
from easel.model.params import conv_layers, tensor_shapes
from easel.settings import Settings
from predictor.instances import InvalidInstance, to_batch

log = logging.getLogger("easel.predictor")

POLL_S = 2.0  # the record is re-read this often while waiting, in case a done-signal was missed


class ExplainOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_samples: int | None = Field(default=None, ge=10, description="LIME: perturbed samples (default 1000 "
                                                                      "for images, 2000 for vectors)")
    target_class: int | None = Field(default=None, ge=0, description="the class to explain (default: predicted)")
    layer: str | None = Field(default=None, max_length=200, description="Grad-CAM: a convolution's module name "
                                                                        "(default: the last with a spatial map)")
    segments: int | None = Field(default=None, ge=2, le=1000, description="LIME images: superpixels (SLIC)")
    hide_value: float | None = Field(default=None, description="LIME images: the value a hidden superpixel takes")
    seed: int | None = Field(default=None, ge=0, description="LIME: random seed")


class ExplainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instance: Any = Field(description="one query, shaped like the model's input (or flat)")
    method: str = Field(description="gradcam or lime")
    slice_rate: float | None = Field(default=None, gt=0, le=1, description="default: the full width")
    options: ExplainOptions = Field(default_factory=ExplainOptions)
    wait_s: float | None = Field(default=None, gt=0, description="longest wait for the answer")


class TimedOut(ApiError):
    status_code, code = 504, "explanation_timeout"


class Failed(ApiError):
    status_code, code = 502, "explanation_failed"


class DoneSignals:
    """One reader of the job's done-stream that wakes the request waiting for each explanation."""

    def __init__(self, client: aioredis.Redis, stream: str) -> None:
        self.client = client
        self.stream = stream
        self.waiting: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None
        self._last = "$"

    def open(self, explanation_id: str) -> asyncio.Event:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._read())
        event = self.waiting[explanation_id] = asyncio.Event()
        return event

    def close(self, explanation_id: str) -> None:
        self.waiting.pop(explanation_id, None)

    async def _read(self) -> None:
        while self.waiting:
            try:
                answer = await self.client.xread({self.stream: self._last}, block=1000, count=100)
            except Exception as error:  # noqa: BLE001 - the waiters fall back on re-reading the record
                log.warning("cannot read %s: %s", self.stream, error)
                await asyncio.sleep(POLL_S)
                continue
            for _stream, entries in answer or []:
                for entry_id, fields in entries:
                    self._last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    event = self.waiting.get(fields.get(b"id", b"").decode())
                    if event is not None:
                        event.set()


class Explanations:
    """The predictor's side of explanations for one job."""

    def __init__(self, settings: Settings, job_id: str, trial_id: str, input_shape: tuple[int, ...] | None,
                 classes: list[str] | None, rates: list[float], sessions: sessionmaker[Session] | None,
                 blobs: BlobStore | None = None, params_key: str | None = None) -> None:
        self.settings = settings
        self.job_id = job_id
        self.trial_id = trial_id
        self.input_shape = input_shape
        self.classes = classes
        self.rates = sorted(rates, reverse=True)
        self.sessions = sessions
        self.blobs = blobs or make_blob_store(settings)
        self.params_key = params_key
        self._convs: list[str] | None = None
        self._redis: aioredis.Redis | None = None
        self._signals: DoneSignals | None = None

    # -- what the model allows ---------------------------------------------------------------------------
    def convolutions(self) -> list[str]:
        """The model's convolution layers, read once from its parameters' header (no model loaded here)."""
        if self._convs is None:
            convs: list[str] = []
            key = self.params_key
            if key is None and self.sessions is not None:
                with session_scope(self.sessions) as session:
                    key = session.get_one(Trial, self.trial_id).params_key
            if key:
                with self.blobs.open(key) as handle:
                    head = handle.read(8)
                    size = int.from_bytes(head, "little") if len(head) == 8 else 0
                    convs = conv_layers(tensor_shapes(head + handle.read(min(size, 100 << 20))))
            self._convs = convs
        return self._convs

    def check(self, body: ExplainIn) -> tuple[Any, float, dict[str, Any]]:
        """The instance as an array, the slice rate and the options; raises a 4xx naming what is wrong."""
        if body.method not in store.METHODS:
            raise Invalid(f"unknown method {body.method!r}; use one of {', '.join(store.METHODS)}", code="unknown_method")
        if self.input_shape is None:
            raise Invalid("this model's input shape is not recorded with its parameters, so its inputs cannot be "
                          "checked or explained", code="not_explainable")
        try:
            instance = to_batch([body.instance], self.input_shape)[0]
        except InvalidInstance as error:
            raise Invalid(str(error).replace("instance 0: ", "instance: ", 1), code="invalid_instance") from None
        rate = 1.0 if body.slice_rate is None else float(body.slice_rate)
        if body.slice_rate is None and self.rates:
            rate = self.rates[0]
        if self.rates and not any(abs(rate - r) < 1e-9 for r in self.rates):
            raise Invalid(f"slice_rate {rate:g} is not one this model serves ({', '.join(f'{r:g}' for r in self.rates)})",
                          code="invalid_slice_rate")
        options = body.options.model_dump(exclude_none=True)
        image = len(self.input_shape) in (2, 3) and min(self.input_shape[-2:]) > 1
        vector = len(self.input_shape) == 1
        if body.method == "gradcam":
            convs = self.convolutions()
            if not convs or not image:
                raise Invalid("Grad-CAM needs a convolutional model over images, and this model has no convolution "
                              "layer; use method 'lime'", code="not_convolutional")
            if body.options.layer is not None and body.options.layer not in convs:
                raise Invalid(f"options.layer {body.options.layer!r} is not a convolution of this model; choose one "
                              f"of {', '.join(convs)}", code="invalid_layer")
        elif not (image or vector):
            raise Invalid(f"LIME explains images (C×H×W) and feature vectors, not inputs shaped {self.input_shape}",
                          code="not_explainable")
        if body.options.num_samples is not None and body.options.num_samples > self.settings.explain_max_samples:
            raise Invalid(f"options.num_samples {body.options.num_samples} exceeds the most accepted, "
                          f"{self.settings.explain_max_samples}", code="invalid_options")
        if self.classes and body.options.target_class is not None and body.options.target_class >= len(self.classes):
            raise Invalid(f"options.target_class {body.options.target_class} is not a class of this model "
                          f"(0..{len(self.classes) - 1})", code="invalid_options")
        return instance, rate, options

    def explainers_alive(self) -> int:
        """How many of the job's explainer services are recorded as live."""
        assert self.sessions is not None
        with session_scope(self.sessions) as session:
            return int(session.scalar(select(func.count()).select_from(Service).where(
                Service.inference_job_id == self.job_id, Service.kind == ServiceKind.EXPLAINER,
                Service.status.in_(lifecycle.LIVE_SERVICE))) or 0)

    # -- the request path -------------------------------------------------------------------------------
    def _client(self) -> tuple[aioredis.Redis, DoneSignals]:
        if self._redis is None or self._signals is None:
            self._redis = aioredis.Redis.from_url(self.settings.resolved_redis_url, socket_connect_timeout=5)
            self._signals = DoneSignals(self._redis, store.done_stream(self.job_id))
        return self._redis, self._signals

    async def explain(self, body: ExplainIn) -> dict[str, Any]:
        instance, rate, options = self.check(body)
        if self.sessions is None or not await asyncio.to_thread(self.explainers_alive):
            raise Unavailable("no explainer is running for this inference job (EASEL_EXPLAINERS is 0, or they "
                              "died and are being replaced); nothing was queued", code="no_explainer")
        client, signals = self._client()
        explanation_id = await asyncio.to_thread(store.record, self.sessions, self.blobs, self.job_id, self.trial_id,
                                                 body.method, rate, options, instance)
        done = signals.open(explanation_id)
        try:
            try:
                await client.xadd(store.requests_stream(self.job_id), {"id": explanation_id},
                                  maxlen=store.STREAM_MAXLEN, approximate=True)
            except Exception as error:  # noqa: BLE001 - recorded but not queued: say so on the record
                await asyncio.to_thread(store.fail, self.sessions, explanation_id, f"could not be queued: {error}")
                raise Unavailable(f"the explanation queue is unavailable: {error}") from None
            return await self._wait(explanation_id, done, body.wait_s or self.settings.explain_timeout_s)
        finally:
            signals.close(explanation_id)

    async def _wait(self, explanation_id: str, done: asyncio.Event, wait_s: float) -> dict[str, Any]:
        give_up = time.monotonic() + min(wait_s, self.settings.explain_timeout_s)
        assert self.sessions is not None
        while True:
            left = give_up - time.monotonic()
            if left > 0:
                with suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), timeout=min(POLL_S, left))
            row = await asyncio.to_thread(store.load, self.sessions, explanation_id)
            if row is not None and row.status in store.FINAL:
                break
            if left <= 0:
                await asyncio.to_thread(store.fail, self.sessions, explanation_id,
                                        f"timed out: no explainer finished it within {wait_s:g} s")
                row = await asyncio.to_thread(store.load, self.sessions, explanation_id)
                break
        assert row is not None
        if row.status.value == "ERRORED":
            error_class = TimedOut if (row.error or "").startswith("timed out") else Failed
            raise error_class(f"explanation {row.id}: {row.error}")
        return await asyncio.to_thread(store.to_json, row, self.blobs)

    async def get(self, explanation_id: str) -> Any:
        row = await asyncio.to_thread(store.load, self.sessions, explanation_id) if self.sessions else None
        if row is None or row.inference_job_id != self.job_id:
            raise NotFound(f"no explanation {explanation_id} for inference job {self.job_id}")
        return row


def install(app: FastAPI, explanations: Explanations) -> None:
    """Add the explanation routes to the predictor's app."""
    schema = ExplainIn.model_json_schema()

    @app.post("/explain", summary="Explain one instance with LIME or Grad-CAM (its own queue and processes)",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}})
    async def explain(request: Request) -> JSONResponse:
        try:
            body = ExplainIn.model_validate(json.loads(await request.body()))
        except ValidationError as error:
            raise Invalid(describe_validation_errors(list(error.errors()))) from None
        except ValueError:
            raise Invalid("the body is not a valid JSON document") from None
        return JSONResponse(await explanations.explain(body))

    @app.get("/explanations/{explanation_id}", summary="An explanation again, by id")
    async def get_explanation(explanation_id: str) -> JSONResponse:
        row = await explanations.get(explanation_id)
        return JSONResponse(await asyncio.to_thread(store.to_json, row, explanations.blobs))

    @app.get("/explanations/{explanation_id}/overlay.png", summary="An image explanation's overlay",
             response_class=Response)
    async def get_overlay(explanation_id: str) -> Response:
        row = await explanations.get(explanation_id)
        if not row.overlay_key:
            raise NotFound(f"explanation {explanation_id} has no overlay ({row.status.value}, {row.method})")
        return Response(await asyncio.to_thread(explanations.blobs.get_bytes, row.overlay_key), media_type="image/png")


__all__ = ["ExplainIn", "ExplainOptions", "Explanations", "install"]
