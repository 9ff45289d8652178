"""Dataset loaders: image zips, .npz files and the bundled digits — and every way they refuse bad input."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from slicing import LabeledData, load_digits, load_image_zip, load_npz


def _png(color: tuple[int, int, int], size: tuple[int, int] = (6, 4)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data)  # ZipInfo keeps the name verbatim (no sanitising)
    return path


GOOD = {
    "cat/1.png": _png((255, 0, 0)),
    "cat/2.png": _png((250, 0, 0)),
    "dog/a.PNG": _png((0, 0, 255)),
}


def test_image_zip_loads_class_folders(tmp_path):
    data = load_image_zip(_zip(tmp_path / "pets.zip", GOOD), image_size=(8, 10))
    assert data.classes == ("cat", "dog")
    assert data.x.shape == (3, 3, 8, 10) and data.x.dtype == torch.float32
    assert sorted(data.y.tolist()) == [0, 0, 1]
    red = data.x[data.y == 0][:, 0]
    assert torch.allclose(red, torch.ones_like(red), atol=0.03)  # pixel values scaled to [0, 1]


def test_image_zip_looks_through_one_top_folder_and_skips_packaging_noise(tmp_path):
    entries = {f"pets/{k}": v for k, v in GOOD.items()}
    entries["__MACOSX/pets/cat/._1.png"] = b"resource fork"
    entries["pets/.DS_Store"] = b"finder"
    entries["pets/dog/"] = b""  # directory entry
    data = load_image_zip(_zip(tmp_path / "pets.zip", entries), image_size=None, grayscale=True)
    assert data.classes == ("cat", "dog") and data.x.shape == (3, 1, 4, 6)


@pytest.mark.parametrize("evil", ["../escape.png", "cat/../../escape.png", "/etc/cat/x.png", "C:/x/y.png"])
def test_image_zip_refuses_zip_slip_entries(tmp_path, evil):
    path = _zip(tmp_path / "evil.zip", {**GOOD, evil: _png((0, 0, 0))})
    with pytest.raises(ValueError, match=r"evil\.zip: entry .* escapes the archive root"):
        load_image_zip(path)


def test_image_zip_refuses_a_file_that_is_not_a_zip(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(ValueError, match=r"broken\.zip: not a readable zip archive"):
        load_image_zip(path)


def test_image_zip_refuses_unreadable_images(tmp_path):
    path = _zip(tmp_path / "bad.zip", {**GOOD, "dog/b.png": b"this is text, not a PNG"})
    with pytest.raises(ValueError, match=r"bad\.zip: entry 'dog/b\.png' is not a readable image"):
        load_image_zip(path)
    truncated = _zip(tmp_path / "cut.zip", {**GOOD, "dog/c.png": _png((1, 2, 3))[:40]})
    with pytest.raises(ValueError, match="not a readable image"):
        load_image_zip(truncated)


def test_image_zip_refuses_non_image_files(tmp_path):
    path = _zip(tmp_path / "notes.zip", {**GOOD, "dog/readme.txt": b"hello"})
    with pytest.raises(ValueError, match=r"'dog/readme\.txt' is not an image"):
        load_image_zip(path)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({}, "contains no images"),
        ({"cat/": b"", "dog/": b""}, "contains no images"),
        ({"loose.png": _png((0, 0, 0)), **GOOD}, "'loose.png' is not inside a class folder"),
        ({"cat/1.png": _png((0, 0, 0))}, "at least 2 class folders"),
    ],
)
def test_image_zip_refuses_empty_or_unstructured_archives(tmp_path, entries, message):
    with pytest.raises(ValueError, match=message):
        load_image_zip(_zip(tmp_path / "x.zip", entries))


def test_image_zip_mixed_sizes_need_resizing(tmp_path):
    path = _zip(tmp_path / "sizes.zip", {**GOOD, "dog/big.png": _png((0, 0, 0), size=(9, 9))})
    with pytest.raises(ValueError, match="different sizes"):
        load_image_zip(path, image_size=None)
    assert load_image_zip(path, image_size=(5, 5)).x.shape == (4, 3, 5, 5)


def test_image_zip_limits(tmp_path):
    path = _zip(tmp_path / "pets.zip", GOOD)
    with pytest.raises(ValueError, match="more than the limit of 2"):
        load_image_zip(path, max_images=2)
    with pytest.raises(ValueError, match="unpacks to"):
        load_image_zip(path, max_total_bytes=10)


def test_npz_loads_images_and_features(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, size=(5, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "img.npz", x=x, y=np.array([0, 1, 2, 1, 0]), classes=np.array(["a", "b", "c"]))
    data = load_npz(tmp_path / "img.npz")
    assert data.x.shape == (5, 1, 4, 4) and float(data.x.max()) <= 1.0  # channel axis added, uint8 scaled
    assert data.classes == ("a", "b", "c") and data.y.dtype == torch.int64
    np.savez(tmp_path / "feat.npz", x=np.ones((3, 7), dtype=np.float64), y=np.array([0.0, 2.0, 1.0]))
    feat = load_npz(tmp_path / "feat.npz")
    assert feat.x.shape == (3, 7) and feat.classes == ("0", "1", "2") and feat.y.tolist() == [0, 2, 1]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (dict(x=np.ones((3, 2))), r"missing array\(s\) \['y'\]"),
        (dict(x=np.ones((3, 2)), y=np.zeros(4, dtype=int)), r"y must have shape \(3,\)"),
        (dict(x=np.ones((0, 2)), y=np.zeros(0, dtype=int)), "x is empty"),
        (dict(x=np.ones(3), y=np.zeros(3, dtype=int)), "x must be"),
        (dict(x=np.array([[np.nan, 1.0]]), y=np.zeros(1, dtype=int)), "NaN"),
        (dict(x=np.ones((2, 2)), y=np.array([0, -1])), "negative label"),
        (dict(x=np.ones((2, 2)), y=np.array([0.5, 1.0])), "integer class labels"),
        (dict(x=np.array([["a", "b"]]), y=np.zeros(1, dtype=int)), "numeric"),
        (dict(x=np.ones((2, 2)), y=np.array([0, 3]), classes=np.array(["a", "b"])), "only 2 classes"),
        (dict(x=np.array([[object()]], dtype=object), y=np.zeros(1, dtype=int)), "cannot read arrays"),
    ],
)
def test_npz_rejections_name_the_file_and_problem(tmp_path, arrays, message):
    path = tmp_path / "upload.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=rf"upload\.npz: .*{message}"):
        load_npz(path)


def test_npz_refuses_non_archives(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match=r"junk\.npz: not a readable \.npz archive"):
        load_npz(junk)
    single = tmp_path / "single.npz"
    with single.open("wb") as f:
        np.save(f, np.ones(3))
    with pytest.raises(ValueError, match="single .npy array"):
        load_npz(single)
    with pytest.raises(ValueError, match=r"absent\.npz"):
        load_npz(tmp_path / "absent.npz")


def test_digits_and_stratified_split():
    data = load_digits()
    assert isinstance(data, LabeledData)
    assert data.x.shape == (1797, 1, 8, 8) and data.num_classes == 10
    assert float(data.x.min()) >= 0.0 and float(data.x.max()) == 1.0
    assert load_digits(as_image=False).input_shape == (64,)
    train, val = data.split(0.2, seed=0)
    assert len(train) + len(val) == 1797
    per_class = torch.bincount(val.y, minlength=10).float() / torch.bincount(data.y, minlength=10).float()
    assert torch.all((per_class - 0.2).abs() < 0.02)  # every class keeps its share
    train2, _ = data.split(0.2, seed=0)
    assert torch.equal(train.y, train2.y)  # deterministic under a seed


def test_split_of_tiny_classes_still_validates_on_something():
    data = LabeledData(torch.randn(20, 3), torch.arange(10).repeat(2), tuple("abcdefghij"))
    train, val = data.split(0.1, seed=0)  # 10% of 2 per class rounds to 0 everywhere
    assert len(val) == 1 and len(train) == 19
    with pytest.raises(ValueError, match="cannot split 1 examples"):
        LabeledData(torch.randn(1, 3), torch.zeros(1, dtype=torch.int64), ("a",)).split(0.5)
