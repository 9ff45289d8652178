"""The Role in ``deploy/k8s/base`` grants exactly the verbs the Kubernetes launcher calls.

A whole cycle — every kind of service started, read back, scaled and stopped — runs against a fresh
Kubernetes API CONTRACT FAKE (not a cluster), which records every call. Admin runs here without launching
services (its launcher is the contract fake that only records them, so no supervisor of real processes
reads the same rows while the cycle runs).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fake_launcher import FakeLauncher
from k8s_contract_fake import KubeContractFake
from support import ServerThread, npz_file

from admin.app import create_app
from admin.services.orchestration import inference_job_specs, train_job_specs
from easel.db.enums import JobStatus
from easel.db.models import InferenceJob, TrainJob
from easel.db.session import make_engine, make_sessionmaker, session_scope
from easel.launcher import make_launcher
from easel.launcher.kubernetes import API_VERBS
from easel.settings import LauncherKind, Settings
from sdk import Client, TrainBudget

EMAIL, PASSWORD = "k8s-rbac@easel.test", "k8s-rbac-password"
TEMPLATE = Path(__file__).parents[1] / "tuning" / "quadratic_template.py"
ROLE = Path(__file__).parents[2] / "deploy" / "k8s" / "base" / "rbac.yaml"


@pytest.fixture
def train_job_id(settings: Settings, tmp_path: Path) -> Iterator[str]:
    recording = settings.model_copy(update={"superadmin_email": EMAIL, "superadmin_password": PASSWORD,
                                            "password_hash_rounds": 4})
    with ServerThread(create_app(recording, FakeLauncher)) as server, Client(server.url) as client:
        client.login(EMAIL, PASSWORD)
        data = client.upload_dataset("rbac-q", "TEST_TASK", npz_file(tmp_path / "q.npz"))
        model = client.upload_model("quadratic-rbac", "TEST_TASK", TEMPLATE, class_name="Quadratic")
        job = client.create_train_job("k8s-rbac", "TEST_TASK", data.id, data.id, [model.id],
                                      budget=TrainBudget(model_trial_count=1, workers=2, gpu_count=1))
        yield job.id


def test_role_grants_exactly_the_verbs_the_launcher_uses(settings: Settings, train_job_id: str,
                                                         tmp_path: Path) -> None:
    fake = KubeContractFake().start()
    try:
        k8s = settings.model_copy(update={"launcher": LauncherKind.KUBERNETES, "k8s_namespace": "easel-rbac",
                                          "k8s_kubeconfig": str(fake.write_kubeconfig(tmp_path / "kc", "easel-rbac"))})
        sessions = make_sessionmaker(make_engine(k8s.resolved_database_url))
        launcher = make_launcher(k8s, sessions)
        with session_scope(sessions) as session:
            train = session.get_one(TrainJob, train_job_id)
            specs = train_job_specs(train)
            job = InferenceJob(train_job_id=train.id, status=JobStatus.RUNNING, owner_id=train.owner_id,
                               budget={"WORKERS": 2, "GPU_COUNT": 0}, trial_ids={"trials": []})
            session.add(job)
            session.flush()
            specs += inference_job_specs(job, train.app, train.app_version, host="0.0.0.0", port=8080)
        started = [launcher.start(spec) for spec in specs]
        for state in started:
            launcher.status(state.id)
        for state in started:
            launcher.stop(state.id)
        assert not fake.named("jobs") and not fake.named("deployments") and not fake.named("services")
    finally:
        fake.stop()
    used = fake.verbs_used()
    assert used == {(group, resource, verb) for (group, resource), verbs in API_VERBS.items() for verb in verbs}
    role = next(d for d in yaml.safe_load_all(ROLE.read_text()) if d and d["kind"] == "Role")
    granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    assert granted == used, f"the Role grants {sorted(granted - used)} unused; lacks {sorted(used - granted)}"
