"""CONTRACT FAKE of the Kubernetes API server — not a cluster.

No Kubernetes cluster can run on these machines, so the launcher is tested against this in-process HTTP
server that speaks the handful of endpoints the launcher calls, with the status codes and bodies of the real
API server: 201 with the stored object on create, 404 NotFound, 409 AlreadyExists, 403 Forbidden and
422 Invalid as ``Status`` objects, ``propagationPolicy`` on delete, ``labelSelector`` on list. A created
object is validated strictly against the Kubernetes OpenAPI schema (``kubernetes-validate``), as a server
with ``fieldValidation=Strict`` would, and refused with 422 if it does not conform — or if its pod template
breaks one of the server's own validation rules Easel's two-container pods depend on (unique container names,
mounts of existing volumes, native sidecars; :func:`_pod_template_invalid`).

What it does not do: schedule or run anything. A Job gets one pod in phase Running at once (what the Job
controller would create); tests move pods to Failed/Succeeded with :meth:`KubeContractFake.finish_pods`.
Every request is recorded in :attr:`KubeContractFake.calls` as (verb, group, resource) so tests can check
that the Role grants exactly what the launcher uses.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import kubernetes_validate

SCHEMA_VERSION = kubernetes_validate.latest_version()
_PATHS = [
    re.compile(r"^/api/(?P<version>v1)/namespaces/(?P<ns>[^/]+)/(?P<res>pods|services)(?:/(?P<name>[^/]+))?$"),
    re.compile(r"^/apis/(?P<group>batch|apps)/(?P<version>v1)/namespaces/(?P<ns>[^/]+)/(?P<res>jobs|deployments)"
               r"(?:/(?P<name>[^/]+)(?:/(?P<sub>scale))?)?$"),
]
_KINDS = {"pods": "Pod", "services": "Service", "jobs": "Job", "deployments": "Deployment"}


@dataclass(frozen=True)
class Call:
    verb: str
    group: str
    resource: str
    namespace: str
    name: str | None
    query: dict[str, str]
    body: Any = None


@dataclass
class KubeContractFake:
    """The fake API server's state; start it with :meth:`start`, point a kubeconfig at :attr:`url`."""

    calls: list[Call] = field(default_factory=list)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)  # (res, ns, name) → obj
    refusals: dict[tuple[str, str], tuple[int, str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _versions: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- test controls --------------------------------------------------------------------------------
    def refuse(self, verb: str, resource: str, code: int, reason: str, message: str) -> None:
        """Answer every ``verb`` on ``resource`` with a failure ``Status`` (403 Forbidden, 422 Invalid, ...)."""
        self.refusals[(verb, resource)] = (code, reason, message)

    def finish_pods(self, label_selector: str, phase: str, exit_code: int) -> int:
        """Move the matching pods to ``Failed``/``Succeeded`` with a terminated container; returns how many."""
        with self.lock:
            pods = [o for (res, _ns, _n), o in self.objects.items() if res == "pods" and _matches(o, label_selector)]
            for pod in pods:
                pod["status"] = {"phase": phase, "containerStatuses": [{
                    "name": pod["spec"]["containers"][0]["name"], "ready": False, "restartCount": 0,
                    "image": pod["spec"]["containers"][0]["image"], "imageID": "",
                    "state": {"terminated": {"exitCode": exit_code, "reason": "Error" if exit_code else "Completed"}},
                }]}
            return len(pods)

    def stall_pods(self, label_selector: str, reason: str, message: str) -> int:
        """Leave the matching pods Pending with a waiting container (e.g. ImagePullBackOff); returns how many."""
        with self.lock:
            pods = [o for (res, _ns, _n), o in self.objects.items() if res == "pods" and _matches(o, label_selector)]
            for pod in pods:
                pod["status"] = {"phase": "Pending", "containerStatuses": [{
                    "name": pod["spec"]["containers"][0]["name"], "ready": False, "restartCount": 0,
                    "image": pod["spec"]["containers"][0]["image"], "imageID": "",
                    "state": {"waiting": {"reason": reason, "message": message}},
                }]}
            return len(pods)

    def named(self, resource: str) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {name: copy.deepcopy(o) for (res, _ns, name), o in self.objects.items() if res == resource}

    def verbs_used(self) -> set[tuple[str, str, str]]:
        return {(c.group, c.resource, c.verb) for c in self.calls}

    def write_kubeconfig(self, path: Path, namespace: str) -> Path:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "contract-fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
        }
        path.write_text(json.dumps(config))
        return path

    # -- server ---------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> KubeContractFake:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                code, body = fake.handle(method, self.path, json.loads(raw) if raw else None)
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_PATCH(self) -> None:  # noqa: N802
                self._handle("PATCH")

            def do_DELETE(self) -> None:  # noqa: N802
                self._handle("DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="k8s-contract-fake").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- the API ----------------------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, body: Any) -> tuple[int, dict[str, Any]]:
        parsed = urlparse(raw_path)
        query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
        match = next((m for p in _PATHS if (m := p.match(parsed.path))), None)
        if match is None:
            return 404, _status(404, "NotFound", f"the server could not find the requested resource ({parsed.path})")
        group, ns, name = match.groupdict().get("group") or "", match["ns"], match["name"]
        resource = match["res"] + ("/scale" if match.groupdict().get("sub") else "")
        verb = {"POST": "create", "PATCH": "patch", "DELETE": "delete"}.get(method) or (
            ("watch" if query.get("watch") in ("true", "1") else "list") if name is None else "get")
        with self.lock:
            self.calls.append(Call(verb, group, resource, ns, name, query, body))
            refusal = self.refusals.get((verb, resource))
            if refusal is not None:
                return refusal[0], _status(*refusal)
            return getattr(self, f"_{verb}")(match["res"], ns, name, query, body, bool(match.groupdict().get("sub")))

    def _create(self, res: str, ns: str, _name: str | None, _q: dict[str, str], body: Any, _sub: bool) -> Any:
        name = body.get("metadata", {}).get("name", "")
        try:
            kubernetes_validate.validate(body, SCHEMA_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            return 422, _status(422, "Invalid", f'{_KINDS[res]} "{name}" is invalid: {error.message}')
        invalid = _pod_template_invalid(body)
        if invalid is not None:
            return 422, _status(422, "Invalid", f'{_KINDS[res]} "{name}" is invalid: {invalid}')
        if body.get("metadata", {}).get("namespace", ns) != ns:
            return 400, _status(400, "BadRequest", "the namespace of the object does not match the request")
        if (res, ns, name) in self.objects:
            return 409, _status(409, "AlreadyExists", f'{res}.{_group_of(res)} "{name}" already exists')
        stored = self._store(res, ns, body)
        if res == "jobs":  # the Job controller's part: one pod, running
            self._add_pods(stored, 1, {"job-name": name, "batch.kubernetes.io/job-name": name})
        if res == "deployments":  # the Deployment's (via its ReplicaSet, not modelled): its replicas, running
            replicas = body["spec"].get("replicas", 1)
            stored["status"] = {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}
            self._add_pods(stored, replicas, {})
        return 201, stored

    def _add_pods(self, owner: dict[str, Any], count: int, extra_labels: dict[str, str]) -> None:
        template, meta = owner["spec"]["template"], owner["metadata"]
        for _ in range(count):
            self._store("pods", meta["namespace"], {
                "apiVersion": "v1", "kind": "Pod", "spec": copy.deepcopy(template["spec"]),
                "metadata": {"name": f"{meta['name']}-{uuid.uuid4().hex[:5]}",
                             "labels": {**template["metadata"].get("labels", {}), **extra_labels},
                             "ownerReferences": [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                                  "name": meta["name"], "uid": meta["uid"], "controller": True}]},
                "status": {"phase": "Running"}})

    def _pods_of(self, owner: dict[str, Any]) -> list[tuple[str, str, str]]:
        uid = owner["metadata"]["uid"]
        return [key for key, o in self.objects.items() if key[0] == "pods"
                and any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences", []))]

    def _get(self, res: str, ns: str, name: str, _q: dict[str, str], _body: Any, sub: bool) -> Any:
        found = self.objects.get((res, ns, name))
        if found is None:
            return 404, _status(404, "NotFound", f'{res}.{_group_of(res)} "{name}" not found')
        return 200, (_scale(found) if sub else found)

    def _list(self, res: str, ns: str, _name: None, query: dict[str, str], _body: Any, _sub: bool) -> Any:
        selector = query.get("labelSelector", "")
        items = [o for (r, n, _), o in self.objects.items() if r == res and n == ns and _matches(o, selector)]
        return 200, {"apiVersion": "v1", "kind": f"{_KINDS[res]}List", "metadata": {"resourceVersion": "1"},
                     "items": items}

    def _watch(self, *_args: Any) -> Any:
        return 405, _status(405, "MethodNotAllowed", "watch is not part of this contract fake")

    def _patch(self, res: str, ns: str, name: str, _q: dict[str, str], body: Any, sub: bool) -> Any:
        found = self.objects.get((res, ns, name))
        if found is None:
            return 404, _status(404, "NotFound", f'{res}.{_group_of(res)} "{name}" not found')
        if not sub or not isinstance(body, dict) or not isinstance(body.get("spec", {}).get("replicas"), int):
            return 422, _status(422, "Invalid", "only spec.replicas of the scale subresource can be patched here")
        replicas = body["spec"]["replicas"]
        pods = self._pods_of(found)
        for key in pods[replicas:]:
            del self.objects[key]
        self._add_pods(found, max(0, replicas - len(pods)), {})
        found["spec"]["replicas"] = replicas
        found["status"] = {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}
        found["metadata"]["resourceVersion"] = str(next(self._versions))
        return 200, _scale(found)

    def _delete(self, res: str, ns: str, name: str, query: dict[str, str], body: Any, _sub: bool) -> Any:
        found = self.objects.pop((res, ns, name), None)
        if found is None:
            return 404, _status(404, "NotFound", f'{res}.{_group_of(res)} "{name}" not found')
        policy = query.get("propagationPolicy") or (body or {}).get("propagationPolicy")
        if policy in ("Foreground", "Background"):  # dependents go too; with Orphan they would stay
            uid = found["metadata"]["uid"]
            for key in [k for k, o in self.objects.items()
                        if any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences", []))]:
                del self.objects[key]
        if res == "services":  # the API answers a Service's DELETE with the deleted object
            return 200, found
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "details": {"name": name, "group": _group_of(res), "kind": res, "uid": found["metadata"]["uid"]}}

    def _store(self, res: str, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        stored = copy.deepcopy(body)
        meta = stored.setdefault("metadata", {})
        meta.update(namespace=ns, uid=str(uuid.uuid4()), resourceVersion=str(next(self._versions)),
                    creationTimestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.objects[(res, ns, meta["name"])] = stored
        return stored


def _pod_template_invalid(body: dict[str, Any]) -> str | None:
    """What the API server's own validation (beyond the OpenAPI schema) refuses in a pod template, for the
    rules Easel's pods lean on: unique container names, every mount naming a volume of the pod, and
    ``restartPolicy`` on a container only as ``Always`` on an init container (a native sidecar)."""
    pod = (body.get("spec") or {}).get("template", {}).get("spec")
    if pod is None:
        return None
    volumes = {v["name"] for v in pod.get("volumes") or []}
    seen: set[str] = set()
    for field_name in ("initContainers", "containers"):
        for i, container in enumerate(pod.get(field_name) or []):
            where = f"spec.template.spec.{field_name}[{i}]"
            if container["name"] in seen:
                return f'{where}.name: Duplicate value: "{container["name"]}"'
            seen.add(container["name"])
            for j, mount in enumerate(container.get("volumeMounts") or []):
                if mount["name"] not in volumes:
                    return f'{where}.volumeMounts[{j}].name: Not found: "{mount["name"]}"'
            policy = container.get("restartPolicy")
            if policy is not None and (field_name == "containers" or policy != "Always"):
                return f'{where}.restartPolicy: Forbidden: may only be set to Always on an init container'
    return None


def _group_of(res: str) -> str:
    return {"jobs": "batch", "deployments": "apps"}.get(res, "")


def _scale(deployment: dict[str, Any]) -> dict[str, Any]:
    meta = deployment["metadata"]
    return {"apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                         "resourceVersion": meta["resourceVersion"]},
            "spec": {"replicas": deployment["spec"].get("replicas", 1)},
            "status": {"replicas": deployment["spec"].get("replicas", 1)}}


def _matches(obj: dict[str, Any], selector: str) -> bool:
    have = obj.get("metadata", {}).get("labels", {})
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if have.get(key) != value:
            return False
    return True


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
