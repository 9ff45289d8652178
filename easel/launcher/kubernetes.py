"""Kubernetes launcher: services as Jobs and Deployments, through the official ``kubernetes`` client.

Advisors and train workers are Jobs; a predictor is a Deployment and a Service; an explainer a Deployment;
the inference workers of a job share one Deployment scaled by PATCH, and so do the shared train pool's workers
(see :mod:`easel.launcher.k8s_objects`).
Each service still gets one row in the ``services`` table (launcher ``"kubernetes"``, ``pod_name`` = the
object's name); :meth:`status` reads the objects back (read/list) and records what it finds, so admin's
supervisor relaunches a failed advisor or train worker exactly as it does for local processes. A request the
API refuses (RBAC, quota, an invalid object) marks the row ERRORED and raises :class:`LaunchRefused` with the
API's own message, so the caller marks the job ERRORED at once — nothing waits for a pod that will never come.

Only namespaced calls are made, in ``EASEL_K8S_NAMESPACE``; the Role in ``deploy/k8s/base`` grants exactly
:data:`API_VERBS`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from easel.db.enums import ServiceKind, ServiceStatus
from easel.db.models import InferenceJob, Service, SubTrainJob, TrainJob
from easel.db.session import session_scope
from easel.jobs import lifecycle
from easel.launcher import k8s_objects as objects
from easel.launcher.base import Launcher, ServiceSpec, ServiceState
from easel.settings import Settings

LAUNCHER = "kubernetes"
_ALIVE = lifecycle.LIVE_SERVICE
# Run as Jobs (the supervisor decides relaunches). An explainer is a one-replica Deployment instead: it runs
# until the inference job stops it, and its explanation in progress is taken over from the stream.
_RUN_TO_END = (ServiceKind.ADVISOR, ServiceKind.TRAIN_WORKER)
# (API group, resource) → the verbs this launcher calls; the Role must grant exactly these.
API_VERBS: dict[tuple[str, str], frozenset[str]] = {
    ("batch", "jobs"): frozenset({"create", "get", "delete"}),
    ("", "pods"): frozenset({"list"}),
    ("apps", "deployments"): frozenset({"create", "get", "delete"}),
    ("apps", "deployments/scale"): frozenset({"patch"}),
    ("", "services"): frozenset({"create", "delete"}),
}


@dataclass(frozen=True)
class _Scaled:
    """Services that share one Deployment, scaled to the number of their live rows: an inference job's
    workers, or the shared train pool's."""

    name: str
    rows: tuple[Any, ...]  # SQL conditions selecting the group's service rows
    pods: str  # label selector of its pods
    body: Callable[[ServiceSpec, int, objects.Owner | None], dict[str, Any]]


class LaunchRefused(ValueError):
    """The Kubernetes API refused a request; the message is the API's own."""


def make_api_client(settings: Settings) -> Any:
    """In-cluster configuration (admin's ServiceAccount), or a kubeconfig outside a cluster."""
    from kubernetes import client, config

    if settings.k8s_kubeconfig:
        return config.new_client_from_config(config_file=settings.k8s_kubeconfig)
    config.load_incluster_config()
    return client.ApiClient()


def api_message(error: Any) -> str:
    """``code Reason: message`` from an ApiException's Status body (or its bare reason)."""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return f"{error.status} {body.get('reason') or error.reason}: {body.get('message') or error.reason}"


class KubernetesLauncher(Launcher):
    name = LAUNCHER

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], api_client: Any | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.namespace = settings.k8s_namespace
        self._api_client = api_client
        self._apis: tuple[Any, Any, Any] | None = None
        # Starts and stops of one job's inference workers scale one Deployment: serialise them.
        self._scale_lock = threading.Lock()

    # -- the client (made on first use: admin with EASEL_LAUNCHER=kubernetes may never launch) -------------
    @property
    def apis(self) -> tuple[Any, Any, Any]:
        if self._apis is None:
            from kubernetes import client

            api_client = self._api_client or make_api_client(self.settings)
            self._apis = (client.CoreV1Api(api_client), client.AppsV1Api(api_client), client.BatchV1Api(api_client))
        return self._apis

    # -- Launcher ------------------------------------------------------------------------------------------
    def start(self, spec: ServiceSpec) -> ServiceState:
        objects.entry_args(spec)  # a spec the image cannot run is refused before anything is recorded
        with session_scope(self.sessions) as session:
            owner = self._owner(session, spec)
            row = lifecycle.new_service(
                name=spec.name, kind=spec.kind, launcher=self.name,
                host=spec.host, port=spec.port, command={"argv": list(spec.argv), "env": dict(spec.env)},
                sub_train_job_id=spec.sub_train_job_id, inference_job_id=spec.inference_job_id,
            )
            session.add(row)
            session.flush()
            service_id = row.id
        try:
            pod_name, host = self._create(spec, service_id, owner)
        except Exception as error:
            refused = self._refusal(error, spec)
            with session_scope(self.sessions) as session:
                row = session.get_one(Service, service_id)
                lifecycle.mark_service_failed(row)
                row.command = {**row.command, "error": refused or f"{type(error).__name__}: {error}"}
            if refused is None:
                raise
            raise LaunchRefused(refused) from None
        with session_scope(self.sessions) as session:
            row = session.get_one(Service, service_id)
            lifecycle.mark_service_running(row, pod_name=pod_name)
            if host is not None:
                row.host = host
            return ServiceState.of(row)

    def stop(self, service_id: str, timeout_s: float = 10.0) -> ServiceState:
        # Recorded first: from here on nobody (the supervisor included) takes the deleted objects for a crash.
        with session_scope(self.sessions) as session:
            row = session.get_one(Service, service_id)
            if row.status not in _ALIVE:
                return ServiceState.of(row)
            lifecycle.mark_service_exited(row, None, stopped=True)
            kind, name, state = row.kind, row.pod_name, ServiceState.of(row)
            group = self._group(row.kind, row.inference_job_id, row.sub_train_job_id)
        if name is not None:
            try:
                if group is not None:
                    self._scale(group, leaving=service_id)
                else:
                    self._delete(kind, name)
            except Exception as error:
                with session_scope(self.sessions) as session:
                    row = session.get_one(Service, service_id)
                    row.command = {**row.command, "error": f"stop failed: {self._refusal(error, None) or error}"}
                raise
        return state

    def status(self, service_id: str) -> ServiceState:
        with session_scope(self.sessions) as session:
            row = session.get_one(Service, service_id)
            if row.status not in _ALIVE or row.pod_name is None:
                return ServiceState.of(row)
            kind, name = row.kind, row.pod_name
            group = self._group(row.kind, row.inference_job_id, row.sub_train_job_id)
        found, exit_code, reason = self._observe(kind, name, service_id, group)
        with session_scope(self.sessions) as session:
            row = session.get_one(Service, service_id)
            if row.status in _ALIVE and found != ServiceStatus.RUNNING:
                lifecycle.mark_service_exited(row, exit_code, to=found)
                if reason is not None:
                    row.command = {**row.command, "error": reason}
            return ServiceState.of(row)

    # -- creating ------------------------------------------------------------------------------------------
    def _create(self, spec: ServiceSpec, service_id: str, owner: objects.Owner | None) -> tuple[str, str | None]:
        core, apps, batch = self.apis
        group = self._group(spec.kind, spec.inference_job_id, spec.sub_train_job_id)
        if group is not None:
            return self._scale(group, joining=spec, owner=owner), None
        name = objects.dns_name(spec.name, service_id[:8])
        if spec.kind == ServiceKind.PREDICTOR:
            deployment, service = objects.predictor_bodies(self.settings, spec, name, service_id, owner)
            created = apps.create_namespaced_deployment(self.namespace, deployment)
            # The Service belongs to the Deployment: the garbage collector removes it with the Deployment.
            service["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                                       "uid": created.metadata.uid}]
            try:
                core.create_namespaced_service(self.namespace, service)
            except Exception:
                self._delete(ServiceKind.PREDICTOR, name)
                raise
            return name, f"{name}.{self.namespace}.svc"
        if spec.kind == ServiceKind.EXPLAINER:
            apps.create_namespaced_deployment(
                self.namespace, objects.explainer_body(self.settings, spec, name, service_id, owner))
            return name, None
        batch.create_namespaced_job(self.namespace, objects.job_body(self.settings, spec, name, service_id, owner))
        return name, None

    def _group(self, kind: ServiceKind, inference_job_id: str | None,
               sub_train_job_id: str | None) -> _Scaled | None:
        """The shared Deployment a service is one replica of, or None for a service with objects of its own."""
        if kind == ServiceKind.INFERENCE_WORKER and inference_job_id is not None:
            return _Scaled(
                objects.workers_name(inference_job_id),
                (Service.inference_job_id == inference_job_id, Service.kind == ServiceKind.INFERENCE_WORKER),
                f"app.kubernetes.io/component=inference-worker,{objects.PREFIX}/job={objects.label_value(inference_job_id)}",
                lambda spec, count, owner: objects.workers_body(self.settings, spec, count, owner))
        if kind == ServiceKind.TRAIN_WORKER and sub_train_job_id is None and inference_job_id is None:
            return _Scaled(
                objects.POOL_NAME,
                (Service.kind == ServiceKind.TRAIN_WORKER, Service.sub_train_job_id.is_(None),
                 Service.inference_job_id.is_(None), Service.launcher == LAUNCHER),
                ",".join(f"{key}={value}" for key, value in objects.POOL_SELECTOR.items()),
                lambda spec, count, _owner: objects.pool_body(self.settings, spec, count))
        return None

    def _scale(self, group: _Scaled, *, joining: ServiceSpec | None = None, leaving: str | None = None,
               owner: objects.Owner | None = None) -> str:
        """Make the group's Deployment as large as its live rows (creating or deleting it)."""
        from kubernetes.client.exceptions import ApiException

        _core, apps, _batch = self.apis
        name = group.name
        with self._scale_lock:
            with session_scope(self.sessions) as session:
                # A joining row is already recorded (counted); a leaving one was just marked STOPPED.
                count = session.scalar(select(func.count()).select_from(Service).where(
                    *group.rows, Service.status.in_(_ALIVE), Service.id != (leaving or "")))
            if joining is not None:
                try:
                    apps.create_namespaced_deployment(self.namespace, group.body(joining, count, owner))
                    return name
                except ApiException as error:
                    if error.status != 409:  # 409 AlreadyExists: another worker of the group made it
                        raise
            if count == 0:  # the group's last live row is gone: its Deployment goes (any replica's kind does)
                self._delete(ServiceKind.INFERENCE_WORKER, name)
            else:
                apps.patch_namespaced_deployment_scale(name, self.namespace, {"spec": {"replicas": count}})
        return name

    # -- reading back --------------------------------------------------------------------------------------
    def _observe(self, kind: ServiceKind, name: str, service_id: str,
                 group: _Scaled | None) -> tuple[ServiceStatus, int | None, str | None]:
        """(status, exit code, reason): RUNNING while its object exists and no pod is stuck for good; a
        run-to-end service ends with its pod (Succeeded → STOPPED, Failed → ERRORED)."""
        from kubernetes.client.exceptions import ApiException

        core, apps, batch = self.apis
        run_to_end = kind in _RUN_TO_END and group is None  # a pool worker is a Deployment's replica
        try:
            if run_to_end:
                batch.read_namespaced_job(name, self.namespace)
            else:
                apps.read_namespaced_deployment(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return ServiceStatus.ERRORED, None, f"{name} was deleted outside Easel"
            raise
        selector = group.pods if group is not None else f"{objects.PREFIX}/service={service_id}"
        for pod in core.list_namespaced_pod(self.namespace, label_selector=selector).items:
            phase = pod.status.phase if pod.status else None
            if phase == "Succeeded" and run_to_end:
                exit_code = _exit_code(pod)
                return ServiceStatus.STOPPED, exit_code if exit_code is not None else 0, None
            if phase == "Failed" and run_to_end:
                return ServiceStatus.ERRORED, _exit_code(pod), f"pod {pod.metadata.name} failed"
            stuck = _stuck(pod)
            if stuck is not None:  # a bad image or missing settings: waiting will not help
                return ServiceStatus.ERRORED, None, f"pod {pod.metadata.name}: {stuck}"
        return ServiceStatus.RUNNING, None, None

    # -- deleting ------------------------------------------------------------------------------------------
    def _delete(self, kind: ServiceKind, name: str) -> None:
        """Delete with foreground propagation (dependents first); an object already gone is fine."""
        from kubernetes.client.exceptions import ApiException

        core, apps, batch = self.apis
        calls = ([batch.delete_namespaced_job] if kind in _RUN_TO_END else
                 [apps.delete_namespaced_deployment, core.delete_namespaced_service] if kind == ServiceKind.PREDICTOR
                 else [apps.delete_namespaced_deployment])
        for call in calls:
            try:
                call(name, self.namespace, propagation_policy="Foreground")
            except ApiException as error:
                if error.status != 404:
                    raise

    # -- helpers -------------------------------------------------------------------------------------------
    def _owner(self, session: Session, spec: ServiceSpec) -> objects.Owner | None:
        if spec.sub_train_job_id is not None:
            sub = session.get(SubTrainJob, spec.sub_train_job_id)
            train = session.get(TrainJob, sub.train_job_id) if sub is not None else None
            if train is not None:
                return objects.Owner(train.app, train.app_version, spec.sub_train_job_id)
        if spec.inference_job_id is not None:
            job = session.get(InferenceJob, spec.inference_job_id)
            train = session.get(TrainJob, job.train_job_id) if job is not None else None
            if train is not None:
                return objects.Owner(train.app, train.app_version, spec.inference_job_id)
        return None

    @staticmethod
    def _refusal(error: Exception, spec: ServiceSpec | None) -> str | None:
        from kubernetes.client.exceptions import ApiException

        if isinstance(error, ApiException):
            what = f"service {spec.name!r}" if spec is not None else "the request"
            return f"Kubernetes refused {what}: {api_message(error)}"
        return None


# Container waiting reasons that mean the pod will not start without a change: a bad image, missing settings.
STUCK = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
                   "CreateContainerError"})


def _stuck(pod: Any) -> str | None:
    for container in (pod.status.container_statuses or []) if pod.status else []:
        waiting = container.state.waiting if container.state else None
        if waiting is not None and waiting.reason in STUCK:
            return f"{waiting.reason}: {waiting.message or ''}".rstrip(": ")
    return None


def _exit_code(pod: Any) -> int | None:
    for container in (pod.status.container_statuses or []) if pod.status else []:
        terminated = container.state.terminated if container.state else None
        if terminated is not None:
            return int(terminated.exit_code)
    return None
