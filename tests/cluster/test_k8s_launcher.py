"""The Kubernetes launcher against the Kubernetes API contract (an in-process CONTRACT FAKE, not a cluster).

Admin runs for real (PostgreSQL, SDK, supervisor) with ``EASEL_LAUNCHER=kubernetes`` and a kubeconfig that
points at the fake; every object the launcher creates is validated strictly by the fake.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from k8s_contract_fake import KubeContractFake
from runner_policy import model_pod_problems, runner_of
from sqlalchemy import select
from support import ServerThread, npz_file

from admin.app import create_app
from admin.services.orchestration import inference_job_specs, pool_worker_specs
from easel.db.enums import JobStatus, ServiceKind, ServiceStatus
from easel.db.models import InferenceJob, Service, TrainJob
from easel.db.session import make_engine, make_sessionmaker, session_scope
from easel.jobs import lifecycle
from easel.launcher import make_launcher
from easel.launcher.kubernetes import KubernetesLauncher, LaunchRefused
from easel.settings import LauncherKind, Settings
from sdk import ApiError, Client, TrainBudget

EMAIL, PASSWORD = "k8s-root@easel.test", "k8s-root-password"
NAMESPACE = "easel-test"
TEMPLATE = Path(__file__).parents[1] / "tuning" / "quadratic_template.py"
GPU_NODES = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def _wait(check: Callable[[], object], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return result


@pytest.fixture(scope="module")
def fake() -> Iterator[KubeContractFake]:
    fake = KubeContractFake().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def k8s_settings(settings: Settings, fake: KubeContractFake, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    kubeconfig = fake.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config", NAMESPACE)
    return settings.model_copy(update={
        "launcher": LauncherKind.KUBERNETES, "superadmin_email": EMAIL,
        "superadmin_password": PASSWORD, "password_hash_rounds": 4, "k8s_kubeconfig": str(kubeconfig),
        "k8s_namespace": NAMESPACE, "k8s_image": "registry.example/easel:0.1.0-cpu",
        "k8s_image_pull_secrets": ["registry-cred"], "k8s_gpu_node_selector": GPU_NODES,
        "k8s_gpu_tolerations": GPU_TOLERATIONS,
    })


@pytest.fixture(scope="module")
def client(k8s_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    with ServerThread(create_app(k8s_settings)) as server, Client(server.url) as client:
        client.login(EMAIL, PASSWORD)
        yield client


@pytest.fixture(scope="module")
def ids(client: Client, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A dataset and an uploaded model to train (nothing runs them: the fake schedules no pods)."""
    folder = tmp_path_factory.mktemp("data")
    data = client.upload_dataset("k8s-q", "TEST_TASK", npz_file(folder / "q.npz"))
    model = client.upload_model("quadratic-k8s", "TEST_TASK", TEMPLATE, class_name="Quadratic")
    return data.id, model.id


@pytest.fixture(autouse=True)
def no_refusals(fake: KubeContractFake) -> Iterator[None]:
    fake.refusals.clear()
    yield
    fake.refusals.clear()


def _rows(settings: Settings, **where: str) -> list[Service]:
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    with session_scope(sessions) as session:
        stmt = select(Service).order_by(Service.created_at)
        for column, value in where.items():
            stmt = stmt.where(getattr(Service, column) == value)
        return list(session.scalars(stmt))


def _container(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]["containers"][0]


def test_train_job_becomes_labelled_jobs_with_resources_and_gpus(
        client: Client, fake: KubeContractFake, k8s_settings: Settings, ids: tuple[str, str]) -> None:
    job = client.create_train_job("k8s-train", "TEST_TASK", ids[0], ids[0], [ids[1]],
                                  budget=TrainBudget(model_trial_count=2, workers=2, gpu_count=1))
    sub_id = job.sub_train_jobs[0].id
    rows = _rows(k8s_settings, sub_train_job_id=sub_id)
    assert sorted(r.kind.value for r in rows) == ["ADVISOR", "TRAIN_WORKER", "TRAIN_WORKER"]
    assert all(r.status is ServiceStatus.RUNNING and r.launcher == "kubernetes" for r in rows)
    jobs = fake.named("jobs")
    for row in rows:
        body = jobs[row.pod_name]
        labels = body["metadata"]["labels"]
        assert labels["easel.io/app"] == "k8s-train" and labels["easel.io/app-version"] == str(job.app_version)
        assert labels["easel.io/job"] == sub_id and labels["easel.io/service"] == row.id
        assert labels["app.kubernetes.io/managed-by"] == "easel-admin"
        assert body["spec"]["template"]["metadata"]["labels"] == labels
        assert body["spec"]["backoffLimit"] == 0, "the supervisor, not Kubernetes, decides relaunches"
        pod = body["spec"]["template"]["spec"]
        container = _container(body)
        verb = "advisor" if row.kind is ServiceKind.ADVISOR else "train-worker"
        assert container["command"] == ["easel", verb]
        assert container["args"] == ["--sub-train-job-id", sub_id]
        assert container["image"] == "registry.example/easel:0.1.0-cpu"
        assert pod["imagePullSecrets"] == [{"name": "registry-cred"}]
        env = {item["name"]: item["value"] for item in container["env"]}
        assert env["EASEL_SERVICE_ID"] == row.id and "PYTHONPATH" not in env
        runs_model = row.kind is ServiceKind.TRAIN_WORKER
        model = runner_of(pod) if runs_model else container  # the container that runs the model gets its resources
        assert model["resources"]["requests"] == {"cpu": k8s_settings.k8s_cpu_request,
                                                  "memory": k8s_settings.k8s_memory_request}
        if runs_model:
            assert model_pod_problems(pod) == []
            assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
            assert "nvidia.com/gpu" not in container["resources"]["limits"]
            assert pod["nodeSelector"] == GPU_NODES and pod["tolerations"] == GPU_TOLERATIONS
        else:
            assert "initContainers" not in pod, "no model runner where no model code runs"
            assert "nvidia.com/gpu" not in container["resources"]["limits"] and "nodeSelector" not in pod

    client.stop_train_job(job.app, job.app_version)
    deletes = [c for c in fake.calls if c.verb == "delete" and c.name in {r.pod_name for r in rows}]
    assert sorted(c.name for c in deletes) == sorted(r.pod_name for r in rows)
    assert {c.query.get("propagationPolicy") for c in deletes} == {"Foreground"}
    assert not set(fake.named("jobs")) & {r.pod_name for r in rows}
    assert not [p for p in fake.named("pods").values() if p["metadata"]["labels"].get("easel.io/job") == sub_id], \
        "the Jobs' pods went with them"
    assert {r.status for r in _rows(k8s_settings, sub_train_job_id=sub_id)} == {ServiceStatus.STOPPED}


@pytest.mark.parametrize(("code", "reason", "message"), [
    (403, "Forbidden", 'jobs.batch is forbidden: User "system:serviceaccount:easel:easel-admin" cannot create '
                       'resource "jobs" in API group "batch" in the namespace "easel-test"'),
    (422, "Invalid", 'Job.batch "x" is invalid: spec.template.spec.containers[0].image: Required value'),
])
def test_a_refused_launch_errors_the_job_with_the_api_message(
        client: Client, fake: KubeContractFake, k8s_settings: Settings, ids: tuple[str, str],
        code: int, reason: str, message: str) -> None:
    fake.refuse("create", "jobs", code, reason, message)
    with pytest.raises(ApiError) as raised:
        client.create_train_job(f"k8s-refused-{code}", "TEST_TASK", ids[0], ids[0], [ids[1]],
                                budget=TrainBudget(model_trial_count=1))
    assert raised.value.status_code == 503
    assert message in raised.value.detail and f"{code} {reason}" in raised.value.detail
    job = client.get_train_job(f"k8s-refused-{code}", 1)
    assert job.status == "ERRORED" and job.sub_train_jobs[0].status == "ERRORED"
    rows = _rows(k8s_settings, sub_train_job_id=job.sub_train_jobs[0].id)
    assert [r.status for r in rows] == [ServiceStatus.ERRORED]
    assert message in rows[0].command["error"]


def test_a_failed_pod_is_relaunched_by_the_supervisor(
        client: Client, fake: KubeContractFake, k8s_settings: Settings, ids: tuple[str, str]) -> None:
    job = client.create_train_job("k8s-relaunch", "TEST_TASK", ids[0], ids[0], [ids[1]],
                                  budget=TrainBudget(model_trial_count=2, workers=1))
    sub_id = job.sub_train_jobs[0].id
    advisor = next(r for r in _rows(k8s_settings, sub_train_job_id=sub_id) if r.kind is ServiceKind.ADVISOR)
    assert fake.finish_pods(f"easel.io/service={advisor.id}", "Failed", 137) == 1

    def replacement() -> Service | None:
        return next((r for r in _rows(k8s_settings, sub_train_job_id=sub_id, kind=ServiceKind.ADVISOR)
                     if r.id != advisor.id and r.status is ServiceStatus.RUNNING), None)

    new = _wait(replacement, 30, "the supervisor to relaunch the advisor")
    assert new.pod_name in fake.named("jobs") and new.pod_name != advisor.pod_name
    old = next(r for r in _rows(k8s_settings, id=advisor.id))
    assert old.status is ServiceStatus.ERRORED and old.exit_code == 137

    worker = next(r for r in _rows(k8s_settings, sub_train_job_id=sub_id) if r.kind is ServiceKind.TRAIN_WORKER)
    fake.finish_pods(f"easel.io/service={worker.id}", "Succeeded", 0)
    _wait(lambda: _rows(k8s_settings, id=worker.id)[0].status is ServiceStatus.STOPPED, 30, "the worker's exit")
    assert len(_rows(k8s_settings, sub_train_job_id=sub_id, kind=ServiceKind.TRAIN_WORKER)) == 1, \
        "a service that finished its work is not relaunched"
    client.stop_train_job(job.app, job.app_version)


def _inference_job(settings: Settings, app: str, workers: int) -> tuple[InferenceJob, str, int]:
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    with session_scope(sessions) as session:
        train = session.scalars(select(TrainJob).where(TrainJob.app == app)).one()
        job = lifecycle.new_inference_job(train_job_id=train.id, owner_id=train.owner_id,
                                          budget={"WORKERS": workers, "GPU_COUNT": 0}, trial_ids={"trials": []})
        session.add(job)
        session.flush()
        session.expunge(job)
        return job, train.app, train.app_version


def test_inference_job_is_a_predictor_service_and_a_scaled_worker_deployment(
        client: Client, fake: KubeContractFake, k8s_settings: Settings, ids: tuple[str, str]) -> None:
    client.create_train_job("k8s-serve", "TEST_TASK", ids[0], ids[0], [ids[1]], budget=TrainBudget(model_trial_count=1))
    job, app, version = _inference_job(k8s_settings, "k8s-serve", workers=3)
    launcher = make_launcher(k8s_settings, make_sessionmaker(make_engine(k8s_settings.resolved_database_url)))
    assert isinstance(launcher, KubernetesLauncher)
    specs = inference_job_specs(job, app, version, host="0.0.0.0", port=8080, explainers=1)
    states = [launcher.start(spec) for spec in specs]
    predictor = next(s for s in states if s.kind is ServiceKind.PREDICTOR)
    workers = [s for s in states if s.kind is ServiceKind.INFERENCE_WORKER]
    explainer = next(s for s in states if s.kind is ServiceKind.EXPLAINER)

    row = _rows(k8s_settings, id=predictor.id)[0]
    deployment, service = fake.named("deployments")[row.pod_name], fake.named("services")[row.pod_name]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert [ref["uid"] for ref in service["metadata"]["ownerReferences"]] == [deployment["metadata"]["uid"]]
    assert service["spec"]["ports"][0]["port"] == 8080
    env = {item["name"]: item["value"] for item in _container(deployment)["env"]}
    assert env["EASEL_PREDICTOR_URL"] == f"http://{row.pod_name}.{NAMESPACE}.svc:8080"
    assert row.host == f"{row.pod_name}.{NAMESPACE}.svc"

    worker_rows = [_rows(k8s_settings, id=w.id)[0] for w in workers]
    assert len({r.pod_name for r in worker_rows}) == 1, "the job's workers share one Deployment"
    name = worker_rows[0].pod_name
    assert fake.named("deployments")[name]["spec"]["replicas"] == 3
    assert len([c for c in fake.calls if c.resource == "deployments/scale" and c.name == name]) == 2, \
        "the first worker creates the Deployment; the others scale it by PATCH"
    assert _container(fake.named("deployments")[name])["command"] == ["easel", "inference-worker"]
    assert "initContainers" not in deployment["spec"]["template"]["spec"], "the predictor runs no model code"

    explaining = fake.named("deployments")[_rows(k8s_settings, id=explainer.id)[0].pod_name]
    for runs_model in (fake.named("deployments")[name], explaining):
        assert model_pod_problems(runs_model["spec"]["template"]["spec"]) == []
    assert _container(explaining)["command"] == ["easel", "explainer"]
    assert _container(explaining)["args"] == ["--inference-job-id", job.id] and "ports" not in _container(explaining)
    launcher.stop(explainer.id)
    assert explaining["metadata"]["name"] not in fake.named("deployments")

    launcher.stop(workers[0].id)
    assert fake.named("deployments")[name]["spec"]["replicas"] == 2
    assert launcher.status(workers[1].id).status is ServiceStatus.RUNNING
    launcher.stop(predictor.id)
    assert row.pod_name not in fake.named("deployments") and row.pod_name not in fake.named("services")
    for worker in workers[1:]:
        launcher.stop(worker.id)
    assert name not in fake.named("deployments"), "the last worker's stop deletes the Deployment"
    assert {r.status for r in _rows(k8s_settings, inference_job_id=job.id)} == {ServiceStatus.STOPPED}


def test_the_shared_train_pool_is_one_scaled_deployment_of_runner_pods(
        fake: KubeContractFake, k8s_settings: Settings) -> None:
    """The pool's slots (``EASEL_TRAIN_POOL_WORKERS``) are replicas of one Deployment: interchangeable pods, each
    with the model-runner sidecar holding no secret; a pod stuck on its image errors the slots, whose relaunch
    (admin's pool loop) scales it again; the last slot's stop deletes it."""
    launcher = make_launcher(k8s_settings, make_sessionmaker(make_engine(k8s_settings.resolved_database_url)))
    states = [launcher.start(spec) for spec in pool_worker_specs(3)]
    rows = [_rows(k8s_settings, id=s.id)[0] for s in states]
    assert {r.pod_name for r in rows} == {"train-pool"} and {r.status for r in rows} == {ServiceStatus.RUNNING}
    body = fake.named("deployments")["train-pool"]
    assert body["spec"]["replicas"] == 3
    pods = [p for p in fake.named("pods").values() if p["metadata"]["ownerReferences"][0]["name"] == "train-pool"]
    assert len(pods) == 3
    pod = body["spec"]["template"]["spec"]
    assert model_pod_problems(pod) == [] and runner_of(pod)["name"] == "model-runner"
    container = _container(body)
    assert (container["command"], container["args"]) == (["easel", "train-worker"], ["--pool"])
    env = {item["name"] for item in container["env"]}
    assert not env & {"EASEL_SERVICE_ID", "EASEL_WORKER_INDEX", "EASEL_SUB_TRAIN_JOB_ID"}, "no pod is one slot"
    labels = body["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "train-worker", "the model pods' egress policy selects it"
    assert "restartPolicy" not in container and pod["restartPolicy"] == "Always", "Kubernetes restarts a crash"

    launcher.stop(states[0].id)
    assert fake.named("deployments")["train-pool"]["spec"]["replicas"] == 2
    assert launcher.status(states[1].id).status is ServiceStatus.RUNNING
    assert fake.stall_pods("easel.io/pool=train", "ImagePullBackOff", "Back-off pulling image") >= 1
    assert launcher.status(states[1].id).status is ServiceStatus.ERRORED
    assert "ImagePullBackOff" in _rows(k8s_settings, id=states[1].id)[0].command["error"]
    assert fake.named("deployments")["train-pool"]["spec"]["replicas"] == 2, "an errored slot is not stopped"
    launcher.stop(states[2].id)
    relaunched = launcher.start(pool_worker_specs(3)[1])
    assert fake.named("deployments")["train-pool"]["spec"]["replicas"] == 1, "only the live slots count"
    launcher.stop(relaunched.id)
    assert "train-pool" not in fake.named("deployments"), "the last slot's stop deletes the Deployment"
    assert not [p for p in fake.named("pods").values() if p["metadata"]["ownerReferences"][0]["name"] == "train-pool"]


def test_admin_runs_the_pool_on_kubernetes_and_removes_it_on_shutdown(
        fake: KubeContractFake, k8s_settings: Settings) -> None:
    pooled = k8s_settings.model_copy(update={"train_pool_workers": 2})
    with ServerThread(create_app(pooled)):
        deployment = _wait(lambda: fake.named("deployments").get("train-pool"), 30, "the pool's Deployment")
        _wait(lambda: fake.named("deployments")["train-pool"]["spec"]["replicas"] == 2, 30, "both pool slots")
        assert model_pod_problems(deployment["spec"]["template"]["spec"]) == []
        live = [r for r in _rows(k8s_settings, pod_name="train-pool") if r.status is ServiceStatus.RUNNING]
        assert sorted(r.name for r in live) == ["train-pool-0", "train-pool-1"]
    assert "train-pool" not in fake.named("deployments"), "admin stops its pool when it stops"


def test_a_refused_serving_launch_errors_the_inference_job_and_leaves_nothing(
        client: Client, fake: KubeContractFake, k8s_settings: Settings, ids: tuple[str, str]) -> None:
    """The predictor's Deployment is created, its Service refused: the Deployment is removed again and the
    inference job is ERRORED (orchestration's own launch path, with admin's state)."""
    from admin.services.orchestration import launch_inference_job
    from admin.state import AdminState

    client.create_train_job("k8s-quota", "TEST_TASK", ids[0], ids[0], [ids[1]], budget=TrainBudget(model_trial_count=1))
    job, app, version = _inference_job(k8s_settings, "k8s-quota", workers=2)
    quota = 'services "x" is forbidden: exceeded quota: easel-quota, requested: services=1, limited: services=0'
    fake.refuse("create", "services", 403, "Forbidden", quota)
    before = set(fake.named("deployments"))
    state = AdminState.from_settings(k8s_settings)
    try:
        with pytest.raises(LaunchRefused, match="exceeded quota"):
            launch_inference_job(state, job.id, app, version)
    finally:
        state.close()
    assert set(fake.named("deployments")) == before, "the half-made predictor was removed"
    sessions = make_sessionmaker(make_engine(k8s_settings.resolved_database_url))
    with session_scope(sessions) as session:
        assert session.get_one(InferenceJob, job.id).status is JobStatus.ERRORED
    rows = _rows(k8s_settings, inference_job_id=job.id)
    assert [r.status for r in rows] == [ServiceStatus.ERRORED] and quota in rows[0].command["error"]


def test_a_pod_stuck_on_its_image_errors_the_service_with_the_reason(
        client: Client, fake: KubeContractFake, k8s_settings: Settings, ids: tuple[str, str]) -> None:
    """A bad image is not refused by the API; its pod waits forever. The service is ERRORED, not left hanging."""
    client.create_train_job("k8s-image", "TEST_TASK", ids[0], ids[0], [ids[1]], budget=TrainBudget(model_trial_count=1))
    job, app, version = _inference_job(k8s_settings, "k8s-image", workers=2)
    launcher = make_launcher(k8s_settings, make_sessionmaker(make_engine(k8s_settings.resolved_database_url)))
    specs = inference_job_specs(job, app, version, host="0.0.0.0", port=8080)
    states = [launcher.start(spec) for spec in specs]
    predictor = next(s for s in states if s.kind is ServiceKind.PREDICTOR)
    workers = [s for s in states if s.kind is ServiceKind.INFERENCE_WORKER]
    name = _rows(k8s_settings, id=workers[0].id)[0].pod_name
    assert len([p for p in fake.named("pods").values() if p["metadata"]["ownerReferences"][0]["name"] == name]) == 2
    message = 'Back-off pulling image "registry.example/easel:0.1.0-cpu"'
    assert fake.stall_pods(f"easel.io/service={predictor.id}", "ImagePullBackOff", message) == 1
    assert launcher.status(predictor.id).status is ServiceStatus.ERRORED
    assert f"ImagePullBackOff: {message}" in _rows(k8s_settings, id=predictor.id)[0].command["error"]
    assert launcher.status(workers[0].id).status is ServiceStatus.RUNNING, "the workers' pods are fine"
    for state in states:
        launcher.stop(state.id)
    assert not [p for p in fake.named("pods").values() if p["metadata"]["ownerReferences"][0]["name"] == name]


def test_a_deployment_deleted_behind_easels_back_is_errored(
        client: Client, fake: KubeContractFake, k8s_settings: Settings, ids: tuple[str, str]) -> None:
    client.create_train_job("k8s-gone", "TEST_TASK", ids[0], ids[0], [ids[1]], budget=TrainBudget(model_trial_count=1))
    job, app, version = _inference_job(k8s_settings, "k8s-gone", workers=1)
    launcher = make_launcher(k8s_settings, make_sessionmaker(make_engine(k8s_settings.resolved_database_url)))
    predictor = launcher.start(inference_job_specs(job, app, version, host="0.0.0.0", port=8080)[0])
    name = _rows(k8s_settings, id=predictor.id)[0].pod_name
    fake.objects.pop(("deployments", NAMESPACE, name))
    assert launcher.status(predictor.id).status is ServiceStatus.ERRORED
    launcher.stop(predictor.id)


def test_a_spec_the_image_cannot_run_is_refused_before_anything_is_created(k8s_settings: Settings) -> None:
    from easel.launcher import ServiceSpec

    launcher = make_launcher(k8s_settings, make_sessionmaker(make_engine(k8s_settings.resolved_database_url)))
    with pytest.raises(ValueError, match="no entry point in the Easel image"):
        launcher.start(ServiceSpec(name="script", kind=ServiceKind.OTHER, argv=["python", "script.py"]))
    assert LaunchRefused.__mro__[1] is ValueError


def test_the_fake_validates_bodies_strictly(fake: KubeContractFake, k8s_settings: Settings) -> None:
    """A body with a field the schema does not know gets 422 Invalid, as from a strict API server (the client
    library checks its own models too, so this posts JSON directly)."""
    import httpx

    from easel.launcher import ServiceSpec, k8s_objects

    spec = ServiceSpec(name="bad", kind=ServiceKind.ADVISOR, argv=["python", "-m", "advisor"])
    body = k8s_objects.job_body(k8s_settings, spec, "bad-job", "0" * 32, None)
    body["spec"]["template"]["spec"]["containers"][0]["gpuCount"] = 1
    answer = httpx.post(f"{fake.url}/apis/batch/v1/namespaces/{NAMESPACE}/jobs", json=body)
    assert answer.status_code == 422
    assert answer.json()["reason"] == "Invalid" and "gpuCount" in answer.json()["message"]
    assert "bad-job" not in fake.named("jobs")


def test_the_fake_refuses_a_pod_the_api_server_would(fake: KubeContractFake, k8s_settings: Settings) -> None:
    """Beyond the schema: a mount of a volume the pod lacks, a sidecar that is not one (the server's own rules
    the two-container model pods rely on)."""
    import httpx

    from easel.launcher import ServiceSpec, k8s_objects

    spec = ServiceSpec(name="w", kind=ServiceKind.TRAIN_WORKER, argv=["python", "-m", "train_worker"])
    url = f"{fake.url}/apis/batch/v1/namespaces/{NAMESPACE}/jobs"
    good = k8s_objects.job_body(k8s_settings, spec, "good-job", "1" * 32, None)
    assert httpx.post(url, json=good).status_code == 201
    for name, breach, message in [
        ("no-volume", lambda pod: pod["volumes"].pop(), "volumeMounts"),
        ("bad-sidecar", lambda pod: pod["initContainers"][0].update(restartPolicy="Never"), "restartPolicy"),
    ]:
        body = k8s_objects.job_body(k8s_settings, spec, f"{name}-job", "2" * 32, None)
        breach(body["spec"]["template"]["spec"])
        answer = httpx.post(url, json=body)
        assert answer.status_code == 422 and message in answer.json()["message"], answer.json()
        assert f"{name}-job" not in fake.named("jobs")
