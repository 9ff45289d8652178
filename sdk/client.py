"""``sdk.Client``: one method per admin route, typed results, errors as exceptions.

Example — from a dataset to a deployed app::

    from sdk import Client, TrainBudget

    with Client("http://127.0.0.1:3000") as client:
        client.login("dev@example.org", "a long password")
        train = client.upload_dataset("digits-train", "IMAGE_CLASSIFICATION", "train.npz",
                                      progress=lambda sent, total: print(f"{sent}/{total} bytes"))
        val = client.upload_dataset("digits-val", "IMAGE_CLASSIFICATION", "val.npz")
        mlp = next(m for m in client.list_models(task="IMAGE_CLASSIFICATION") if m.name == "SlicedMLP")
        job = client.create_train_job("digits", "IMAGE_CLASSIFICATION", train.id, val.id, [mlp.id],
                                      budget=TrainBudget(model_trial_count=10, workers=2))
        print(job.app, job.app_version, job.status)
        for trial in client.list_trials("digits", job.app_version, best=3):
            print(trial.no, trial.score, trial.knobs)
        deployed = client.create_inference_job("digits", job.app_version, workers=2)
        client.wait_inference_job("digits", job.app_version)          # predictor and workers ready
        answer = client.predict("digits", job.app_version, images, deadline_s=0.5)
        print(answer.totals["served"], [p.label for p in answer])

Every method raises a :class:`sdk.errors.EaselError` subclass on failure (``NotFound``, ``Forbidden``,
``Invalid``, ``Conflict``, ``Unauthorized``, ...).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from sdk.errors import Conflict, ConnectionFailed, error_from_response
from sdk.retry import RetryPolicy, send_with_retry
from sdk.types import (
    ApiKey,
    App,
    Dataset,
    DatasetSchema,
    Explanation,
    Health,
    InferenceJob,
    InferenceJobUpdate,
    Model,
    ModelVersion,
    Page,
    Pool,
    Prediction,
    Token,
    TrainBudget,
    TrainJob,
    Trial,
    TrialLog,
    User,
    Verdict,
)

T = TypeVar("T")
Progress = Callable[[int, int], None]
DEFAULT_URL = "http://127.0.0.1:3000"


class ProgressReader(io.RawIOBase):
    """A read-only file wrapper that reports ``(bytes_sent, total_bytes)`` as the upload reads it."""

    def __init__(self, raw: IO[bytes], total: int, callback: Progress) -> None:
        super().__init__()
        self._raw = raw
        self._total = total
        self._callback = callback
        self._sent = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._raw.fileno()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self._raw.seek(offset, whence)
        self._sent = position
        return position

    def tell(self) -> int:
        return self._raw.tell()

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        if chunk:
            self._sent += len(chunk)
            self._callback(min(self._sent, self._total), self._total)
        return chunk

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


class Client:
    """A client of one admin server. Thread-safe for concurrent calls (httpx's connection pool).

    ``base_url`` is admin's address (``http://host:port``); ``token`` a bearer token from
    :meth:`login` (or saved from an earlier one). ``api_key`` is the default API key :meth:`predict` sends
    to a predictor (see :meth:`create_api_key`). ``timeout`` is seconds per request; uploads use
    ``upload_timeout``.
    """

    def __init__(self, base_url: str = DEFAULT_URL, token: str | None = None, *, api_key: str | None = None,
                 timeout: float = 30.0, upload_timeout: float = 600.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.api_key = api_key
        self.upload_timeout = upload_timeout
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                  headers={"User-Agent": "easel-sdk/0.1"})

    # -- plumbing -------------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, headers=self._headers(), **kwargs)
        except httpx.TransportError as error:
            raise ConnectionFailed(f"cannot reach admin at {self.base_url}: {error}") from error
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        return response.json() if response.content else None

    @staticmethod
    def _params(**params: Any) -> dict[str, Any]:
        return {key: value for key, value in params.items() if value is not None}

    def _upload(self, path: str, file_path: str | os.PathLike[str], fields: dict[str, str],
                progress: Progress | None, content_type: str = "application/octet-stream") -> Any:
        file_path = Path(file_path)
        total = file_path.stat().st_size
        with open(file_path, "rb") as raw:
            handle: IO[bytes] = ProgressReader(raw, total, progress) if progress else raw  # type: ignore[assignment]
            files = {"file": (file_path.name, handle, content_type)}
            return self._json("POST", path, data=fields, files=files, timeout=self.upload_timeout)

    @staticmethod
    def iter_all(list_method: Callable[..., Page[T]], *args: Any, page_size: int = 200, **kwargs: Any) -> Iterator[T]:
        """Every item of a list route, page after page: ``for d in client.iter_all(client.list_datasets): ...``."""
        offset = 0
        while True:
            page = list_method(*args, offset=offset, limit=page_size, **kwargs)
            yield from page.items
            offset += len(page.items)
            if not page.items or offset >= page.total:
                return

    # -- health and auth ------------------------------------------------------------------------------
    def health(self) -> Health:
        """Admin's liveness: ``client.health().status == "ok"``."""
        return Health.from_dict(self._json("GET", "/health"))

    def login(self, email: str, password: str) -> Token:
        """Log in; the token is kept for later calls and returned (with its expiry and user).

        Example: ``client.login("superadmin@easel.local", "easel-superadmin").user.role``
        """
        token = Token.from_dict(self._json("POST", "/tokens", json={"email": email, "password": password}))
        self.token = token.token
        return token

    def logout(self) -> None:
        """Forget the token (tokens expire on their own; there is nothing to revoke server-side)."""
        self.token = None

    # -- users ----------------------------------------------------------------------------------------
    def me(self) -> User:
        """The logged-in user."""
        return User.from_dict(self._json("GET", "/users/me"))

    def create_user(self, email: str, password: str, role: str) -> User:
        """Create a user (admins). ``role``: ADMIN, MODEL_DEVELOPER, APP_DEVELOPER or APP_USER.

        Example: ``client.create_user("ann@example.org", "correct horse battery", "MODEL_DEVELOPER")``
        """
        return User.from_dict(self._json("POST", "/users", json={"email": email, "password": password, "role": role}))

    def list_users(self, *, role: str | None = None, offset: int = 0, limit: int = 50) -> Page[User]:
        """Users, oldest first (admins)."""
        return Page.parse(self._json("GET", "/users", params=self._params(role=role, offset=offset, limit=limit)), User)

    def get_user(self, user_id: str) -> User:
        return User.from_dict(self._json("GET", f"/users/{user_id}"))

    def delete_user(self, user_id: str) -> None:
        """Ban a user (admins): their tokens stop working; their objects stay on record."""
        self._send("DELETE", f"/users/{user_id}")

    # -- datasets -------------------------------------------------------------------------------------
    def upload_dataset(self, name: str, task: str | None, path: str | os.PathLike[str], *,
                       progress: Progress | None = None) -> Dataset:
        """Upload a dataset file: a ``.zip`` of class folders, a ``.npz`` (``x``, ``y``) or a ``.csv``.

        ``task`` ``None`` takes the task kind the server infers from the data (see :meth:`get_dataset_schema`).
        ``progress(sent, total)`` is called as the file is sent. The server validates the file and
        answers :class:`~sdk.errors.Invalid` (422) with the reason if it is not a usable dataset,
        :class:`~sdk.errors.PayloadTooLarge` (413) past its size limit.

        Example: ``client.upload_dataset("cats-vs-dogs", "IMAGE_CLASSIFICATION", "pets.zip").num_classes``
        """
        fields = {"name": name} if task is None else {"name": name, "task": task}
        return Dataset.from_dict(self._upload("/datasets", path, fields, progress))

    def get_dataset_schema(self, dataset_id: str) -> DatasetSchema:
        """The dataset's schema (task kind, input shape, dtype, classes) as inferred on upload or since edited."""
        return DatasetSchema.from_dict(self._json("GET", f"/datasets/{dataset_id}/schema"))

    def edit_dataset_schema(self, dataset_id: str, **changes: Any) -> DatasetSchema:
        """Confirm the schema (no ``changes``) or edit fields of it (``task``, ``input_shape``, ``dtype``,
        ``num_classes``, ``classes``); an edit that contradicts the data raises :class:`~sdk.errors.Invalid`.

        Example: ``client.edit_dataset_schema(ds.id, classes=["cat", "dog"])``
        """
        return DatasetSchema.from_dict(self._json("PATCH", f"/datasets/{dataset_id}/schema", json=changes))

    def list_datasets(self, *, task: str | None = None, offset: int = 0, limit: int = 50) -> Page[Dataset]:
        """Your datasets (all, for admins), newest first."""
        params = self._params(task=task, offset=offset, limit=limit)
        return Page.parse(self._json("GET", "/datasets", params=params), Dataset)

    def get_dataset(self, dataset_id: str) -> Dataset:
        return Dataset.from_dict(self._json("GET", f"/datasets/{dataset_id}"))

    def delete_dataset(self, dataset_id: str) -> None:
        """Delete a dataset (:class:`~sdk.errors.Conflict` while a train job uses it)."""
        self._send("DELETE", f"/datasets/{dataset_id}")

    # -- models ---------------------------------------------------------------------------------------
    def upload_model(self, name: str, task: str, path: str | os.PathLike[str], *, class_name: str | None = None,
                     access_right: str = "PRIVATE", dependencies: dict[str, str] | None = None,
                     progress: Progress | None = None) -> Model:
        """Upload a model template (a ``.py`` file with a ``easel.model.BaseModel`` subclass).

        The server checks it in a sandboxed process (syntax, import, knob config) and answers
        :class:`~sdk.errors.Invalid` with the reason if it is not usable.

        Example: ``client.upload_model("my-cnn", "IMAGE_CLASSIFICATION", "my_cnn.py", class_name="MyCnn")``
        """
        fields = {"name": name, "task": task, "access_right": access_right}
        if class_name:
            fields["class_name"] = class_name
        if dependencies:
            fields["dependencies"] = json.dumps(dependencies)
        return Model.from_dict(self._upload("/models", path, fields, progress, "text/x-python"))

    def list_models(self, *, task: str | None = None, offset: int = 0, limit: int = 50) -> Page[Model]:
        """Templates you can use: built-in, public, and your own."""
        params = self._params(task=task, offset=offset, limit=limit)
        return Page.parse(self._json("GET", "/models", params=params), Model)

    def get_model(self, model_id: str) -> Model:
        return Model.from_dict(self._json("GET", f"/models/{model_id}"))

    def set_model_access(self, model_id: str, access_right: str) -> Model:
        """Make a template you own ``PUBLIC`` (every developer may use it: opted-in apps it fits get it tuned) or
        ``PRIVATE``."""
        return Model.from_dict(self._json("PATCH", f"/models/{model_id}", json={"access_right": access_right}))

    def delete_model(self, model_id: str) -> None:
        """Delete an uploaded template you own (built-ins and templates in use cannot be deleted)."""
        self._send("DELETE", f"/models/{model_id}")

    # -- train jobs and trials ------------------------------------------------------------------------
    def create_train_job(self, app: str, task: str | None, train_dataset_id: str, val_dataset_id: str,
                         model_ids: list[str] | None = None, *,
                         budget: TrainBudget | dict[str, Any] | None = None) -> TrainJob:
        """Start the next version of ``app``: a hyperparameter search over each model within ``budget``.

        With no ``model_ids`` the server picks every template you can use whose declared schema fits the training
        data (``job.candidates`` says which and why); ``task`` ``None`` is the training dataset's.

        Example::

            job = client.create_train_job("digits", "IMAGE_CLASSIFICATION", train.id, val.id, [mlp.id],
                                          budget=TrainBudget(model_trial_count=20, time_hours=0.5))
        """
        body: dict[str, Any] = {"app": app, "train_dataset_id": train_dataset_id,
                                "val_dataset_id": val_dataset_id, "model_ids": list(model_ids or [])}
        if task is not None:
            body["task"] = task
        if budget is not None:
            body["budget"] = budget.to_dict() if isinstance(budget, TrainBudget) else dict(budget)
        return TrainJob.from_dict(self._json("POST", "/train_jobs", json=body))

    def list_train_jobs(self, *, app: str | None = None, offset: int = 0, limit: int = 50) -> Page[TrainJob]:
        """Your train jobs (all, for admins), newest first; ``app`` keeps one app's versions."""
        params = self._params(app=app, offset=offset, limit=limit)
        return Page.parse(self._json("GET", "/train_jobs", params=params), TrainJob)

    def get_train_job(self, app: str, version: int) -> TrainJob:
        return TrainJob.from_dict(self._json("GET", f"/train_jobs/{app}/{version}"))

    def get_pool(self) -> Pool:
        """The shared train pool: its workers, who holds them and why (cost-aware score, fairness floor), and
        each user's share (admins see every user; others their own)."""
        return Pool.from_dict(self._json("GET", "/pool"))

    def stop_train_job(self, app: str, version: int) -> TrainJob:
        """Stop a train job's services and unfinished trials (a no-op on a finished job)."""
        return TrainJob.from_dict(self._json("POST", f"/train_jobs/{app}/{version}/stop"))

    def list_trials(self, app: str, version: int, *, best: int | None = None, objective: str | None = None,
                    offset: int = 0, limit: int = 50) -> Page[Trial]:
        """A train job's trials in order; with ``best=k`` only the k best completed ones, best first,
        ranked by ``objective``: ``"full_width"`` (default) or ``"mean_across_rates"``.

        Example: ``client.list_trials("digits", 1, best=3, objective="mean_across_rates")``
        """
        params = self._params(best=best, objective=objective, offset=offset, limit=limit)
        return Page.parse(self._json("GET", f"/train_jobs/{app}/{version}/trials", params=params), Trial)

    def get_trial(self, trial_id: str) -> Trial:
        return Trial.from_dict(self._json("GET", f"/trials/{trial_id}"))

    def get_trial_logs(self, trial_id: str, *, offset: int = 0, limit: int = 200) -> Page[TrialLog]:
        """A trial's log lines (with per-epoch metrics), oldest first."""
        params = self._params(offset=offset, limit=limit)
        return Page.parse(self._json("GET", f"/trials/{trial_id}/logs", params=params), TrialLog)

    def get_trial_parameters(self, trial_id: str) -> bytes:
        """A trial's trained parameters (safetensors bytes: load with ``safetensors.torch.load``)."""
        return self._send("GET", f"/trials/{trial_id}/parameters", timeout=self.upload_timeout).content

    def download_trial_parameters(self, trial_id: str, path: str | os.PathLike[str]) -> Path:
        """Save a trial's parameters to ``path``; returns the path."""
        target = Path(path)
        target.write_bytes(self.get_trial_parameters(trial_id))
        return target

    # -- inference jobs -------------------------------------------------------------------------------
    def create_inference_job(self, app: str, app_version: int = -1, *, workers: int = 1,
                             gpu_count: int = 0, model_version: int | None = None) -> InferenceJob:
        """Deploy the best trials of a finished train job (``app_version=-1``: the latest version), or the app's
        registered ``model_version``.

        Example: ``client.create_inference_job("digits", workers=2).predictor_url``
        """
        body: dict[str, Any] = {"app": app, "app_version": app_version, "workers": workers,
                                "budget": {"GPU_COUNT": gpu_count}}
        if model_version is not None:
            body["model_version"] = model_version
        return InferenceJob.from_dict(self._json("POST", "/inference_jobs", json=body))

    def list_inference_jobs(self, *, app: str | None = None, offset: int = 0, limit: int = 50) -> Page[InferenceJob]:
        params = self._params(app=app, offset=offset, limit=limit)
        return Page.parse(self._json("GET", "/inference_jobs", params=params), InferenceJob)

    def get_inference_job(self, app: str, version: int) -> InferenceJob:
        """The running (else the latest) inference job of an app version."""
        return InferenceJob.from_dict(self._json("GET", f"/inference_jobs/{app}/{version}"))

    def stop_inference_job(self, app: str, version: int) -> InferenceJob:
        return InferenceJob.from_dict(self._json("POST", f"/inference_jobs/{app}/{version}/stop"))

    def wait_inference_job(self, app: str, version: int, *, timeout_s: float = 120.0,
                           poll_s: float = 0.5) -> InferenceJob:
        """Wait until the inference job is ``RUNNING`` (its predictor and every worker ready) and return it.

        Raises :class:`~sdk.errors.Conflict` if it stops or errors first, ``TimeoutError`` after ``timeout_s``.
        """
        give_up = time.monotonic() + timeout_s
        while True:
            job = self.get_inference_job(app, version)
            if job.status == "RUNNING":
                return job
            if job.status in ("STOPPED", "ERRORED", "COMPLETED"):
                raise Conflict(f"inference job {app} v{version} is {job.status}", status_code=409, code="not_running")
            if time.monotonic() >= give_up:
                raise TimeoutError(f"inference job {app} v{version} was not RUNNING within {timeout_s:.0f}s "
                                   f"(status {job.status})")
            time.sleep(poll_s)

    # -- predictor API keys -----------------------------------------------------------------------------
    def create_api_key(self, app: str, version: int, name: str = "default") -> ApiKey:
        """A new API key of the app version's inference job's predictor; ``.key`` is the secret, shown only now.

        Example: ``client.api_key = client.create_api_key("digits", 1, "web-shop").key``
        """
        return ApiKey.from_dict(self._json("POST", f"/inference_jobs/{app}/{version}/keys", json={"name": name}))

    def list_api_keys(self, app: str, version: int, *, offset: int = 0, limit: int = 50) -> Page[ApiKey]:
        """The inference job's API keys (revoked ones too; no secrets)."""
        params = self._params(offset=offset, limit=limit)
        return Page.parse(self._json("GET", f"/inference_jobs/{app}/{version}/keys", params=params), ApiKey)

    def revoke_api_key(self, app: str, version: int, key_id: str) -> None:
        """Revoke a key: its predictor refuses it within the server's ``EASEL_PREDICTOR_KEY_CACHE_S``."""
        self._send("DELETE", f"/inference_jobs/{app}/{version}/keys/{key_id}")

    def predict(self, app: str, version: int, instances: list[Any], deadline_s: float = 1.0, *,
                predictor_url: str | None = None, api_key: str | None = None,
                retry: RetryPolicy | None = None) -> Prediction:
        """Predict ``instances`` with an app version's running inference job, answering each by ``deadline_s``.

        Every instance comes back, in order, as ``served`` (label, probabilities, the slice rate used and its
        latency) or ``dropped`` (not done by the deadline). A bad instance raises
        :class:`~sdk.errors.Invalid` whose detail names its index; nothing is queued then.
        ``predictor_url`` skips looking the job up (e.g. ``job.predictor_url``). ``api_key`` (default: the
        client's ``api_key``) is an API key of the job (:meth:`create_api_key`); without a valid one the
        predictor answers :class:`~sdk.errors.Unauthorized`.

        A request the predictor could not answer — it died under it or is being relaunched (no connection),
        or it has no worker alive yet (503) — is sent again with backoff while ``retry``'s window lasts
        (:class:`~sdk.retry.RetryPolicy`: 10 s by default; ``RetryPolicy(window_s=0)`` never retries), each
        attempt with the whole ``deadline_s`` and the same ``Idempotency-Key``. ``Prediction.attempts`` says
        how many attempts it took. When the window closes without an answer the last failure is raised:
        :class:`~sdk.errors.ConnectionFailed` or :class:`~sdk.errors.Unavailable`. A 429 (overloaded) is never
        retried here: it is raised at once as an :class:`~sdk.errors.ApiError` with ``status_code`` 429.

        Example::

            answer = client.predict("digits", 1, [image.tolist() for image in images], deadline_s=0.2)
            print(answer.served, answer.dropped, answer.totals["by_rate"])
        """
        url = (predictor_url or self._predictor_url(app, version)).rstrip("/")
        body = {"instances": instances, "deadline_s": deadline_s}
        timeout = deadline_s + max(10.0, self._http.timeout.read or 0.0)
        key = api_key or self.api_key
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        record = send_with_retry(
            lambda headers: self._http.post(f"{url}/predict", json=body, headers={**auth, **headers},
                                            timeout=timeout),
            retry or RetryPolicy())
        if record.response is None:
            failed = ConnectionFailed(f"cannot reach the predictor at {url} ({record.attempts} attempts): "
                                      f"{record.error}")
            failed.attempts = record.attempts
            raise failed from record.error
        if record.response.status_code >= 400:
            error = error_from_response(record.response)
            error.attempts = record.attempts
            raise error
        answer = Prediction.from_dict(record.response.json())
        return dataclasses.replace(answer, attempts=record.attempts, request_id=record.request_id)

    def explain(self, app: str, version: int, instance: Any, method: str = "gradcam", *,
                slice_rate: float | None = None, options: dict[str, Any] | None = None,
                wait_s: float | None = None, save_overlay: str | os.PathLike[str] | None = None) -> Explanation:
        """Explain one instance with the app version's running inference job: ``method`` is ``"gradcam"``
        (convolutional models) or ``"lime"`` (images and feature vectors); ``slice_rate`` picks the width
        explained (default: full). ``options``: ``num_samples``, ``target_class``, ``layer``, ``segments``,
        ``hide_value``, ``seed``. It runs on the job's explainers, never in the deadline path; the call waits
        for it (at most ``wait_s``, default the server's ``EASEL_EXPLAIN_TIMEOUT_S``). ``save_overlay``
        writes the overlay PNG to that file or folder.

        A bad instance, an unknown method or Grad-CAM on a model without convolutions raises
        :class:`~sdk.errors.Invalid` and nothing is queued.

        Example::

            heat = client.explain("digits", 1, image.tolist(), "gradcam", slice_rate=0.5, save_overlay="out/")
            print(heat.label, heat.details["target_layer"], len(heat.heatmap))
        """
        body: dict[str, Any] = {"instance": instance, "method": method, "options": dict(options or {})}
        if slice_rate is not None:
            body["slice_rate"] = slice_rate
        if wait_s is not None:
            body["wait_s"] = wait_s
        timeout = (wait_s or 300.0) + 30.0
        explanation = Explanation.from_dict(self._json("POST", f"/inference_jobs/{app}/{version}/explain",
                                                       json=body, timeout=timeout))
        if save_overlay is not None:
            explanation.save_overlay(save_overlay)
        return explanation

    def get_explanation(self, explanation_id: str) -> Explanation:
        """An explanation again, by id (with its heat map or weights and overlay)."""
        return Explanation.from_dict(self._json("GET", f"/explanations/{explanation_id}"))

    # -- apps -------------------------------------------------------------------------------------------------
    def get_app(self, app: str) -> App:
        """An app's options (``auto_update``, ``auto_tune``)."""
        return App.from_dict(self._json("GET", f"/apps/{app}"))

    def set_app(self, app: str, *, auto_update: bool | None = None, auto_tune: bool | None = None) -> App:
        """Opt an app in or out of automatic serving updates (``auto_update``: its inference jobs roll to each
        version that passes the promotion gate) and of knowledge-base growth (``auto_tune``)."""
        body = {k: v for k, v in {"auto_update": auto_update, "auto_tune": auto_tune}.items() if v is not None}
        return App.from_dict(self._json("PATCH", f"/apps/{app}", json=body))

    # -- model registry ---------------------------------------------------------------------------------------
    def register_version(self, app: str, *, trial_id: str | None = None, app_version: int = -1) -> ModelVersion:
        """Register a completed trial (default: the best of the app's train job ``app_version``, -1 the latest)
        as the app's next model version, in ``staging``."""
        body: dict[str, Any] = {"app_version": app_version}
        if trial_id is not None:
            body["trial_id"] = trial_id
        return ModelVersion.from_dict(self._json("POST", f"/apps/{app}/versions", json=body))

    def list_versions(self, app: str, *, offset: int = 0, limit: int = 50) -> Page[ModelVersion]:
        params = self._params(offset=offset, limit=limit)
        return Page.parse(self._json("GET", f"/apps/{app}/versions", params=params), ModelVersion)

    def get_version(self, app: str, number: int) -> ModelVersion:
        """One model version with its stage history (oldest first)."""
        return ModelVersion.from_dict(self._json("GET", f"/apps/{app}/versions/{number}"))

    def set_stage(self, app: str, number: int, stage: str, *, dataset_id: str | None = None,
                  tolerance: float | None = None, override: bool = False, reason: str = "",
                  timeout_s: float = 900.0) -> tuple[ModelVersion, Verdict | None]:
        """Move a version to ``staging``, ``production`` or ``archived``. To production it must pass the promotion
        gate on the held-out ``dataset_id`` (a refusal raises :class:`~sdk.errors.Conflict` naming the failed
        checks; the verdict is stored); ``override`` (admins) promotes it anyway, recorded as an override.

        Example::

            version, verdict = client.set_stage("digits", 3, "production", dataset_id=holdout.id)
            print(verdict.numbers["rates"])
        """
        body: dict[str, Any] = {"stage": stage, "override": override, "reason": reason}
        if dataset_id is not None:
            body["dataset_id"] = dataset_id
        if tolerance is not None:
            body["tolerance"] = tolerance
        data = self._json("POST", f"/apps/{app}/versions/{number}/stage", json=body, timeout=timeout_s)
        verdict = data.get("verdict")
        return ModelVersion.from_dict(data["version"]), Verdict.from_dict(verdict) if verdict else None

    def list_verdicts(self, app: str, number: int) -> list[Verdict]:
        """The promotion gate's verdicts on a version, newest first."""
        return [Verdict.from_dict(v) for v in self._json("GET", f"/apps/{app}/versions/{number}/verdicts")]

    def update_inference_job(self, app: str, version: int, model_version: int) -> InferenceJobUpdate:
        """Roll the app version's running inference job over to registered ``model_version`` (an older one: a
        rollback) without losing an instance. Returns at once; poll :meth:`list_inference_job_updates`."""
        return InferenceJobUpdate.from_dict(self._json("POST", f"/inference_jobs/{app}/{version}/update",
                                                       json={"model_version": model_version}))

    def list_inference_job_updates(self, app: str, version: int) -> list[InferenceJobUpdate]:
        """The job's rolling updates, newest first."""
        return [InferenceJobUpdate.from_dict(u) for u in self._json("GET", f"/inference_jobs/{app}/{version}/updates")]

    def wait_inference_job_update(self, app: str, version: int, update_id: str, *, timeout_s: float = 300.0,
                                  poll_s: float = 0.5) -> InferenceJobUpdate:
        """Wait until the update has ended (COMPLETED or ERRORED) and return it; ``TimeoutError`` otherwise."""
        give_up = time.monotonic() + timeout_s
        while True:
            update = next(u for u in self.list_inference_job_updates(app, version) if u.id == update_id)
            if update.status != "RUNNING":
                return update
            if time.monotonic() >= give_up:
                raise TimeoutError(f"update {update_id} still RUNNING after {timeout_s:.0f}s")
            time.sleep(poll_s)

    def send_feedback(self, app: str, version: int, task_id: str, labels: list[Any]) -> dict[str, Any]:
        """The true labels of one answered request (by its ``task_id``, in instance order); returns the job's
        measured effective accuracy so far (correct served instances / labelled instances)."""
        return self._json("POST", f"/inference_jobs/{app}/{version}/feedback",
                          json={"task_id": task_id, "labels": labels})

    def app_series(self, app: str, *, limit: int = 500) -> list[dict[str, Any]]:
        """The app's serving series, oldest first: admin's samples of its inference jobs' metrics (``at`` and
        ``values``: requests, served, dropped, expected effective accuracy, width mix, latency, queue lag, ...)."""
        return self._json("GET", f"/apps/{app}/series", params={"limit": limit})

    def _predictor_url(self, app: str, version: int) -> str:
        job = self.get_inference_job(app, version)
        if job.status not in ("STARTED", "RUNNING", "DEGRADED") or not job.predictor_url:  # DEGRADED still serves
            raise Conflict(f"{app} v{version} has no running inference job with a predictor", status_code=409,
                           code="not_running")
        return job.predictor_url
