"""The dataset formats' one owner (``easel.datasets``): reading into arrays, and every way it refuses.

Admin's upload check runs the same rules (tests/admin/test_datasets.py goes through the REST API); here
the reader that templates use, and the promise that neither needs torch.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from easel.datasets import DatasetInvalid, Limits, format_for, inspect_dataset, read_dataset
from easel.db.enums import DatasetFormat

ROOT = Path(__file__).resolve().parents[2]


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


def test_format_names_are_the_stored_enum() -> None:
    assert {format_for(n) for n in ("a.zip", "b.NPZ", "c.csv")} == set(DatasetFormat)
    assert format_for("x.txt") is None and format_for(None) is None


def test_image_zip_reads_class_folders(tmp_path: Path) -> None:
    data = read_dataset(_zip(tmp_path / "pets.zip", GOOD), image_size=(8, 10))
    assert data.classes == ("cat", "dog")
    assert data.x.shape == (3, 3, 8, 10) and data.x.dtype == np.float32 and data.y.dtype == np.int64
    assert sorted(data.y.tolist()) == [0, 0, 1]
    red = data.x[data.y == 0][:, 0]
    assert np.allclose(red, 1.0, atol=0.03)  # pixel values scaled to [0, 1]


def test_image_zip_looks_through_one_top_folder_and_skips_packaging_noise(tmp_path: Path) -> None:
    entries = {f"pets/{k}": v for k, v in GOOD.items()}
    entries["__MACOSX/pets/cat/._1.png"] = b"resource fork"
    entries["pets/.DS_Store"] = b"finder"
    entries["pets/dog/"] = b""  # directory entry
    data = read_dataset(_zip(tmp_path / "pets.zip", entries), image_size=None, grayscale=True)
    assert data.classes == ("cat", "dog") and data.x.shape == (3, 1, 4, 6)


@pytest.mark.parametrize("evil", ["../escape.png", "cat/../../escape.png", "/etc/cat/x.png", "C:/x/y.png"])
def test_image_zip_refuses_zip_slip_entries(tmp_path: Path, evil: str) -> None:
    path = _zip(tmp_path / "evil.zip", {**GOOD, evil: _png((0, 0, 0))})
    with pytest.raises(DatasetInvalid, match=r"evil\.zip: entry .* escapes the archive"):
        read_dataset(path)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"dog/b.png": b"this is text, not a PNG"}, r"entry 'dog/b\.png' is not a readable image"),
        ({"dog/c.png": _png((1, 2, 3))[:40]}, "not a readable image"),
        ({"dog/readme.txt": b"hello"}, r"'dog/readme\.txt' is not an image"),
        ({"loose.png": _png((0, 0, 0))}, "'loose.png' is not inside a class folder"),
    ],
)
def test_image_zip_refuses_bad_entries(tmp_path: Path, entries: dict[str, bytes], message: str) -> None:
    with pytest.raises(DatasetInvalid, match=message):
        read_dataset(_zip(tmp_path / "bad.zip", {**GOOD, **entries}))


@pytest.mark.parametrize(
    ("entries", "message"),
    [({}, "contains no images"), ({"cat/": b"", "dog/": b""}, "contains no images"),
     ({"cat/1.png": _png((0, 0, 0))}, "at least 2 class folders")],
)
def test_image_zip_refuses_empty_or_one_class_archives(tmp_path: Path, entries: dict[str, bytes],
                                                       message: str) -> None:
    with pytest.raises(DatasetInvalid, match=message):
        read_dataset(_zip(tmp_path / "x.zip", entries))


def test_image_zip_refuses_a_file_that_is_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(DatasetInvalid, match=r"broken\.zip: not a readable zip archive"):
        read_dataset(path)


def test_image_zip_mixed_sizes_need_resizing(tmp_path: Path) -> None:
    path = _zip(tmp_path / "sizes.zip", {**GOOD, "dog/big.png": _png((0, 0, 0), size=(9, 9))})
    with pytest.raises(DatasetInvalid, match="different sizes"):
        read_dataset(path, image_size=None)
    assert read_dataset(path, image_size=(5, 5)).x.shape == (4, 3, 5, 5)


def test_limits_bound_images_bytes_and_rows(tmp_path: Path) -> None:
    path = _zip(tmp_path / "pets.zip", GOOD)
    with pytest.raises(DatasetInvalid, match="more than the limit of 2"):
        read_dataset(path, limits=Limits(max_images=2))
    with pytest.raises(DatasetInvalid, match="unpacks to"):
        inspect_dataset(path, "IMAGE_ZIP", Limits(max_unpacked_bytes=10))
    table = tmp_path / "t.csv"
    table.write_text("a,label\n1,x\n2,y\n3,x\n")
    with pytest.raises(DatasetInvalid, match="more than 2 rows"):
        read_dataset(table, limits=Limits(max_images=2))


def test_npz_reads_images_and_features(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(0, 256, size=(5, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "img.npz", x=x, y=np.array([0, 1, 2, 1, 0]), classes=np.array(["a", "b", "c"]))
    data = read_dataset(tmp_path / "img.npz")
    assert data.x.shape == (5, 1, 4, 4) and float(data.x.max()) <= 1.0  # channel axis added, uint8 scaled
    assert data.classes == ("a", "b", "c") and data.y.dtype == np.int64
    np.savez(tmp_path / "feat.npz", x=np.ones((3, 7), dtype=np.float64), y=np.array([0.0, 2.0, 1.0]))
    feat = read_dataset(tmp_path / "feat.npz")
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
        (dict(x=np.array([[object()]], dtype=object), y=np.zeros(1, dtype=int)), "holds Python objects"),
    ],
)
def test_npz_rejections_name_the_file_and_problem(tmp_path: Path, arrays: dict, message: str) -> None:
    path = tmp_path / "upload.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetInvalid, match=rf"upload\.npz: .*{message}"):
        read_dataset(path)


def test_npz_refuses_non_archives(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(DatasetInvalid, match=r"junk\.npz: not a readable zip archive"):
        read_dataset(junk)
    with pytest.raises(DatasetInvalid, match=r"absent\.npz"):
        read_dataset(tmp_path / "absent.npz")


def test_csv_reads_features_and_orders_numeric_labels(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("f0,target,f1\n0.5,10,1\n0.25,2,2\n\n1.0,10,3\n")
    data = read_dataset(path)
    assert data.classes == ("2", "10") and data.y.tolist() == [1, 0, 1]  # 2 < 10 numerically
    assert data.x.dtype == np.float32 and data.x.tolist() == [[0.5, 1.0], [0.25, 2.0], [1.0, 3.0]]
    info = inspect_dataset(path, "CSV", Limits())
    assert (info.num_samples, info.num_classes, info.stats["label_column"]) == (3, 2, "target")


@pytest.mark.parametrize(("text", "message"), [("a,label\n1,x\nhello,y\n", "not a number"),
                                                ("a,b,label\n1,2,x\n1,y\n", "columns"),
                                                ("a,b,label\n", "no rows")])
def test_csv_rejections(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DatasetInvalid, match=rf"bad\.csv: .*{message}"):
        read_dataset(path)


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetInvalid, match="unknown dataset format '.txt'"):
        read_dataset(tmp_path / "data.txt")
    with pytest.raises(ValueError, match="fmt must be one of"):
        inspect_dataset(tmp_path / "data.txt", "TXT", Limits())


def test_reading_a_dataset_imports_no_torch(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.ones((4, 2)), y=np.array([0, 1, 0, 1]))
    code = ("import sys; from easel.datasets import read_dataset; read_dataset(sys.argv[1]); "
            "print(sorted(m for m in ('torch', 'slicing', 'easel.db') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d.npz")], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# -- archive bombs: refused by declared sizes, or checked while streaming with bounded memory -----------------
MiB = 1 << 20


def _zeros_npz(path: Path, inflated: int, *, claimed_rows: int | None = None) -> Path:
    """x: ``inflated`` bytes of float64 zeros (packs ~1000-fold); its header may claim more rows."""
    columns = 1024
    rows = inflated // (8 * columns)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "<f8", "fortran_order": False, "shape": (claimed_rows or rows, columns)})
            for _ in range(inflated // MiB):
                member.write(bytes(MiB))
        labels = io.BytesIO()
        np.save(labels, np.arange(rows, dtype=np.int64) % 2)  # x is refused before y is read when it lies
        archive.writestr("y.npy", labels.getvalue())
    return path


def test_an_npz_bomb_is_refused_by_its_compression_ratio(tmp_path: Path) -> None:
    bomb = _zeros_npz(tmp_path / "bomb.npz", 64 * MiB)
    with pytest.raises(DatasetInvalid, match="zip bomb"):
        inspect_dataset(bomb, "NPZ", Limits(max_unpacked_bytes=1 << 40))


def test_a_large_npz_is_checked_streaming_in_bounded_memory(tmp_path: Path) -> None:
    import psutil

    big = _zeros_npz(tmp_path / "big.npz", 160 * MiB)
    process = psutil.Process()
    before = process.memory_info().rss
    info = inspect_dataset(big, "NPZ", Limits(max_unpacked_bytes=1 << 40, max_compression_ratio=1 << 20))
    grown = process.memory_info().rss - before
    assert info.num_samples == 160 * MiB // (8 * 1024) and info.stats["input_shape"] == [1024]
    assert grown <= 100 * MiB, f"RSS grew {grown / MiB:.0f} MiB checking a 160 MiB array"


def test_an_npz_whose_header_claims_more_than_it_holds_is_refused(tmp_path: Path) -> None:
    liar = _zeros_npz(tmp_path / "liar.npz", 4 * MiB, claimed_rows=10**9)  # claims 8 TB
    with pytest.raises(DatasetInvalid, match="shorter than its header"):
        inspect_dataset(liar, "NPZ", Limits(max_unpacked_bytes=1 << 40, max_compression_ratio=1 << 20))


def test_npz_labels_must_be_class_indices_of_bounded_range(tmp_path: Path) -> None:
    path = tmp_path / "labels.npz"
    np.savez(path, x=np.ones((4, 2)), y=np.array([0, 1, 2, 10**12]))
    with pytest.raises(DatasetInvalid, match="class indices"):
        inspect_dataset(path, "NPZ", Limits())
