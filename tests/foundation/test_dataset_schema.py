"""Schema inference on every supported format (real files through the real inspection), and the fit rule that
matches a template's declaration to a schema."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from easel.datasets import Limits, inspect_dataset
from easel.datasets.schema import DatasetSchema, SchemaFit, infer_schema
from tests.support import csv_file, image_zip, npz_file, png_bytes

IMAGE, TABULAR = "IMAGE_CLASSIFICATION", "TABULAR_CLASSIFICATION"


def schema_of(path: Path, fmt: str) -> DatasetSchema:
    info = inspect_dataset(path, fmt, Limits())
    return infer_schema(fmt, info.num_classes, info.stats)


def grey_zip(path: Path, sizes: list[tuple[int, int]]) -> Path:
    from PIL import Image

    with zipfile.ZipFile(path, "w") as archive:
        for index, size in enumerate(sizes):
            buffer = io.BytesIO()
            Image.new("L", size, 100).save(buffer, "PNG")
            archive.writestr(f"{'ab'[index % 2]}/{index}.png", buffer.getvalue())
    return path


def test_image_zip(tmp_path: Path) -> None:
    schema = schema_of(image_zip(tmp_path / "pets.zip", {"cat": 2, "dog": 2, "bird": 1}), "IMAGE_ZIP")
    assert schema == DatasetSchema(IMAGE, (3, 8, 8), "uint8", 3, ("bird", "cat", "dog"))


def test_image_zip_of_greyscale_images_of_several_sizes(tmp_path: Path) -> None:
    schema = schema_of(grey_zip(tmp_path / "g.zip", [(8, 8), (12, 6), (8, 8), (5, 5)]), "IMAGE_ZIP")
    assert (schema.task, schema.input_shape, schema.num_classes, schema.classes) == (IMAGE, (1, None, None), 2,
                                                                                     ("a", "b"))


def test_image_zip_of_non_square_rgb_images_is_channels_height_width(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "wide.zip", "w") as archive:
        for label in ("x", "y"):
            archive.writestr(f"{label}/0.png", png_bytes(size=(10, 4)))  # PIL sizes are (width, height)
    assert schema_of(tmp_path / "wide.zip", "IMAGE_ZIP").input_shape == (3, 4, 10)


@pytest.mark.parametrize(("shape", "task", "input_shape"), [
    ((5,), TABULAR, (5,)),
    ((8, 8), IMAGE, (1, 8, 8)),
    ((3, 6, 7), IMAGE, (3, 6, 7)),
])
def test_npz(tmp_path: Path, shape: tuple[int, ...], task: str, input_shape: tuple[int, ...]) -> None:
    schema = schema_of(npz_file(tmp_path / "d.npz", shape=shape, num_classes=4), "NPZ")
    assert schema == DatasetSchema(task, input_shape, "float32", 4, ("0", "1", "2", "3"))


def test_npz_with_class_names_and_integer_pixels(tmp_path: Path) -> None:
    path = tmp_path / "named.npz"
    np.savez(path, x=np.zeros((6, 2, 2), dtype=np.uint8), y=np.array([0, 1] * 3), classes=np.array(["no", "yes"]))
    assert schema_of(path, "NPZ") == DatasetSchema(IMAGE, (1, 2, 2), "uint8", 2, ("no", "yes"))


def test_csv(tmp_path: Path) -> None:
    schema = schema_of(csv_file(tmp_path / "t.csv", features=6, classes=("lo", "mid", "hi")), "CSV")
    assert schema == DatasetSchema(TABULAR, (6,), "float32", 3, ("hi", "lo", "mid"))


def test_schema_round_trips_and_bad_ones_name_the_field() -> None:
    schema = DatasetSchema(IMAGE, (3, None, None), "uint8", 2, ("a", "b"))
    assert DatasetSchema.from_json(schema.to_json()) == schema
    for bad, field in [({"task": "SPEECH"}, "task"), ({"input_shape": [3]}, "input_shape"),
                       ({"input_shape": [None, 4, 4]}, "input_shape"), ({"dtype": "object"}, "dtype"),
                       ({"num_classes": 0}, "num_classes"), ({"classes": ["a", "a"]}, "classes"),
                       ({"colour": "red"}, "unknown")]:
        with pytest.raises(ValueError, match=field):
            DatasetSchema.from_json({**schema.to_json(), **bad})


def test_fit_says_why_a_schema_does_not_fit() -> None:
    digits = DatasetSchema(IMAGE, (1, 8, 8), "float32", 10)
    assert SchemaFit(tasks=(IMAGE,)).check(digits) is None
    assert SchemaFit(tasks=(IMAGE,), input_shape=(1, None, None), min_classes=10, max_classes=10).check(digits) is None
    assert "TABULAR" in SchemaFit(tasks=(TABULAR,)).check(digits)
    assert "input shape [3, 'any', 'any']" in SchemaFit(tasks=(IMAGE,), input_shape=(3, None, None)).check(digits)
    assert "at most 2 classes" in SchemaFit(tasks=(IMAGE,), max_classes=2).check(digits)
    assert "at least 20 classes" in SchemaFit(tasks=(IMAGE,), min_classes=20).check(digits)
    assert "dtype uint8" in SchemaFit(tasks=(IMAGE,), dtypes=("uint8",)).check(digits)
    one_class = DatasetSchema(TABULAR, (4,), "float32", 1)
    assert "at least 2 classes" in SchemaFit(tasks=(TABULAR,)).check(one_class)


def test_a_declared_fit_is_validated() -> None:
    fit = SchemaFit(tasks=(TABULAR,), input_shape=(4,), min_classes=2, max_classes=5)
    assert SchemaFit.from_json(fit.to_json()) == fit
    for bad, field in [({"tasks": []}, "tasks"), ({"tasks": "TABULAR_CLASSIFICATION"}, "tasks"),
                       ({"input_shape": [0]}, "input_shape"), ({"min_classes": 1}, "min_classes"),
                       ({"max_classes": 1}, "max_classes"), ({"dtypes": ["str"]}, "dtypes"), ({"extra": 1}, "unknown")]:
        with pytest.raises(ValueError, match=field):
            SchemaFit.from_json({**fit.to_json(), **bad})
