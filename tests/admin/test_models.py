"""Model templates: built-ins registered, uploads checked in a sandboxed subprocess, never imported here."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from admin_helpers import TASK

from builtin_templates import BUILTIN_TEMPLATES
from easel.model import knob_config_from_dict
from sdk import Client, Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge, UnsupportedFormat
from tests.support import GOOD_TEMPLATE


@pytest.fixture
def model_dev(make_user) -> Client:
    return make_user("MODEL_DEVELOPER")[0]


def _file(files: Path, source: str, name: str = "template.py") -> Path:
    path = files / name
    path.write_text(source)
    return path


def test_builtins_are_registered_with_valid_knob_configs(model_dev: Client) -> None:
    models = {m.name: m for m in model_dev.list_models()}
    assert {spec.name for spec in BUILTIN_TEMPLATES} <= set(models)
    for spec in BUILTIN_TEMPLATES:
        model = models[spec.name]
        assert (model.source, model.access_right, model.owner_id, model.task) == ("BUILTIN", "PUBLIC", None, spec.task)
        config = knob_config_from_dict(model.knob_config)
        assert {"lr", "batch_size", "early_stop"} <= set(config)
        assert model_dev.get_model(model.id) == model
    assert {m.name for m in model_dev.list_models(task="TABULAR_CLASSIFICATION")} == {"SlicedMLP-tabular"}


def test_upload_a_good_template(model_dev: Client, files: Path) -> None:
    model = model_dev.upload_model("tiny", TASK, _file(files, GOOD_TEMPLATE), dependencies={"numpy": "2"})
    assert (model.name, model.source, model.model_class, model.access_right) == ("tiny", "UPLOADED", "TinyModel", "PRIVATE")
    assert model.knob_config["lr"] == {"type": "float", "low": 0.0001, "high": 0.1, "log_scale": True}
    assert model.knob_config["early_stop"] == {"type": "policy", "policy": "EARLY_STOP"}
    assert model.dependencies == {"numpy": "2"}
    assert model_dev.get_model(model.id) == model
    # Checked in a child process: nothing of the template was imported into this (admin's) process.
    assert not any("template" in name and "easel" not in name for name in sys.modules if "uploaded" in name)
    assert "easel_uploaded_template" not in sys.modules
    with pytest.raises(Conflict, match="already exists"):
        model_dev.upload_model("tiny", TASK, _file(files, GOOD_TEMPLATE))
    with pytest.raises(Conflict, match="already exists"):
        model_dev.upload_model("SlicedMLP", TASK, _file(files, GOOD_TEMPLATE))


def test_class_name_can_be_given(model_dev: Client, files: Path) -> None:
    source = GOOD_TEMPLATE + "\n\nclass Other(TinyModel):\n    pass\n"
    with pytest.raises(Invalid, match="found several BaseModel subclasses"):
        model_dev.upload_model("two", TASK, _file(files, source))
    assert model_dev.upload_model("two", TASK, _file(files, source), class_name="Other").model_class == "Other"
    with pytest.raises(Invalid, match="no class named 'Missing'"):
        model_dev.upload_model("three", TASK, _file(files, source), class_name="Missing")


BAD_TEMPLATES = {
    "syntax error": ("def broken(:\n    pass\n", r"syntax error in .* at line 1"),
    "raises at import": ("import easel.model\nraise RuntimeError('boom at import')\n",
                         r"raised RuntimeError: boom at import"),
    "missing module": ("import no_such_module_here\n", r"ModuleNotFoundError"),
    "no template class": ("x = 1\n", r"found no BaseModel subclass"),
    "abstract class": (
        "from easel.model import BaseModel\n"
        "class Half(BaseModel):\n"
        "    @classmethod\n"
        "    def get_knob_config(cls):\n"
        "        return {}\n",
        r"Half does not implement .*dump_parameters",
    ),
    "bad knob config": (GOOD_TEMPLATE.replace('"layers": IntegerKnob(1, 4)', '"layers": 42'), r"knob 'layers' must be a knob"),
    "bad knob range": (GOOD_TEMPLATE.replace("IntegerKnob(1, 4)", "IntegerKnob(5, 1)"), r"must not exceed high"),
    "wrong task": (GOOD_TEMPLATE.replace('TASKS = ("IMAGE_CLASSIFICATION",)', 'TASKS = ("SPEECH",)'), r"declares TASKS"),
    "exits at import": ("import sys\nsys.exit(3)\n", r"raised SystemExit"),
    "not utf-8": (None, r"not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_TEMPLATES))
def test_bad_templates_are_refused_with_a_clear_message(model_dev: Client, files: Path, case: str) -> None:
    source, message = BAD_TEMPLATES[case]
    path = files / "bad.py"
    if source is None:
        path.write_bytes(b"x = '\xff\xfe'\n")
    else:
        path.write_text(source)
    with pytest.raises(Invalid, match=message) as caught:
        model_dev.upload_model("bad", TASK, path)
    assert caught.value.status_code == 422 and caught.value.code == "invalid_template"
    assert "Traceback (most recent call last)" not in caught.value.detail
    assert model_dev.list_models().total == len(BUILTIN_TEMPLATES)


def test_infinite_loop_at_import_times_out_and_admin_stays_up(model_dev: Client, files: Path, url: str,
                                                             admin_settings) -> None:
    path = _file(files, "import time\nwhile True:\n    time.sleep(0.01)\n", "loop.py")
    outcome: dict[str, object] = {}

    def upload() -> None:
        try:
            model_dev.upload_model("loop", TASK, path)
        except Invalid as error:
            outcome["error"] = error

    worker = threading.Thread(target=upload)
    worker.start()
    # While the check runs, admin answers other requests: health comes back before the upload does.
    with Client(url) as other:
        assert other.health().status == "ok"
        assert worker.is_alive() and "error" not in outcome
    worker.join(60)
    error = outcome.get("error")
    assert isinstance(error, Invalid), outcome
    assert f"timed out after {admin_settings.template_check_timeout_s:g}" in error.detail, error.detail
    assert "infinite loop" in error.detail
    assert model_dev.health().status == "ok"
    assert model_dev.list_models().total == len(BUILTIN_TEMPLATES)


def test_busy_loop_in_knob_config_times_out(model_dev: Client, files: Path) -> None:
    source = GOOD_TEMPLATE.replace("        return {\n            \"lr\"", "        while True:\n            pass\n        return {\n            \"lr\"")
    with pytest.raises(Invalid, match="timed out"):
        model_dev.upload_model("spin", TASK, _file(files, source))


def test_upload_rules(make_user, model_dev: Client, files: Path) -> None:
    app_dev = make_user("APP_DEVELOPER")[0]
    with pytest.raises(Forbidden, match="uploading a model template"):
        app_dev.upload_model("nope", TASK, _file(files, GOOD_TEMPLATE))
    with pytest.raises(UnsupportedFormat, match="not a Python file"):
        model_dev.upload_model("txt", TASK, _file(files, GOOD_TEMPLATE, "template.txt"))
    with pytest.raises(PayloadTooLarge):
        model_dev.upload_model("huge", TASK, _file(files, "#" * (70 * 1024), "huge.py"))
    with pytest.raises(Invalid, match="dependencies"):
        model_dev.upload_model("deps", TASK, _file(files, GOOD_TEMPLATE), dependencies={"bad name!": "1"})
    with pytest.raises(Invalid):
        model_dev.upload_model("bad name with spaces", TASK, _file(files, GOOD_TEMPLATE))


def test_visibility_and_deletion(make_user, model_dev: Client, files: Path, root: Client) -> None:
    other_dev = make_user("MODEL_DEVELOPER")[0]
    app_dev = make_user("APP_DEVELOPER")[0]
    private = model_dev.upload_model("mine", TASK, _file(files, GOOD_TEMPLATE))
    public = model_dev.upload_model("shared", TASK, _file(files, GOOD_TEMPLATE), access_right="PUBLIC")
    for viewer in (other_dev, app_dev):
        names = {m.name for m in viewer.list_models()}
        assert "shared" in names and "mine" not in names
        with pytest.raises(NotFound):
            viewer.get_model(private.id)
        assert viewer.get_model(public.id).name == "shared"
        with pytest.raises(NotFound):
            viewer.delete_model(private.id)
        with pytest.raises(Forbidden, match="only the owner"):
            viewer.delete_model(public.id)
    assert root.get_model(private.id).name == "mine"  # admins see everything
    builtin = next(m for m in model_dev.list_models() if m.source == "BUILTIN")
    with pytest.raises(Forbidden, match="built-in"):
        root.delete_model(builtin.id)
    model_dev.delete_model(private.id)
    root.delete_model(public.id)
    with pytest.raises(NotFound):
        model_dev.get_model(private.id)


def test_registration_moves_builtin_rows_to_the_templates_package(admin_settings) -> None:
    """A database from before the move (module ``easel.model.builtin.sliced``) is refreshed at admin start:
    same row ids (trials keep their model), the module workers import is the new package's."""
    from sqlalchemy import select

    from admin.services.templates import register_builtin_templates
    from easel.blobstore import LocalBlobStore
    from easel.db.models import Model
    from easel.db.session import make_engine, make_sessionmaker, session_scope
    from easel.model.loading import load_template_class

    engine = make_engine(admin_settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    try:
        with session_scope(sessions) as session:
            row = session.scalars(select(Model).where(Model.name == "SlicedMLP")).one()
            row.module_ref, model_id = "easel.model.builtin.sliced", row.id
        assert "SlicedMLP" in register_builtin_templates(sessions)
        with session_scope(sessions) as session:
            row = session.get_one(Model, model_id)
            assert row.module_ref == "builtin_templates.sliced"
            cls = load_template_class(row, LocalBlobStore(admin_settings.blob_dir))
        assert cls.__module__ == "builtin_templates.sliced" and cls.__name__ == "SlicedMLPTemplate"
    finally:
        engine.dispose()
