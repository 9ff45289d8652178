"""Issue #13's Kubernetes boundary as a check of one pod spec: what a pod that runs model code must look like.

:func:`model_pod_problems` lists every way a pod spec breaks it (empty: it holds): a model-runner container
that takes no secret (no ``env``/``envFrom`` from a Secret, no Secret or projected-token volume, no
service-account token), runs as a non-root uid of its own on a read-only root with every capability dropped,
no privilege escalation, the runtime's seccomp profile and CPU/memory limits, and shares a memory ``emptyDir``
with the platform container, whose environment says ``EASEL_SANDBOX_MODE=runner``.
"""

from __future__ import annotations

from typing import Any

RUNNER = "model-runner"


def _effective(pod: dict[str, Any], container: dict[str, Any], key: str) -> Any:
    """A container's securityContext value, falling back to the pod's (as the kubelet does)."""
    own = (container.get("securityContext") or {}).get(key)
    return own if own is not None else (pod.get("securityContext") or {}).get(key)


def _secret_volumes(pod: dict[str, Any]) -> set[str]:
    """Volumes that hold a Secret or a service-account token."""
    names = set()
    for volume in pod.get("volumes") or []:
        sources = (volume.get("projected") or {}).get("sources") or []
        if "secret" in volume or any("secret" in s or "serviceAccountToken" in s for s in sources):
            names.add(volume["name"])
    return names


def _env_from_secrets(container: dict[str, Any]) -> list[str]:
    found = [f"envFrom {e['secretRef']['name']}" for e in container.get("envFrom") or [] if "secretRef" in e]
    found += [f"env {e['name']}" for e in container.get("env") or []
              if "secretKeyRef" in (e.get("valueFrom") or {})]
    return found


def runner_of(pod: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
                 if c["name"] == RUNNER), None)


def model_pod_problems(pod: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    runner = runner_of(pod)
    if runner is None:
        return [f"no {RUNNER} container"]
    if runner.get("restartPolicy") != "Always":
        problems.append("the runner is not a native sidecar (an init container with restartPolicy Always)")
    platform = [c for c in pod.get("containers") or [] if c["name"] != RUNNER]
    if len(platform) != 1:
        return [f"expected one platform container beside the runner, found {len(platform)}"]
    platform_container = platform[0]
    # -- no secret in the runner
    if runner.get("envFrom") or _env_from_secrets(runner):
        problems.append(f"the runner takes settings or secrets from the environment: {_env_from_secrets(runner)}")
    secret_volumes = _secret_volumes(pod)
    mounted = {m["name"] for m in runner.get("volumeMounts") or []}
    if mounted & secret_volumes:
        problems.append(f"the runner mounts secret volumes {sorted(mounted & secret_volumes)}")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("the service-account token is mounted into every container (automount is not false)")
    # -- its privileges
    if _effective(pod, runner, "runAsNonRoot") is not True:
        problems.append("the runner may run as root")
    runner_uid, platform_uid = _effective(pod, runner, "runAsUser"), _effective(pod, platform_container, "runAsUser")
    if runner_uid is None or runner_uid == platform_uid or runner_uid == 0:
        problems.append(f"the runner's uid {runner_uid} is not its own (the platform's is {platform_uid})")
    context = runner.get("securityContext") or {}
    if context.get("readOnlyRootFilesystem") is not True:
        problems.append("the runner's root filesystem is writable")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("the runner may escalate privileges")
    if (context.get("capabilities") or {}).get("drop") != ["ALL"] or (context.get("capabilities") or {}).get("add"):
        problems.append("the runner keeps capabilities")
    if (_effective(pod, runner, "seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("the runner has no RuntimeDefault seccomp profile")
    limits = (runner.get("resources") or {}).get("limits") or {}
    if not {"cpu", "memory"} <= set(limits):
        problems.append("the runner has no CPU and memory limits")
    # -- what the two containers share
    memory_dirs = {v["name"] for v in pod.get("volumes") or []
                   if (v.get("emptyDir") or {}).get("medium") == "Memory"}
    runner_mounts = {(m["name"], m["mountPath"]) for m in runner.get("volumeMounts") or []}
    platform_mounts = {(m["name"], m["mountPath"]) for m in platform_container.get("volumeMounts") or []}
    shared = {(name, path) for name, path in runner_mounts & platform_mounts if name in memory_dirs}
    if len(shared) != 1:
        problems.append("no memory emptyDir shared by the runner and the platform container")
    if mounted - memory_dirs - {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v}:
        problems.append(f"the runner mounts more than emptyDirs: {sorted(mounted)}")
    env = {e["name"]: e.get("value") for e in platform_container.get("env") or []}
    if env.get("EASEL_SANDBOX_MODE") != "runner":
        problems.append("the platform container does not start sandboxes through the runner")
    elif shared and env.get("EASEL_SANDBOX_RUNNER_DIR") != next(iter(shared))[1]:
        problems.append("the platform container looks for the runner's socket elsewhere than the shared dir")
    return problems
