"""Static checks of the image, compose file and Kubernetes manifests (no Docker engine or cluster exists on
these machines): strict OpenAPI validation of every rendered manifest and every body the launcher builds,
hadolint on the Dockerfile, the compose specification's JSON schema, and entry points resolved by parsing."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kustomize_lite import render
from runner_policy import model_pod_problems, runner_of

from easel.cli import register
from easel.db.enums import ServiceKind
from easel.launcher import ServiceSpec
from easel.launcher import k8s_objects as objects
from easel.settings import Settings

ROOT = Path(__file__).parents[2]
K8S = ROOT / "deploy" / "k8s"
LAYOUTS = ["base", "overlays/dev", "overlays/external"]
VERSION = kubernetes_validate.latest_version()
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    assert found, f"{name} is not installed (it comes with the dev dependencies)"
    return found


def _cli_verbs() -> set[str]:
    """The verbs of the image's ``easel`` command: the SDK's, plus the platform's (its ``easel.cli`` plugin)."""
    from sdk.cli import build_parser

    sub = next(a for a in build_parser([register])._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def _setting_names() -> set[str]:
    return {f"EASEL_{name.upper()}" for name in Settings.model_fields}


def _pod(doc: dict[str, Any]) -> dict[str, Any] | None:
    spec = doc.get("spec", {})
    return spec.get("template", {}).get("spec") if "template" in spec else None


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_rendered_manifest_validates_strictly(layout: str) -> None:
    docs = render(K8S / layout)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, VERSION, strict=True)
    for doc in docs:
        pod = _pod(doc)
        for container in (pod or {}).get("containers", []):
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), f"{doc['metadata']['name']} requests"
            assert {"cpu", "memory"} <= set(resources.get("limits", {})), f"{doc['metadata']['name']} limits"
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"easel"}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl on PATH to cross-check the renderer with")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_renderer_agrees_with_kubectl_kustomize(layout: str) -> None:
    rendered = subprocess.run(["kubectl", "kustomize", str(K8S / layout)], check=True, capture_output=True,
                              text=True, timeout=60).stdout

    def key(doc: dict[str, Any]) -> tuple[str, str]:
        return doc["kind"], doc["metadata"]["name"]

    theirs = sorted((d for d in yaml.safe_load_all(rendered) if d), key=key)
    ours = sorted(render(K8S / layout), key=key)
    assert [key(d) for d in ours] == [key(d) for d in theirs]
    assert ours == theirs


def test_base_and_overlays_fit_together() -> None:
    dev, external = render(K8S / "overlays/dev"), render(K8S / "overlays/external")
    kinds = {(d["kind"], d["metadata"]["name"]) for d in dev}
    assert {("StatefulSet", s) for s in ("postgres", "redis", "kafka", "minio")} <= kinds
    for doc in dev:
        if doc["kind"] == "StatefulSet":
            assert doc["spec"]["volumeClaimTemplates"], "data services keep their data on PVCs"
            assert doc["spec"]["template"]["metadata"]["labels"]["easel.io/data-service"] == "true", \
                "the NetworkPolicy selects every data service"
    assert not [d for d in external if d["kind"] == "Secret"], "no secret is committed for production"
    assert not [d for d in render(K8S / "base") if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    settings_keys = set()
    for doc in dev + external:
        if doc["kind"] in ("ConfigMap", "Secret"):
            data = doc.get("data") or doc.get("stringData") or {}
            settings_keys |= {k for k in data if k.startswith("EASEL_")}
    assert settings_keys <= _setting_names(), f"not Easel settings: {sorted(settings_keys - _setting_names())}"
    admin = next(d for d in dev if d["kind"] == "Deployment" and d["metadata"]["name"] == "easel-admin")
    container = admin["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][0] == "easel" and container["command"][1] in _cli_verbs()
    assert admin["spec"]["template"]["spec"]["serviceAccountName"] == "easel-admin"


def test_admin_checks_templates_in_a_runner_and_only_its_platform_container_gets_the_api_token() -> None:
    admin = next(d for d in render(K8S / "base") if d["kind"] == "Deployment" and d["metadata"]["name"] == "easel-admin")
    pod = admin["spec"]["template"]["spec"]
    assert model_pod_problems(pod) == []
    token = next(v for v in pod["volumes"] if any("serviceAccountToken" in s for s in v.get("projected", {}).get("sources", [])))
    holders = [c["name"] for c in pod["containers"] + pod["initContainers"]
               if token["name"] in {m["name"] for m in c.get("volumeMounts", [])}]
    assert holders == ["admin"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == token["name"])
    assert mount["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount" and mount["readOnly"] is True
    assert runner_of(pod)["command"][:3] == ["python", "-m", "easel.sandbox.runner"]


def test_worker_pods_may_reach_only_the_data_services_and_dns() -> None:
    policies = {d["metadata"]["name"]: d for d in render(K8S / "base") if d["kind"] == "NetworkPolicy"}
    egress = policies["model-pods-egress"]
    selected = egress["spec"]["podSelector"]["matchExpressions"][0]["values"]
    assert {"train-worker", "inference-worker", "explainer"} <= set(selected) and "admin" not in selected
    assert egress["spec"]["policyTypes"] == ["Egress"]
    destinations = [rule["to"] for rule in egress["spec"]["egress"]]
    assert {"matchLabels": {"easel.io/data-service": "true"}} in [t[0].get("podSelector") for t in destinations]
    assert all("ipBlock" not in t for rule in destinations for t in rule), "no address range in the base"
    dns = [rule for rule in egress["spec"]["egress"] if {p["port"] for p in rule.get("ports", [])} == {53}]
    assert len(dns) == 1


def _specs() -> list[ServiceSpec]:
    python = [sys.executable, "-m"]
    return [
        ServiceSpec(name="advisor-app-v1-abc", kind=ServiceKind.ADVISOR,
                    argv=[*python, "advisor", "--sub-train-job-id", "s1"], env={"PYTHONPATH": "/x"}),
        ServiceSpec(name="train-worker-app-v1-abc-0", kind=ServiceKind.TRAIN_WORKER,
                    argv=[*python, "train_worker", "--sub-train-job-id", "s1"], env={"EASEL_GPU_COUNT": "2"}),
        ServiceSpec(name="predictor-app-v1-abc", kind=ServiceKind.PREDICTOR, port=8080, inference_job_id="i1",
                    argv=[*python, "predictor", "--inference-job-id", "i1", "--host", "0.0.0.0", "--port", "8080"]),
        ServiceSpec(name="inference-worker-app-v1-abc-0", kind=ServiceKind.INFERENCE_WORKER, inference_job_id="i1",
                    argv=[*python, "inference_worker", "--inference-job-id", "i1"], env={"EASEL_GPU_COUNT": "1"}),
        ServiceSpec(name="explainer-app-v1-abc-0", kind=ServiceKind.EXPLAINER, inference_job_id="i1",
                    argv=[*python, "inference_worker.explain", "--inference-job-id", "i1"]),
    ]


@pytest.mark.parametrize("gpu_scheduling", [False, True])
def test_every_body_the_launcher_builds_validates_strictly(gpu_scheduling: bool) -> None:
    settings = Settings(k8s_image_pull_secrets=["cred"], **({
        "k8s_gpu_node_selector": {"gpu": "a100"},
        "k8s_gpu_tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    } if gpu_scheduling else {}))
    owner = objects.Owner("An App/with odd chars", 3, "job-1")
    bodies = []
    for spec in _specs():
        name = objects.dns_name(spec.name, "0123abcd")
        if spec.kind == ServiceKind.PREDICTOR:
            bodies += objects.predictor_bodies(settings, spec, name, "0123abcd" * 4, owner)
        elif spec.kind == ServiceKind.INFERENCE_WORKER:
            bodies.append(objects.workers_body(settings, spec, 3, owner))
        elif spec.kind == ServiceKind.EXPLAINER:
            bodies.append(objects.explainer_body(settings, spec, name, "0123abcd" * 4, owner))
        else:
            bodies.append(objects.job_body(settings, spec, name, "0123abcd" * 4, owner))
    for body in bodies:
        kubernetes_validate.validate(body, VERSION, strict=True)
        pod = _pod(body)
        if pod is not None:
            container = pod["containers"][0]
            assert container["command"][0] == "easel" and container["command"][1] in _cli_verbs()
            assert pod["securityContext"]["runAsNonRoot"] is True
            gpus = [c["name"] for c in pod["containers"] + pod.get("initContainers", [])
                    if "nvidia.com/gpu" in c["resources"]["limits"]]
            assert ("nodeSelector" in pod) == (gpu_scheduling and bool(gpus))
            component = body["metadata"]["labels"]["app.kubernetes.io/component"]
            if component in ("train-worker", "inference-worker", "explainer"):  # they run model code
                assert model_pod_problems(pod) == [], component
                assert gpus in ([], ["model-runner"]), "a GPU goes to the container that runs the model"
            else:
                assert [c["name"] for c in pod["containers"]] == [component], "no runner where no model runs"
    assert len({b["metadata"]["name"] for b in bodies if b["kind"] != "Service"}) == 5
    assert sum(b["kind"] == "Job" and "nvidia.com/gpu" in str(b) for b in bodies) == 1, "the GPU train worker"


def test_the_train_pool_deployment_validates_strictly_and_keeps_the_runner_secret_free() -> None:
    spec = ServiceSpec(name="train-pool-0", kind=ServiceKind.TRAIN_WORKER, env={"EASEL_WORKER_INDEX": "0"},
                       argv=[sys.executable, "-m", "train_worker", "--pool"])
    body = objects.pool_body(Settings(k8s_image_pull_secrets=["cred"]), spec, 4)
    kubernetes_validate.validate(body, VERSION, strict=True)
    assert (body["kind"], body["metadata"]["name"], body["spec"]["replicas"]) == ("Deployment", "train-pool", 4)
    pod = _pod(body)
    assert model_pod_problems(pod) == [] and runner_of(pod)["command"][:3] == ["python", "-m", "easel.sandbox.runner"]
    assert pod["containers"][0]["command"] == ["easel", "train-worker"]
    assert body["spec"]["selector"]["matchLabels"].items() <= body["spec"]["template"]["metadata"]["labels"].items()
    job_worker = ServiceSpec(name="train-worker-a-0", kind=ServiceKind.TRAIN_WORKER, sub_train_job_id="s1",
                             argv=[sys.executable, "-m", "train_worker", "--sub-train-job-id", "s1"])
    with pytest.raises(ValueError, match="not a worker of the shared train pool"):
        objects.pool_body(Settings(), job_worker, 1)


def _worker_pod(**update: object) -> dict[str, Any]:
    spec = next(s for s in _specs() if s.kind == ServiceKind.TRAIN_WORKER)
    return objects.pod_spec(Settings(**update), spec, {}, restart="Never")


def test_user_namespaces_are_asked_for_only_when_the_cluster_has_them() -> None:
    assert "hostUsers" not in _worker_pod()
    assert _worker_pod(k8s_user_namespaces=True)["hostUsers"] is False
    advisor = next(s for s in _specs() if s.kind == ServiceKind.ADVISOR)
    assert "hostUsers" not in objects.pod_spec(Settings(k8s_user_namespaces=True), advisor, {}, restart="Never")


def _give_runner_the_secret(pod: dict[str, Any]) -> None:
    runner_of(pod)["envFrom"] = [{"secretRef": {"name": "easel-secrets-train"}}]


def _mount_a_secret(pod: dict[str, Any]) -> None:
    pod["volumes"].append({"name": "creds", "secret": {"secretName": "easel-secrets-train"}})
    runner_of(pod)["volumeMounts"].append({"name": "creds", "mountPath": "/creds"})


@pytest.mark.parametrize(("breach", "found"), [
    (_give_runner_the_secret, "environment"),
    (_mount_a_secret, "secret volumes"),
    (lambda pod: pod.pop("automountServiceAccountToken"), "token"),
    (lambda pod: runner_of(pod)["securityContext"].update(runAsUser=objects.RUN_AS), "uid"),
    (lambda pod: runner_of(pod)["securityContext"].pop("readOnlyRootFilesystem"), "root filesystem"),
    (lambda pod: runner_of(pod)["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]), "capabilities"),
    (lambda pod: next(v for v in pod["volumes"] if v["name"] == "sandbox")["emptyDir"].pop("medium"),
     "memory emptyDir"),
    (lambda pod: pod["containers"][0]["env"].clear(), "through the runner"),
    (lambda pod: runner_of(pod).pop("restartPolicy"), "native sidecar"),
])
def test_the_boundary_check_catches_each_breach(breach: Any, found: str) -> None:
    pod = _worker_pod()
    assert model_pod_problems(pod) == []
    breach(pod)
    assert any(found in problem for problem in model_pod_problems(pod)), model_pod_problems(pod)


def test_long_and_odd_names_become_dns_labels() -> None:
    name = objects.dns_name("Train_Worker-" + "x" * 80 + "-v1", "0123abcd")
    assert len(name) <= 63 and name.endswith("-0123abcd") and name == name.lower()
    assert objects.label_value("my app/v1") == "my-app-v1"


# -- the image ---------------------------------------------------------------------------------------------
def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = subprocess.run([_tool("hadolint"), "--no-color", str(ROOT / "docker" / "Dockerfile")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_the_image_is_multi_stage_non_root_with_a_healthcheck_and_pinned_bases() -> None:
    instructions = _dockerfile_instructions()
    args = dict(a.split("=", 1) for kind, a in instructions if kind == "ARG" and "=" in a)
    bases = [a.split()[0] for kind, a in instructions if kind == "FROM"]
    assert len(bases) >= 3, "web UI, Python build and runtime stages"
    for base in bases:
        image = args.get(base.strip("${}"), base)
        assert ":" in image and not image.endswith(":latest"), f"base image {image} is not pinned by tag"
    assert args["DEVICE"] == "cpu", "the CPU build is the default; --build-arg DEVICE=cuda gives the CUDA one"
    user = [a for kind, a in instructions if kind == "USER"]
    assert user and not user[-1].startswith(("root", "0")), "the runtime user is not root"
    assert any(kind == "HEALTHCHECK" for kind, _ in instructions)
    entrypoint = json.loads(next(a for kind, a in instructions if kind == "ENTRYPOINT"))
    assert entrypoint == ["easel"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["easel"] == "sdk.cli:main", "the image's entry point is the installed easel command"
    assert project["entry-points"]["easel.cli"]["platform"] == "easel.cli:register", "with the server verbs"
    assert {"admin", "advisor", "train-worker", "predictor", "inference-worker", "explainer"} <= _cli_verbs()
    command = json.loads(next(a for kind, a in instructions if kind == "CMD"))
    assert command[0] in _cli_verbs()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env"} <= set(ignored)


# -- compose -----------------------------------------------------------------------------------------------
def test_compose_file_validates_against_the_compose_specification() -> None:
    result = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                             str(ROOT / "docker-compose.yml")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_are_wired_healthy_and_keep_no_secrets() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "kafka", "minio", "admin"} <= set(services)
    kafka_env = services["kafka"]["environment"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"] and not any("ZOOKEEPER" in k for k in kafka_env)
    for name, service in services.items():
        for dependency in (service.get("depends_on") or {}).values():
            assert dependency["condition"] in ("service_healthy", "service_completed_successfully"), name
        if "build" in service:  # our image: the command is one of its entry points
            assert service["build"]["dockerfile"] == "docker/Dockerfile"
            assert service["command"][0] in _cli_verbs(), f"{name}: {service['command']}"
            environment = service.get("environment", {})
            assert set(k for k in environment if k.startswith("EASEL_")) <= _setting_names()
        elif name != "minio-bucket":
            assert "healthcheck" in service, f"{name} has no healthcheck"
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET")):
                assert str(value).startswith("${") and ":?" in str(value), f"{name}.{key} has a committed value"
    assert set(compose["volumes"]) >= {"postgres-data", "redis-data", "kafka-data", "minio-data"}
    example = (ROOT / ".env.example").read_text()
    assert "POSTGRES_PASSWORD=\n" in example, "the example names the secrets without values"


@pytest.mark.parametrize(("variable", "value"), [
    ("EASEL_K8S_CPU_LIMIT", "lots"), ("EASEL_K8S_NAMESPACE", "Not_A_Namespace"),
    ("EASEL_K8S_GPU_NODE_SELECTOR", "gpu=yes"), ("EASEL_K8S_IMAGE_PULL_POLICY", "Sometimes"),
    ("EASEL_BLOB_URL", "s3://"), ("EASEL_S3_ENDPOINT_URL", "minio:9000"),
])
def test_bad_cluster_settings_are_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str,
                                                              value: str) -> None:
    from easel.settings import SettingsError, get_settings

    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        get_settings()


def test_service_pods_take_only_their_roles_secret_and_it_holds_no_signing_key() -> None:
    settings = Settings()
    roles = {ServiceKind.ADVISOR: "advisor", ServiceKind.TRAIN_WORKER: "train", ServiceKind.PREDICTOR: "predictor",
             ServiceKind.INFERENCE_WORKER: "inference", ServiceKind.EXPLAINER: "inference"}
    for spec in _specs():
        pod = objects.pod_spec(settings, spec, {}, restart="Never")
        sources = pod["containers"][0]["envFrom"]
        assert {"secretRef": {"name": f"easel-secrets-{roles[spec.kind]}"}} in sources, spec.kind
        assert {"secretRef": {"name": "easel-secrets"}} not in sources, "admin's Secret is admin's alone"
    dev = {d["metadata"]["name"]: d for d in render(K8S / "overlays/dev") if d["kind"] == "Secret"}
    for role in set(roles.values()):
        data = dev[f"easel-secrets-{role}"]["stringData"]
        assert f"easel_{role}:" in data["EASEL_DATABASE_URL"]
        assert "EASEL_SECRET_KEY" not in data and "EASEL_SUPERADMIN_PASSWORD" not in data
