"""Dataset uploads: the three formats accepted with their statistics, and every kind of bad file refused."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from admin_helpers import MAX_UPLOAD, TASK

from easel.blobstore import LocalBlobStore
from sdk import Client, Forbidden, Invalid, NotFound, PayloadTooLarge, UnsupportedFormat
from tests.support import csv_file, image_zip, npz_file, png_bytes


@pytest.fixture
def developer(make_user) -> Client:
    return make_user("APP_DEVELOPER")[0]


def test_image_zip_is_validated_and_stored(developer: Client, files: Path, blobs: LocalBlobStore) -> None:
    path = image_zip(files / "pets.zip", {"cat": 3, "dog": 2, "bird": 1})
    seen: list[tuple[int, int]] = []
    dataset = developer.upload_dataset("pets", "image_classification", path, progress=lambda s, t: seen.append((s, t)))
    assert (dataset.format, dataset.task, dataset.num_samples, dataset.num_classes) == ("IMAGE_ZIP", TASK, 6, 3)
    assert dataset.stats["classes"] == ["bird", "cat", "dog"]
    assert dataset.stats["class_counts"] == {"bird": 1, "cat": 3, "dog": 2}
    assert dataset.stats["image_size_min"] == [8, 8]
    assert dataset.size_bytes == path.stat().st_size
    assert seen and seen[-1] == (path.stat().st_size, path.stat().st_size)
    stored = [key for key in blobs.keys("datasets/") if dataset.id in key]
    assert len(stored) == 1 and blobs.get_bytes(stored[0]) == path.read_bytes()


def test_zip_without_top_folder_and_with_packaging_noise(developer: Client, files: Path) -> None:
    path = image_zip(files / "flat.zip", top=None, extra={"__MACOSX/cat/._0.png": b"junk", ".DS_Store": b"x"})
    assert developer.upload_dataset("flat", TASK, path).num_samples == 6


def test_npz_and_csv(developer: Client, files: Path) -> None:
    npz = developer.upload_dataset("digits", TASK, npz_file(files / "d.npz", n=40, shape=(8, 8), num_classes=4))
    assert (npz.format, npz.num_samples, npz.num_classes, npz.stats["input_shape"]) == ("NPZ", 40, 4, [8, 8])
    named = developer.upload_dataset("named", TASK, npz_file(files / "n.npz", num_classes=2, classes=np.array(["no", "yes"])))
    assert named.stats["classes"] == ["no", "yes"] and named.stats["class_counts"] == {"no": 20, "yes": 20}
    csv = developer.upload_dataset("table", "TABULAR_CLASSIFICATION", csv_file(files / "t.csv", rows=30, features=4))
    assert (csv.format, csv.num_samples, csv.num_classes) == ("CSV", 30, 2)
    assert csv.stats["label_column"] == "label" and csv.stats["num_features"] == 4


def test_list_get_delete(developer: Client, files: Path) -> None:
    first = developer.upload_dataset("a", TASK, npz_file(files / "a.npz"))
    second = developer.upload_dataset("b", "TABULAR_CLASSIFICATION", csv_file(files / "b.csv"))
    page = developer.list_datasets()
    assert page.total == 2 and [d.id for d in page] == [second.id, first.id]  # newest first
    assert [d.id for d in developer.list_datasets(task="TABULAR_CLASSIFICATION")] == [second.id]
    paged = developer.list_datasets(offset=1, limit=1)
    assert (paged.total, len(paged), paged.items[0].id) == (2, 1, first.id)
    assert developer.get_dataset(first.id) == first
    developer.delete_dataset(first.id)
    with pytest.raises(NotFound):
        developer.get_dataset(first.id)
    with pytest.raises(NotFound):
        developer.delete_dataset(first.id)


def test_app_users_cannot_upload(make_user, files: Path) -> None:
    app_user = make_user("APP_USER")[0]
    with pytest.raises(Forbidden):
        app_user.upload_dataset("x", TASK, npz_file(files / "x.npz"))


# -- rejections ------------------------------------------------------------------------------------------
def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def _symlink_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for label in ("cat", "dog"):
            archive.writestr(f"{label}/0.png", png_bytes())
        link = zipfile.ZipInfo("cat/link.png")
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")
    return path


BAD_ZIPS = {
    "zip-slip with ..": ({"cat/0.png": png_bytes(), "../../evil.png": png_bytes()}, "escapes"),
    "zip-slip absolute": ({"cat/0.png": png_bytes(), "/tmp/evil.png": png_bytes()}, "escapes"),
    "zip-slip nested ..": ({"cat/0.png": png_bytes(), "dog/../../x.png": png_bytes()}, "escapes"),
    "not an image": ({"cat/0.png": png_bytes(), "dog/1.png": b"this is not a png at all"}, "not a readable image"),
    "truncated image": ({"cat/0.png": png_bytes(), "dog/1.png": png_bytes()[:40]}, "not a readable image"),
    "wrong extension inside": ({"cat/0.png": png_bytes(), "dog/notes.txt": b"hello"}, "not an image"),
    "empty archive": ({}, "no images"),
    "only folders and noise": ({"cat/": b"", ".DS_Store": b"x"}, "no images"),
    "one class": ({"cat/0.png": png_bytes(), "cat/1.png": png_bytes()}, "at least 2 class folders"),
    "file outside a class folder": ({"cat/0.png": png_bytes(), "dog/0.png": png_bytes(), "x.png": png_bytes()},
                                    "not inside a class folder"),
}


@pytest.mark.parametrize("case", sorted(BAD_ZIPS))
def test_bad_zips_are_refused(developer: Client, files: Path, case: str) -> None:
    entries, message = BAD_ZIPS[case]
    with pytest.raises(Invalid, match=message) as caught:
        developer.upload_dataset("bad", TASK, _zip(files / "bad.zip", entries))
    assert caught.value.status_code == 422 and caught.value.code == "invalid_dataset"
    assert developer.list_datasets().total == 0


def test_symlink_entries_are_refused(developer: Client, files: Path) -> None:
    with pytest.raises(Invalid, match="symbolic link"):
        developer.upload_dataset("bad", TASK, _symlink_zip(files / "link.zip"))


def test_not_a_zip_at_all(developer: Client, files: Path) -> None:
    path = files / "fake.zip"
    path.write_bytes(b"PK but not really a zip file")
    with pytest.raises(Invalid, match="not a readable zip"):
        developer.upload_dataset("bad", TASK, path)


def test_empty_file(developer: Client, files: Path) -> None:
    path = files / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(Invalid, match="empty"):
        developer.upload_dataset("bad", TASK, path)


@pytest.mark.parametrize("name", ["data.txt", "model.py", "archive.tar.gz", "noextension"])
def test_wrong_extension_is_415(developer: Client, files: Path, name: str) -> None:
    path = files / name
    path.write_bytes(b"1,2,3\n")
    with pytest.raises(UnsupportedFormat, match="unsupported extension") as caught:
        developer.upload_dataset("bad", TASK, path)
    assert caught.value.status_code == 415


@pytest.mark.parametrize("size", [MAX_UPLOAD + 1, MAX_UPLOAD + 2 * 1024 * 1024])
def test_oversize_is_413(developer: Client, files: Path, size: int, url: str) -> None:
    # Just past the file limit (caught while spooling) and far past it (cut off by the body limit).
    path = files / "big.csv"
    with open(path, "wb") as handle:
        handle.write(b"f0,label\n")
        row = b"0.5,a\n"
        handle.write(row * (size // len(row) + 1))
    with pytest.raises(PayloadTooLarge, match="limit") as caught:
        developer.upload_dataset("big", TASK, path)
    assert caught.value.status_code == 413
    assert developer.health().status == "ok"


def _npz(path: Path, **arrays: object) -> Path:
    np.savez(path, **arrays)
    return path


BAD_NPZ = {
    "missing y": (dict(x=np.zeros((4, 3))), "missing array"),
    "empty x": (dict(x=np.zeros((0, 3)), y=np.zeros(0, dtype=int)), "empty"),
    "labels not integers": (dict(x=np.zeros((4, 3)), y=np.array([0.5, 1, 0, 1])), "integer class labels"),
    "nan features": (dict(x=np.full((2, 3), np.nan), y=np.array([0, 1])), "NaN"),
    "length mismatch": (dict(x=np.zeros((4, 3)), y=np.array([0, 1])), "shape"),
    "object array (pickle)": (dict(x=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1])), "Python objects"),
    "string features": (dict(x=np.array([["a"], ["b"]]), y=np.array([0, 1])), "numeric"),
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_bad_npz_is_refused(developer: Client, files: Path, case: str) -> None:
    arrays, message = BAD_NPZ[case]
    with pytest.raises(Invalid, match=message):
        developer.upload_dataset("bad", TASK, _npz(files / "bad.npz", **arrays))


BAD_CSV = {
    "header only": ("a,b,label\n", "no rows"),
    "empty": ("\n", "empty"),
    "text feature": ("a,label\n1,x\nhello,y\n", "not a number"),
    "ragged": ("a,b,label\n1,2,x\n1,y\n", "columns"),
    "no label": ("a,label\n1,\n", "empty label"),
    "one column": ("label\nx\n", "feature column"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_bad_csv_is_refused(developer: Client, files: Path, case: str) -> None:
    text, message = BAD_CSV[case]
    path = files / "bad.csv"
    path.write_text(text)
    with pytest.raises(Invalid, match=message):
        developer.upload_dataset("bad", "TABULAR_CLASSIFICATION", path)


def test_binary_csv_is_refused(developer: Client, files: Path) -> None:
    path = files / "bin.csv"
    path.write_bytes(b"a,label\n\xff\xfe\x00,1\n")
    with pytest.raises(Invalid, match="UTF-8|not a number"):
        developer.upload_dataset("bad", "TABULAR_CLASSIFICATION", path)


@pytest.mark.parametrize("name,task", [("", TASK), ("ok", "not a task!"), ("bad\x00name", TASK)])
def test_form_fields_are_validated(developer: Client, files: Path, name: str, task: str) -> None:
    with pytest.raises(Invalid):
        developer.upload_dataset(name, task, npz_file(files / "ok.npz"))


def test_zip_bomb_limits(developer: Client, files: Path, admin_settings) -> None:
    # Highly compressible entries whose unpacked size passes the limit, though the zip itself is small.
    path = files / "bomb.zip"
    big = io.BytesIO()
    from PIL import Image

    Image.new("L", (4000, 4000)).save(big, "PNG")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cat/0.png", big.getvalue())
        archive.writestr("dog/0.bmp", b"BM" + b"\x00" * (admin_settings.max_unpacked_bytes + 10))
    assert path.stat().st_size < MAX_UPLOAD
    with pytest.raises(Invalid, match="unpacks to"):
        developer.upload_dataset("bomb", TASK, path)
