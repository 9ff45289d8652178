"""The Kubernetes objects a service becomes: pure builders of the JSON bodies the launcher sends.

* advisor and train worker → a ``batch/v1`` Job (``backoffLimit: 0``: admin's supervisor decides relaunches,
  as it does for local processes); deleting the Job deletes its pod;
* predictor → a Deployment of one replica plus a ClusterIP Service in front of it;
* inference workers of one inference job → one Deployment whose replica count is the number of live workers;
* an explainer → a Deployment of one replica (it runs until stopped; Kubernetes restarts it if it crashes);
* the shared train pool's generic workers (``EASEL_TRAIN_POOL_WORKERS``) → one Deployment ``train-pool`` whose
  replica count is the number of live pool slots (its pods are interchangeable: each announces itself to the
  pool in Redis; Kubernetes restarts a crashed one).

A pod whose service runs model-template code (train worker, inference worker — standbys included —,
explainer) has two containers: the platform's, which holds the role's Secret and talks to the data services,
and the *model-runner*, which runs the template children and holds nothing (:func:`runner_container`); they
share only a memory ``emptyDir`` with the runner's socket. Every object carries the recommended ``app.kubernetes.io/*`` labels plus ``easel.io/*`` labels naming the
app, its version, the job and the service, so ``kubectl get -l`` finds what Easel runs. Pods run the image's
``easel <verb>`` entry point as a non-root user with settings from the shared ConfigMap and their own role's
Secret (:func:`settings_secret`): a service pod never sees admin's Secret (the signing key, the owner's URL).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from easel.db.enums import ServiceKind
from easel.db.roles import SERVICE_ROLES
from easel.launcher.base import ServiceSpec
from easel.sandbox.handoff import SOCKET_NAME
from easel.settings import Settings

ENTRY_POINTS = {
    ServiceKind.ADMIN: "admin",
    ServiceKind.ADVISOR: "advisor",
    ServiceKind.TRAIN_WORKER: "train-worker",
    ServiceKind.PREDICTOR: "predictor",
    ServiceKind.INFERENCE_WORKER: "inference-worker",
    ServiceKind.EXPLAINER: "explainer",
}
# Settings that name paths or identities of admin's own host, not the pod's.
HOST_ONLY_ENV = frozenset({"PYTHONPATH", "EASEL_SERVICE_ID", "EASEL_WORKER_INDEX"})
DATA_DIR = "/var/lib/easel"
RUN_AS = 10001
# Pods whose service runs model-template code get a model-runner container (see :func:`runner_container`).
RUNS_MODEL_CODE = frozenset({ServiceKind.TRAIN_WORKER, ServiceKind.INFERENCE_WORKER, ServiceKind.EXPLAINER})
RUNNER_NAME = "model-runner"
RUNNER_UID = 10002  # not the platform's: the runner's children can neither signal nor read the platform
SANDBOX_DIR = "/run/easel-sandbox"  # the memory emptyDir both containers share: the runner's socket
SANDBOX_VOLUME, SCRATCH_VOLUME = "sandbox", "runner-scratch"
SANDBOX_DIR_LIMIT = "16Mi"  # a socket: batches travel through a memfd handed over it, not through files
PREFIX = "easel.io"
_INVALID = re.compile(r"[^a-z0-9-]+")
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Owner:
    """What the labels say a service belongs to."""

    app: str
    version: int
    job_id: str


def dns_name(base: str, suffix: str) -> str:
    """A DNS-1123 label (at most 63 characters) from ``base``, ending in ``-suffix`` so it stays unique."""
    cleaned = _INVALID.sub("-", base.lower()).strip("-") or "easel"
    return f"{cleaned[:62 - len(suffix)].rstrip('-')}-{suffix}"


def label_value(value: str) -> str:
    return _LABEL_VALUE.sub("-", value)[:63].strip("-._")


def entry_args(spec: ServiceSpec) -> tuple[str, list[str]]:
    """The image's entry-point verb and its arguments: what follows ``-m <module>`` in the local argv."""
    verb = ENTRY_POINTS.get(spec.kind)
    argv = list(spec.argv)
    if verb is None or "-m" not in argv[:-1]:
        raise ValueError(f"service {spec.name!r} ({spec.kind.value}) has no entry point in the Easel image")
    return verb, argv[argv.index("-m") + 2:]


def labels(kind: ServiceKind, owner: Owner | None, service_id: str | None = None) -> dict[str, str]:
    out = {
        "app.kubernetes.io/name": "easel",
        "app.kubernetes.io/component": ENTRY_POINTS.get(kind, kind.value.lower()),
        "app.kubernetes.io/part-of": "easel",
        "app.kubernetes.io/managed-by": "easel-admin",
    }
    if owner is not None:
        out |= {f"{PREFIX}/app": label_value(owner.app), f"{PREFIX}/app-version": str(owner.version),
                f"{PREFIX}/job": label_value(owner.job_id)}
    if service_id is not None:
        out[f"{PREFIX}/service"] = service_id
    return out


def gpu_count(spec: ServiceSpec) -> int:
    try:
        return max(0, int(spec.env.get("EASEL_GPU_COUNT", "0")))
    except ValueError:
        raise ValueError(f"EASEL_GPU_COUNT of service {spec.name!r} is not an integer") from None


def settings_secret(settings: Settings, kind: ServiceKind) -> str:
    """The Secret a pod takes its secret settings from: admin's ``EASEL_K8S_SETTINGS_SECRET``, a service's
    ``<that>-<role>`` (e.g. ``easel-secrets-predictor``: its own database URL, S3 keys — no signing key)."""
    role = SERVICE_ROLES.get(kind)
    return f"{settings.k8s_settings_secret}-{role}" if role else settings.k8s_settings_secret


def model_resources(settings: Settings, gpus: int) -> dict[str, Any]:
    """What the container that runs the model gets: the K8S_CPU/MEMORY settings, and the GPUs."""
    limits: dict[str, Any] = {"cpu": settings.k8s_cpu_limit, "memory": settings.k8s_memory_limit}
    if gpus:
        limits[settings.k8s_gpu_resource] = str(gpus)  # a quantity: always a string
    return {"requests": {"cpu": settings.k8s_cpu_request, "memory": settings.k8s_memory_request}, "limits": limits}


def runner_container(settings: Settings, gpus: int) -> dict[str, Any]:
    """The model-runner (:mod:`easel.sandbox.runner`): it runs the template children and holds no secret — no
    env or envFrom at all, no Secret or token volume — as its own non-root uid on a read-only root, every
    capability dropped. It mounts only the shared socket dir and its scratch dir: the files a sandbox may read
    come to it as descriptors over the socket."""
    return {
        "name": RUNNER_NAME,
        "image": settings.k8s_image,
        "imagePullPolicy": settings.k8s_image_pull_policy,
        "command": ["python", "-m", "easel.sandbox.runner"],
        "args": ["--socket-dir", SANDBOX_DIR, "--scratch-dir", "/tmp", "--peer-uid", str(RUN_AS)],
        "resources": model_resources(settings, gpus),
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": RUNNER_UID, "runAsGroup": RUNNER_UID,
            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": SANDBOX_VOLUME, "mountPath": SANDBOX_DIR},
                         {"name": SCRATCH_VOLUME, "mountPath": "/tmp"}],
        # A native sidecar (an init container that keeps running): it is up, its socket made, before the
        # platform container starts, and it ends with the pod — a train worker's Job still completes.
        "restartPolicy": "Always",
        "startupProbe": {"exec": {"command": ["test", "-S", f"{SANDBOX_DIR}/{SOCKET_NAME}"]},
                         "periodSeconds": 1, "failureThreshold": 120},
    }


def runner_volumes(settings: Settings) -> list[dict[str, Any]]:
    """The socket dir (memory, tiny) and the runner's scratch (the sandboxes' HOME and their copies of the
    given files; bounded like the local sandboxes' tmpfs, per sandbox, times a few at once)."""
    return [{"name": SANDBOX_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": SANDBOX_DIR_LIMIT}},
            {"name": SCRATCH_VOLUME, "emptyDir": {"sizeLimit": f"{4 * settings.sandbox_scratch_mb}Mi"}}]


def pod_spec(settings: Settings, spec: ServiceSpec, env: dict[str, str], *, restart: str,
             port: int | None = None) -> dict[str, Any]:
    verb, args = entry_args(spec)
    gpus = gpu_count(spec)
    runs_model = spec.kind in RUNS_MODEL_CODE
    if runs_model:  # the platform container starts sandboxes through the runner beside it
        env = {**env, "EASEL_SANDBOX_MODE": "runner", "EASEL_SANDBOX_RUNNER_DIR": SANDBOX_DIR}
        platform = {"cpu": settings.k8s_platform_cpu, "memory": settings.k8s_platform_memory}
        resources: dict[str, Any] = {"requests": dict(platform), "limits": dict(platform)}
    else:
        resources = model_resources(settings, gpus)
    container: dict[str, Any] = {
        "name": verb,
        "image": settings.k8s_image,
        "imagePullPolicy": settings.k8s_image_pull_policy,
        "command": ["easel", verb],
        "args": args,
        "env": [{"name": key, "value": value} for key, value in sorted(env.items())],
        "envFrom": [{"configMapRef": {"name": settings.k8s_settings_configmap}},
                    {"secretRef": {"name": settings_secret(settings, spec.kind)}}],
        "resources": resources,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "data", "mountPath": DATA_DIR}]
                        + ([{"name": SANDBOX_VOLUME, "mountPath": SANDBOX_DIR}] if runs_model else []),
    }
    if port is not None:
        container["ports"] = [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        container["readinessProbe"] = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5}
    pod: dict[str, Any] = {
        "serviceAccountName": settings.k8s_service_account,
        "automountServiceAccountToken": False,  # services need no Kubernetes API; only admin does
        "restartPolicy": restart,
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [{"name": "data", "emptyDir": {}}] + (runner_volumes(settings) if runs_model else []),
    }
    if runs_model:
        pod["initContainers"] = [runner_container(settings, gpus)]
    if runs_model and settings.k8s_user_namespaces:
        pod["hostUsers"] = False  # the runner then also puts each child in its own namespaces, without network
    if settings.k8s_image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in settings.k8s_image_pull_secrets]
    if gpus and settings.k8s_gpu_node_selector:
        pod["nodeSelector"] = dict(settings.k8s_gpu_node_selector)
    if gpus and settings.k8s_gpu_tolerations:
        pod["tolerations"] = [dict(item) for item in settings.k8s_gpu_tolerations]
    return pod


def pod_env(spec: ServiceSpec, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in spec.env.items() if key not in HOST_ONLY_ENV}
    return {**env, "EASEL_DATA_DIR": DATA_DIR, **extra}


def _metadata(name: str, settings: Settings, object_labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": settings.k8s_namespace, "labels": object_labels}


def job_body(settings: Settings, spec: ServiceSpec, name: str, service_id: str, owner: Owner | None) -> dict[str, Any]:
    """A Job running one advisor or train worker to completion, never retried by Kubernetes itself."""
    object_labels = labels(spec.kind, owner, service_id)
    env = pod_env(spec, EASEL_SERVICE_ID=service_id)
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": _metadata(name, settings, object_labels),
        "spec": {
            "backoffLimit": 0,
            "template": {"metadata": {"labels": object_labels},
                         "spec": pod_spec(settings, spec, env, restart="Never")},
        },
    }


def _one_replica(settings: Settings, spec: ServiceSpec, name: str, service_id: str, owner: Owner | None,
                 env: dict[str, str], port: int | None = None) -> dict[str, Any]:
    object_labels = labels(spec.kind, owner, service_id)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(name, settings, object_labels),
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {f"{PREFIX}/service": service_id}},
            "template": {"metadata": {"labels": object_labels},
                         "spec": pod_spec(settings, spec, env, restart="Always", port=port)},
        },
    }


def predictor_bodies(settings: Settings, spec: ServiceSpec, name: str, service_id: str,
                     owner: Owner | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The predictor's Deployment and the Service clients reach it through."""
    if spec.port is None:
        raise ValueError(f"predictor {spec.name!r} needs a port to be served on Kubernetes")
    env = pod_env(spec, EASEL_SERVICE_ID=service_id, EASEL_PREDICTOR_HOST="0.0.0.0",
                  EASEL_PREDICTOR_URL=service_url(settings, name, spec.port))
    deployment = _one_replica(settings, spec, name, service_id, owner, env, port=spec.port)
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": _metadata(name, settings, labels(spec.kind, owner, service_id)),
        "spec": {"type": "ClusterIP", "selector": {f"{PREFIX}/service": service_id},
                 "ports": [{"name": "http", "port": spec.port, "targetPort": "http", "protocol": "TCP"}]},
    }
    return deployment, service


def explainer_body(settings: Settings, spec: ServiceSpec, name: str, service_id: str,
                   owner: Owner | None) -> dict[str, Any]:
    """An explainer: one replica, no Service (it reads the job's explanation stream from Redis)."""
    return _one_replica(settings, spec, name, service_id, owner, pod_env(spec, EASEL_SERVICE_ID=service_id))


def service_url(settings: Settings, name: str, port: int) -> str:
    return f"http://{name}.{settings.k8s_namespace}.svc:{port}"


def workers_name(inference_job_id: str) -> str:
    return dns_name("inference-workers", inference_job_id[:12].lower())


def workers_body(settings: Settings, spec: ServiceSpec, replicas: int, owner: Owner | None) -> dict[str, Any]:
    """The one Deployment of an inference job's workers; its replica count is scaled by PATCH."""
    if spec.inference_job_id is None:
        raise ValueError(f"inference worker {spec.name!r} belongs to no inference job")
    object_labels = labels(spec.kind, owner)
    selector = {"app.kubernetes.io/component": "inference-worker",
                f"{PREFIX}/job": label_value(spec.inference_job_id)}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _metadata(workers_name(spec.inference_job_id), settings, object_labels),
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": {**object_labels, **selector}},
                         "spec": pod_spec(settings, spec, pod_env(spec), restart="Always")},
        },
    }


POOL_NAME = "train-pool"
POOL_SELECTOR = {"app.kubernetes.io/component": "train-worker", f"{PREFIX}/pool": "train"}


def is_pool_worker(spec: ServiceSpec) -> bool:
    """A generic worker of the shared train pool: a train worker of no job (admin's ``train-pool-<i>`` slots)."""
    return spec.kind == ServiceKind.TRAIN_WORKER and spec.sub_train_job_id is None and spec.inference_job_id is None


def pool_body(settings: Settings, spec: ServiceSpec, replicas: int) -> dict[str, Any]:
    """The one Deployment of the shared train pool; its replica count is scaled by PATCH. Its pods run model
    code, so each gets the model-runner sidecar (no secret in it), like every other worker pod."""
    if not is_pool_worker(spec):
        raise ValueError(f"service {spec.name!r} is not a worker of the shared train pool")
    object_labels = {**labels(spec.kind, None), **POOL_SELECTOR}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(POOL_NAME, settings, object_labels),
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": dict(POOL_SELECTOR)},
            "template": {"metadata": {"labels": object_labels},
                         "spec": pod_spec(settings, spec, pod_env(spec), restart="Always")},
        },
    }
