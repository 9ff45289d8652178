"""The authorisation matrix (each role x each route) and ownership: B cannot read, stop or delete A's objects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from admin_helpers import PASSWORD, TASK

from sdk import Client, EaselError, Forbidden, NotFound, Unauthorized
from tests.support import GOOD_TEMPLATE, npz_file

ROLES = ["SUPERADMIN", "ADMIN", "MODEL_DEVELOPER", "APP_DEVELOPER", "APP_USER"]
ADMINS = {"SUPERADMIN", "ADMIN"}
DEVELOPERS = ADMINS | {"MODEL_DEVELOPER", "APP_DEVELOPER"}
UPLOADERS = ADMINS | {"MODEL_DEVELOPER"}
EVERYONE = set(ROLES)
NOBODY_ID = "00000000-0000-0000-0000-000000000000"

Call = Callable[[Client, Path], object]

# route -> (who passes the role check, a call through the SDK). Calls name absent objects, so a role that
# passes gets an ordinary answer (a result, 404, 409 or 422), never 401 or 403.
ROUTES: dict[str, tuple[set[str], Call]] = {
    "GET /health": (EVERYONE, lambda c, f: c.health()),
    "GET /users/me": (EVERYONE, lambda c, f: c.me()),
    "POST /users": (ADMINS, lambda c, f: c.create_user(f"new-{f.name}@easel.test", PASSWORD, "APP_USER")),
    "GET /users": (ADMINS, lambda c, f: c.list_users()),
    "PUT /users/me/password": (EVERYONE, lambda c, f: c._json(
        "PUT", "/users/me/password", json={"current_password": "x", "new_password": "password123"})),
    "GET /users/{id}": (EVERYONE, lambda c, f: c.get_user(NOBODY_ID)),
    "DELETE /users/{id}": (ADMINS, lambda c, f: c.delete_user(NOBODY_ID)),
    "PATCH /users/{id}": (ADMINS, lambda c, f: c._json("PATCH", f"/users/{NOBODY_ID}", json={"role": "APP_USER"})),
    "POST /datasets": (DEVELOPERS, lambda c, f: c.upload_dataset("d", TASK, npz_file(f / "d.npz"))),
    "GET /datasets": (DEVELOPERS, lambda c, f: c.list_datasets()),
    "GET /datasets/{id}": (DEVELOPERS, lambda c, f: c.get_dataset(NOBODY_ID)),
    "DELETE /datasets/{id}": (DEVELOPERS, lambda c, f: c.delete_dataset(NOBODY_ID)),
    "POST /models": (UPLOADERS, lambda c, f: c.upload_model(f"m-{f.name}", TASK, _template(f))),
    "GET /models": (DEVELOPERS, lambda c, f: c.list_models()),
    "GET /models/{id}": (DEVELOPERS, lambda c, f: c.get_model(NOBODY_ID)),
    "DELETE /models/{id}": (DEVELOPERS, lambda c, f: c.delete_model(NOBODY_ID)),
    "POST /train_jobs": (DEVELOPERS, lambda c, f: c.create_train_job("app", TASK, NOBODY_ID, NOBODY_ID, [NOBODY_ID])),
    "GET /train_jobs": (DEVELOPERS, lambda c, f: c.list_train_jobs()),
    "GET /train_jobs/{app}/{v}": (DEVELOPERS, lambda c, f: c.get_train_job("app", 1)),
    "POST /train_jobs/{app}/{v}/stop": (DEVELOPERS, lambda c, f: c.stop_train_job("app", 1)),
    "GET /train_jobs/{app}/{v}/trials": (DEVELOPERS, lambda c, f: c.list_trials("app", 1, best=2)),
    "GET /pool": (DEVELOPERS, lambda c, f: c.get_pool()),
    "GET /trials/{id}": (DEVELOPERS, lambda c, f: c.get_trial(NOBODY_ID)),
    "GET /trials/{id}/logs": (DEVELOPERS, lambda c, f: c.get_trial_logs(NOBODY_ID)),
    "GET /trials/{id}/parameters": (DEVELOPERS, lambda c, f: c.get_trial_parameters(NOBODY_ID)),
    "POST /inference_jobs": (DEVELOPERS, lambda c, f: c.create_inference_job("app", 1)),
    "GET /inference_jobs": (DEVELOPERS, lambda c, f: c.list_inference_jobs()),
    "GET /inference_jobs/{app}/{v}": (DEVELOPERS, lambda c, f: c.get_inference_job("app", 1)),
    "POST /inference_jobs/{app}/{v}/stop": (DEVELOPERS, lambda c, f: c.stop_inference_job("app", 1)),
    "POST /inference_jobs/{app}/{v}/keys": (DEVELOPERS, lambda c, f: c.create_api_key("app", 1)),
    "GET /inference_jobs/{app}/{v}/keys": (DEVELOPERS, lambda c, f: c.list_api_keys("app", 1)),
    "DELETE /inference_jobs/{app}/{v}/keys/{id}": (DEVELOPERS, lambda c, f: c.revoke_api_key("app", 1, NOBODY_ID)),
    "POST /inference_jobs/{app}/{v}/explain": (DEVELOPERS, lambda c, f: c.explain("app", 1, [[0.0]])),
    "GET /explanations/{id}": (DEVELOPERS, lambda c, f: c.get_explanation(NOBODY_ID)),
    "GET /explanations/{id}/overlay.png": (DEVELOPERS,
                                           lambda c, f: c._send("GET", f"/explanations/{NOBODY_ID}/overlay.png")),
    # the dashboard's live views (no SDK verbs: the browser calls them)
    "GET /train_jobs/{app}/{v}/events": (DEVELOPERS, lambda c, f: c._json("GET", "/train_jobs/app/1/events")),
    "GET /inference_jobs/{app}/{v}/metrics": (DEVELOPERS, lambda c, f: c._json("GET", "/inference_jobs/app/1/metrics")),
    "GET /inference_jobs/{app}/{v}/predictor": (DEVELOPERS,
                                                lambda c, f: c._json("GET", "/inference_jobs/app/1/predictor")),
    "POST /inference_jobs/{app}/{v}/predict": (DEVELOPERS, lambda c, f: c._json(
        "POST", "/inference_jobs/app/1/predict", json={"instances": [[0.0]], "deadline_s": 1.0})),
    # the model registry, rolling updates, monitoring
    "POST /apps/{app}/versions": (DEVELOPERS, lambda c, f: c.register_version("app")),
    "GET /apps/{app}/versions": (DEVELOPERS, lambda c, f: c.list_versions("app")),
    "GET /apps/{app}/versions/{number}": (DEVELOPERS, lambda c, f: c.get_version("app", 1)),
    "GET /apps/{app}/versions/{number}/verdicts": (DEVELOPERS, lambda c, f: c.list_verdicts("app", 1)),
    "POST /apps/{app}/versions/{number}/stage": (DEVELOPERS, lambda c, f: c.set_stage("app", 1, "archived")),
    "POST /inference_jobs/{app}/{v}/update": (DEVELOPERS, lambda c, f: c.update_inference_job("app", 1, 1)),
    "GET /inference_jobs/{app}/{v}/updates": (DEVELOPERS, lambda c, f: c.list_inference_job_updates("app", 1)),
    "POST /inference_jobs/{app}/{v}/feedback": (DEVELOPERS, lambda c, f: c.send_feedback("app", 1, "a" * 32, [1])),
    "GET /apps/{app}/series": (DEVELOPERS, lambda c, f: c.app_series("app")),
    # declarative tasks
    "GET /datasets/{id}/schema": (DEVELOPERS, lambda c, f: c.get_dataset_schema(NOBODY_ID)),
    "PATCH /datasets/{id}/schema": (DEVELOPERS, lambda c, f: c.edit_dataset_schema(NOBODY_ID)),
    "PATCH /models/{id}": (DEVELOPERS, lambda c, f: c.set_model_access(NOBODY_ID, "PUBLIC")),
    "GET /apps/{app}": (DEVELOPERS, lambda c, f: c.get_app("app")),
    "PATCH /apps/{app}": (DEVELOPERS, lambda c, f: c.set_app("app", auto_update=True)),
}


def _template(files: Path) -> Path:
    path = files / "tiny.py"
    path.write_text(GOOD_TEMPLATE)
    return path


def test_every_route_is_in_the_matrix(admin_server) -> None:
    spec = admin_server.app.openapi()
    served = {f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item}
    normal = {r.replace("{id}", "{x}").replace("{app}/{v}", "{app}/{version}") for r in ROUTES}
    served = {_generic(r) for r in served} - {"POST /tokens"}
    assert served == {_generic(r) for r in normal}


def _generic(route: str) -> str:
    import re

    return re.sub(r"\{(user_id|dataset_id|model_id|trial_id|explanation_id|key_id|x)\}", "{x}", route)


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(role: str, make_user, root: Client, files: Path) -> None:
    client = root if role == "SUPERADMIN" else make_user(role)[0]
    outcomes = {}
    for route, (_allowed, call) in ROUTES.items():
        case_dir = files / route.replace("/", "_").replace(" ", "_").replace("{", "").replace("}", "")
        case_dir.mkdir()
        try:
            call(client, case_dir)
            outcomes[route] = "ok"
        except Forbidden:
            outcomes[route] = "forbidden"
        except Unauthorized:
            outcomes[route] = "unauthorized"
        except EaselError as error:
            assert error.status_code is not None and error.status_code < 500, (route, error)
            outcomes[route] = "ok"  # passed the role check; 404/409/422 about the absent objects
    expected = {route: "ok" if role in allowed else "forbidden" for route, (allowed, _) in ROUTES.items()}
    assert outcomes == expected


def test_anonymous_gets_401_everywhere_but_health(anonymous: Client, files: Path) -> None:
    for route, (_allowed, call) in ROUTES.items():
        case_dir = files / str(abs(hash(route)))
        case_dir.mkdir()
        if route == "GET /health":
            call(anonymous, case_dir)
            continue
        with pytest.raises(Unauthorized):
            call(anonymous, case_dir)


@pytest.mark.parametrize("role_a,role_b", [("APP_DEVELOPER", "APP_DEVELOPER"), ("MODEL_DEVELOPER", "APP_DEVELOPER")])
def test_user_b_cannot_touch_user_a_objects(role_a: str, role_b: str, make_user, root: Client, files: Path,
                                            seed_trials) -> None:
    a, _ = make_user(role_a)
    b, _ = make_user(role_b)
    admin, _ = make_user("ADMIN")
    mlp = next(m.id for m in a.list_models() if m.name == "SlicedMLP")
    dataset = a.upload_dataset("a-data", TASK, npz_file(files / "a.npz"))
    spare = a.upload_dataset("a-spare", TASK, npz_file(files / "spare.npz"))
    a.create_train_job("a-app", TASK, dataset.id, dataset.id, [mlp])
    trial_id = seed_trials("a-app", 1, [("COMPLETED", 0.9, True)], finish_as="COMPLETED")[0]
    a.create_inference_job("a-app", 1)

    # B sees none of it ...
    assert b.list_datasets().total == 0
    assert b.list_train_jobs().total == 0
    assert b.list_inference_jobs().total == 0
    for attempt in (
        lambda: b.get_dataset(dataset.id), lambda: b.delete_dataset(spare.id),
        lambda: b.get_train_job("a-app", 1), lambda: b.stop_train_job("a-app", 1),
        lambda: b.list_trials("a-app", 1), lambda: b.get_trial(trial_id),
        lambda: b.get_trial_logs(trial_id), lambda: b.get_trial_parameters(trial_id),
        lambda: b.get_inference_job("a-app", 1), lambda: b.stop_inference_job("a-app", 1),
        lambda: b.create_inference_job("a-app", 1),
        lambda: b.create_train_job("b-app", TASK, dataset.id, dataset.id, [mlp]),
    ):
        with pytest.raises(NotFound):
            attempt()
    # ... and changed none of it.
    assert a.get_dataset(spare.id).id == spare.id
    assert a.get_train_job("a-app", 1).status == "COMPLETED"
    assert a.get_inference_job("a-app", 1).status == "STARTED"

    # Admins see and stop everything.
    assert admin.list_datasets().total == 2
    assert admin.get_trial(trial_id).id == trial_id
    assert admin.stop_inference_job("a-app", 1).status == "STOPPED"
    admin.delete_dataset(spare.id)
    assert root.list_train_jobs(app="a-app").total == 1


def test_private_templates_are_private(make_user, files: Path) -> None:
    a, _ = make_user("MODEL_DEVELOPER")
    b, _ = make_user("MODEL_DEVELOPER")
    private = a.upload_model("a-private", TASK, _template(files))
    b_data = b.upload_dataset("b", TASK, npz_file(files / "b.npz"))
    with pytest.raises(NotFound):
        b.get_model(private.id)
    with pytest.raises(NotFound):
        b.delete_model(private.id)
    with pytest.raises(NotFound, match="no model"):
        b.create_train_job("b-app", TASK, b_data.id, b_data.id, [private.id])
    assert a.get_model(private.id).id == private.id
