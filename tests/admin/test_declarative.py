"""Declarative tasks over REST: a dataset's schema inferred on upload, confirmed or edited; a train job without
models gets exactly the templates whose declared schema fits; a template published later is tuned for the apps
that opted in and whose data it fits (knowledge-base growth)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from easel.db.models import Service
from easel.db.session import session_scope
from sdk import Client, Invalid, NotFound, TrainBudget
from tests.support import GOOD_TEMPLATE, csv_file, image_zip, npz_file

IMAGE, TABULAR = "IMAGE_CLASSIFICATION", "TABULAR_CLASSIFICATION"
IMAGE_BUILTINS = {"SlicedMLP", "SlicedCNN", "SlicedVGG", "SlicedResNet"}


def template(name: str, task: str, fits: str | None) -> str:
    """GOOD_TEMPLATE as class ``name`` for ``task``, declaring ``FITS = <fits>`` (or nothing)."""
    source = GOOD_TEMPLATE.replace("TinyModel", name).replace('TASKS = ("IMAGE_CLASSIFICATION",)', f'TASKS = ("{task}",)')
    source = source.replace("from easel.model import", "from easel.model import SchemaFit,")
    if fits is not None:
        source = source.replace(f'TASKS = ("{task}",)', f'TASKS = ("{task}",)\n    FITS = {fits}')
    return source


@pytest.fixture
def developer(make_user) -> Client:
    return make_user("APP_DEVELOPER")[0]


@pytest.fixture
def model_dev(make_user) -> Client:
    return make_user("MODEL_DEVELOPER")[0]


def upload_template(client: Client, files: Path, name: str, task: str, fits: str | None,
                    access_right: str = "PUBLIC") -> str:
    path = files / f"{name}.py"
    path.write_text(template(name, task, fits))
    return client.upload_model(name, task, path, access_right=access_right).id


def test_every_format_gets_its_schema_on_upload(developer: Client, files: Path) -> None:
    pets = developer.upload_dataset("pets", None, image_zip(files / "pets.zip", {"cat": 2, "dog": 2, "owl": 1}))
    assert (pets.task, pets.schema_status) == (IMAGE, "inferred")  # no task given: the inferred kind
    schema = developer.get_dataset_schema(pets.id)
    assert (schema.task, schema.input_shape, schema.dtype, schema.num_classes, schema.classes, schema.status) == (
        IMAGE, [3, 8, 8], "uint8", 3, ["cat", "dog", "owl"], "inferred")
    table = developer.upload_dataset("table", None, csv_file(files / "t.csv", features=5, classes=("no", "yes")))
    assert table.task == TABULAR
    assert developer.get_dataset_schema(table.id).input_shape == [5]
    rows = developer.upload_dataset("rows", None, npz_file(files / "rows.npz", shape=(7,), num_classes=4))
    schema = developer.get_dataset_schema(rows.id)
    assert (rows.task, schema.input_shape, schema.dtype, schema.classes) == (TABULAR, [7], "float32",
                                                                            ["0", "1", "2", "3"])
    digits = developer.upload_dataset("digits", IMAGE, npz_file(files / "digits.npz", shape=(8, 8), num_classes=3))
    assert developer.get_dataset_schema(digits.id).input_shape == [1, 8, 8]


def test_the_owner_confirms_or_edits_the_schema_and_bad_edits_are_422(developer: Client, files: Path, url: str,
                                                                       make_user) -> None:
    dataset = developer.upload_dataset("digits", None, npz_file(files / "d.npz", shape=(8, 8), num_classes=3))
    confirmed = developer.edit_dataset_schema(dataset.id)
    assert confirmed.status == "confirmed" and confirmed.classes == ["0", "1", "2"]
    edited = developer.edit_dataset_schema(dataset.id, classes=["zero", "one", "two"], input_shape=[1, 4, 16])
    assert (edited.status, edited.classes, edited.input_shape) == ("edited", ["zero", "one", "two"], [1, 4, 16])
    assert edited.inferred["classes"] == ["0", "1", "2"]  # what the data says is kept beside the edit
    assert developer.get_dataset(dataset.id).schema_status == "edited"
    for change, words in [
        ({"num_classes": 2, "classes": []}, "labels use 3 classes"),
        ({"num_classes": 2}, "more than num_classes"),
        ({"input_shape": [1, 8, 9]}, "holds 72 values"),
        ({"classes": ["a", "b"]}, "one label per class"),
        ({"task": "SPEECH"}, "task must be one of"),
        ({"input_shape": [1, 64]}, r"input_shape must be \[C, H, W\]"),
        ({"dtype": "complex64"}, "dtype must be one of"),
    ]:
        with pytest.raises(Invalid, match=words):
            developer.edit_dataset_schema(dataset.id, **change)
    answer = httpx.patch(f"{url}/datasets/{dataset.id}/schema", json={"colour": "red"},
                         headers={"Authorization": f"Bearer {developer.token}"})
    assert answer.status_code == 422 and set(answer.json()) == {"error", "detail"}
    answer = httpx.patch(f"{url}/datasets/{dataset.id}/schema", json={"num_classes": 1},
                         headers={"Authorization": f"Bearer {developer.token}"})
    assert answer.status_code == 422 and answer.json()["error"] == "invalid"
    assert developer.get_dataset_schema(dataset.id).classes == ["zero", "one", "two"]  # refused edits changed nothing
    # Saying the 8x8 images are rows of 64 features makes it a tabular dataset: train jobs match on that.
    developer.edit_dataset_schema(dataset.id, task=TABULAR, input_shape=[64])
    assert developer.get_dataset(dataset.id).task == TABULAR
    stranger, _ = make_user("APP_DEVELOPER")
    with pytest.raises(NotFound):
        stranger.get_dataset_schema(dataset.id)
    with pytest.raises(NotFound):
        stranger.edit_dataset_schema(dataset.id)


def test_a_job_without_models_trains_exactly_the_fitting_templates(developer: Client, model_dev: Client,
                                                                    make_user, files: Path) -> None:
    fitting = upload_template(model_dev, files, "AnyImage", IMAGE, "SchemaFit(tasks=('IMAGE_CLASSIFICATION',))")
    upload_template(model_dev, files, "Undeclared", IMAGE, None)
    upload_template(model_dev, files, "TenClasses", IMAGE, "SchemaFit(tasks=('IMAGE_CLASSIFICATION',), min_classes=10)")
    upload_template(model_dev, files, "RgbOnly", IMAGE,
                    "SchemaFit(tasks=('IMAGE_CLASSIFICATION',), input_shape=(3, None, None))")
    other_dev, _ = make_user("MODEL_DEVELOPER")
    upload_template(other_dev, files, "SomeonesPrivate", IMAGE, "SchemaFit(tasks=('IMAGE_CLASSIFICATION',))",
                    access_right="PRIVATE")
    train = developer.upload_dataset("digits", None, npz_file(files / "train.npz", shape=(8, 8), num_classes=3))
    job = developer.create_train_job("digits", None, train.id, train.id)

    chosen = {c["name"] for c in job.candidates["chosen"]}
    assert chosen == IMAGE_BUILTINS | {"AnyImage"}
    assert {s.model_name for s in job.sub_train_jobs} == chosen
    assert job.task == IMAGE and job.candidates["schema"]["input_shape"] == [1, 8, 8]
    reasons = {c["name"]: c["reason"] for c in job.candidates["passed_over"]}
    assert "declares no schema" in reasons["Undeclared"]
    assert "at least 10 classes" in reasons["TenClasses"]
    assert "input shape [3, 'any', 'any']" in reasons["RgbOnly"]
    assert "SlicedMLP-tabular" in reasons and "SomeonesPrivate" not in reasons  # not the user's to use
    assert next(c for c in job.candidates["chosen"] if c["model_id"] == fitting)["reason"].startswith("declares it fits")
    assert developer.get_train_job("digits", 1).candidates == job.candidates  # recorded, not recomputed

    # The owner says the data has 10 classes (this sample shows 3): now TenClasses fits too.
    developer.edit_dataset_schema(train.id, num_classes=10, classes=[])
    again = developer.create_train_job("digits", None, train.id, train.id)
    assert {c["name"] for c in again.candidates["chosen"]} == chosen | {"TenClasses"}
    assert again.candidates["schema_status"] == "edited"
    table = developer.upload_dataset("table", None, csv_file(files / "t.csv"))
    tabular = developer.create_train_job("table", None, table.id, table.id)
    assert [s.model_name for s in tabular.sub_train_jobs] == ["SlicedMLP-tabular"]


def test_no_fitting_template_is_a_clear_422(developer: Client, files: Path, url: str) -> None:
    single = developer.upload_dataset("one-class", None, csv_file(files / "one.csv", classes=("only",)))
    with pytest.raises(Invalid, match="no template you can use fits dataset one-class") as refused:
        developer.create_train_job("lonely", None, single.id, single.id)
    assert refused.value.code == "no_fitting_template" and "1 classes" in str(refused.value)
    assert developer.list_train_jobs(app="lonely").total == 0


def sub_services(sessions: sessionmaker[Session], sub_id: str) -> list[str]:
    with session_scope(sessions) as session:
        return [s.kind.value for s in session.scalars(select(Service).where(Service.sub_train_job_id == sub_id))]


def test_a_published_template_is_tuned_for_opted_in_apps_it_fits(developer: Client, model_dev: Client,
                                                                 files: Path, sessions: sessionmaker[Session]) -> None:
    table = developer.upload_dataset("table", None, csv_file(files / "t.csv", features=4))
    images = developer.upload_dataset("pets", None, image_zip(files / "pets.zip"))
    for app, data in (("churn", table), ("quiet", table), ("pets", images)):
        developer.create_train_job(app, None, data.id, data.id)
    assert not developer.get_app("churn").auto_tune
    assert developer.set_app("churn", auto_tune=True).auto_tune
    developer.set_app("pets", auto_tune=True)  # opted in, but its data is images

    fits_tables = "SchemaFit(tasks=('TABULAR_CLASSIFICATION',), input_shape=(4,))"
    private = upload_template(model_dev, files, "PrivateTab", TABULAR, fits_tables, access_right="PRIVATE")
    assert [s.model_name for s in developer.get_train_job("churn", 1).sub_train_jobs] == ["SlicedMLP-tabular"]
    upload_template(model_dev, files, "WideTab", TABULAR, "SchemaFit(tasks=('TABULAR_CLASSIFICATION',), "
                    "input_shape=(9,))")
    upload_template(model_dev, files, "NoFitTab", TABULAR, None)
    new = upload_template(model_dev, files, "NewTab", TABULAR, fits_tables)

    churn = developer.get_train_job("churn", 1)
    assert [s.model_name for s in churn.sub_train_jobs] == ["SlicedMLP-tabular", "NewTab"]
    [added] = churn.candidates["added"]
    assert added["model_id"] == new and "published while the job ran" in added["reason"]
    added_sub = next(s for s in churn.sub_train_jobs if s.model_id == new)
    assert sorted(sub_services(sessions, added_sub.id)) == ["ADVISOR", "TRAIN_WORKER"]  # its services started
    assert [s.model_name for s in developer.get_train_job("quiet", 1).sub_train_jobs] == ["SlicedMLP-tabular"]
    assert "NewTab" not in {s.model_name for s in developer.get_train_job("pets", 1).sub_train_jobs}

    # Made visible later, the private template is published then.
    assert model_dev.set_model_access(private, "PUBLIC").access_right == "PUBLIC"
    assert [s.model_name for s in developer.get_train_job("churn", 1).sub_train_jobs] == [
        "SlicedMLP-tabular", "NewTab", "PrivateTab"]
    # A stopped job has no budget left: nothing more is added to it.
    developer.stop_train_job("churn", 1)
    upload_template(model_dev, files, "LateTab", TABULAR, fits_tables)
    assert len(developer.get_train_job("churn", 1).sub_train_jobs) == 3


def test_declared_fits_are_checked_in_the_sandbox_and_shown(model_dev: Client, files: Path) -> None:
    builtins = {m.name: m for m in model_dev.list_models() if m.source == "BUILTIN"}
    assert builtins["SlicedCNN"].fits == {"tasks": [IMAGE], "input_shape": None, "min_classes": 2,
                                          "max_classes": None, "dtypes": []}
    assert builtins["SlicedMLP-tabular"].fits["tasks"] == [TABULAR]  # the class fits both; each row its task
    declared = upload_template(model_dev, files, "Declared", TABULAR,
                               "SchemaFit(tasks=('TABULAR_CLASSIFICATION',), input_shape=(4,), max_classes=9)")
    assert model_dev.get_model(declared).fits == {"tasks": [TABULAR], "input_shape": [4], "min_classes": 2,
                                                  "max_classes": 9, "dtypes": []}
    assert model_dev.get_model(upload_template(model_dev, files, "Plain", TABULAR, None)).fits is None
    for name, fits, words in [
        ("NotAFit", "'images please'", "FITS must be an easel.model.SchemaFit"),
        ("BadFit", "SchemaFit(tasks=())", "tasks must be a non-empty tuple"),
        ("OtherTask", "SchemaFit(tasks=('IMAGE_CLASSIFICATION',))", "declares FITS for"),
    ]:
        with pytest.raises(Invalid, match=words):
            upload_template(model_dev, files, name, TABULAR, fits)


def test_a_published_template_queues_a_new_version_after_a_finished_job(
        developer: Client, model_dev: Client, files: Path, sessions: sessionmaker[Session], seed_trials) -> None:
    table = developer.upload_dataset("table", None, csv_file(files / "t.csv", features=4))
    budget = TrainBudget(model_trial_count=3, workers=2, time_hours=0.25)
    for app in ("done", "ended"):
        developer.create_train_job(app, None, table.id, table.id, budget=budget)
        developer.set_app(app, auto_tune=True)
    seed_trials("done", 1, [("COMPLETED", 0.8, False)], finish_as="COMPLETED")
    developer.stop_train_job("ended", 1)  # its owner ended it: nothing is queued for it

    new = upload_template(model_dev, files, "LaterTab", TABULAR,
                          "SchemaFit(tasks=('TABULAR_CLASSIFICATION',), input_shape=(4,))")
    queued = developer.get_train_job("done", 2)
    assert [s.model_name for s in queued.sub_train_jobs] == ["LaterTab"]
    assert queued.budget == developer.get_train_job("done", 1).budget, "the finished job's budget, no more"
    assert (queued.train_dataset_id, queued.val_dataset_id, queued.task) == (table.id, table.id, TABULAR)
    assert queued.candidates["grown_from_version"] == 1
    [chosen] = queued.candidates["chosen"]
    assert chosen["model_id"] == new and chosen["reason"].startswith("published after v1 finished; declares it fits")
    assert sorted(sub_services(sessions, queued.sub_train_jobs[0].id)) == ["ADVISOR", "TRAIN_WORKER", "TRAIN_WORKER"]
    assert developer.list_train_jobs(app="ended").total == 1
    # The queued version is the app's latest and it runs: the next template joins it, not a third version.
    upload_template(model_dev, files, "EvenLaterTab", TABULAR, "SchemaFit(tasks=('TABULAR_CLASSIFICATION',))")
    assert [s.model_name for s in developer.get_train_job("done", 2).sub_train_jobs] == ["LaterTab", "EvenLaterTab"]
    assert developer.list_train_jobs(app="done").total == 2
