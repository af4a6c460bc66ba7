"""Tests for robustprune.data: every parser is fed small files written in the real on-disk
format, downloads are served from local bytes (no network), and splits are checked for
stratification, balance, determinism, a held-out test set for datasets without one, and an
exact save/load round trip."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import struct
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from robustprune import data, errors
from robustprune.data import (
    DATASETS,
    DataError,
    RawDataset,
    Splits,
    load_raw,
    load_splits,
    make_splits,
    save_splits,
)
from robustprune.errors import ConfigError

FMNIST_SYSTEM = Path("/usr/share/datasets/fashion-mnist")
IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


# --------------------------------------------------------------------------- writers


def idx_bytes(arr: np.ndarray) -> bytes:
    """Serialise a uint8 array in IDX format (magic 0x0000 08 ndim, big-endian dims)."""
    header = struct.pack(">i", 0x0800 | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_idx_set(directory: Path, rng: np.random.Generator, gz: bool) -> dict[str, np.ndarray]:
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 30, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 12, dtype=np.uint8),
    }
    for name, arr in arrays.items():
        blob = idx_bytes(arr)
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(blob))
        else:
            (directory / name).write_bytes(blob)
    return arrays


def cifar_blob(labels: list[np.ndarray], images: np.ndarray) -> bytes:
    """CIFAR binary records: label byte(s), then 3072 pixel bytes (R, G, B planes)."""
    cols = [lab.astype(np.uint8)[:, None] for lab in labels]
    return np.concatenate([*cols, images.reshape(len(images), -1)], axis=1).tobytes()


def write_cifar10(root: Path, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    root.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
        y = rng.integers(0, 10, 4)
        (root / f"data_batch_{i}.bin").write_bytes(cifar_blob([y], x))
        xs.append(x)
        ys.append(y)
    xt = rng.integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    yt = rng.integers(0, 10, 5)
    (root / "test_batch.bin").write_bytes(cifar_blob([yt], xt))
    (root / "batches.meta.txt").write_text("\n".join(data.CIFAR10_CLASSES) + "\n\n")
    return np.concatenate(xs), np.concatenate(ys), xt, yt


def make_tar(archive: Path, source_dir: Path, arcdir: str, extra: dict[str, bytes] | None = None):
    with tarfile.open(archive, "w:gz") as tar:
        for file in sorted(source_dir.iterdir()):
            tar.add(file, arcname=f"{arcdir}/{file.name}")
        for name, blob in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def serve(monkeypatch: pytest.MonkeyPatch, payloads: dict[str, bytes], seen: list | None = None):
    """Make urllib.request.urlopen return local bytes (or fail for unknown URLs)."""

    def fake_urlopen(url: str, timeout: float | None = None):
        if seen is not None:
            seen.append((url, timeout))
        if url not in payloads:
            raise urllib.error.URLError("Name or service not known")
        return io.BytesIO(payloads[url])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)


def toy_raw(counts: list[int], seed: int = 0, channels: int = 3) -> RawDataset:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(counts)), counts).astype(np.int64)
    rng.shuffle(y)
    x = rng.integers(0, 256, (len(y), channels, 4, 4), dtype=np.uint8)
    xt = rng.integers(0, 256, (7, channels, 4, 4), dtype=np.uint8)
    yt = rng.integers(0, len(counts), 7).astype(np.int64)
    return RawDataset(x, y, xt, yt, tuple(f"c{k}" for k in range(len(counts))), "toy")


# --------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    arrays = write_idx_set(tmp_path / "mnist", np.random.default_rng(0), gz)
    raw = load_raw("mnist", raw_root=tmp_path, download=False)
    np.testing.assert_array_equal(raw.x_train[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(raw.y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(raw.x_test[:, 0], arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(raw.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert raw.x_train.shape == (30, 1, 28, 28) and raw.x_train.dtype == np.uint8
    assert raw.y_train.dtype == np.int64
    assert raw.classes == tuple("0123456789")
    assert raw.source == str(tmp_path / "mnist")


def test_idx_path_overrides_raw_root(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "elsewhere", np.random.default_rng(1), gz=True)
    raw = load_raw("fashion-mnist", path=str(tmp_path / "elsewhere"), download=False)
    assert raw.classes[0] == "T-shirt/top" and len(raw.classes) == 10
    assert raw.source == str(tmp_path / "elsewhere")


def test_idx_bad_magic(tmp_path: Path) -> None:
    directory = tmp_path / "mnist"
    write_idx_set(directory, np.random.default_rng(0), gz=False)
    # Labels where images belong: magic 2049 instead of 2051.
    bad = directory / "train-images-idx3-ubyte"
    bad.write_bytes(idx_bytes(np.zeros(30, dtype=np.uint8)))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*magic number 2049.*2051"):
        load_raw("mnist", raw_root=tmp_path, download=False)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_truncated(tmp_path: Path, gz: bool) -> None:
    directory = tmp_path / "mnist"
    write_idx_set(directory, np.random.default_rng(0), gz=gz)
    name = "t10k-images-idx3-ubyte" + (".gz" if gz else "")
    path = directory / name
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=name) as info:
        load_raw("mnist", raw_root=tmp_path, download=False)
    assert "\n" not in str(info.value)


def test_idx_label_count_mismatch(tmp_path: Path) -> None:
    directory = tmp_path / "mnist"
    write_idx_set(directory, np.random.default_rng(0), gz=False)
    (directory / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(11, np.uint8)))
    with pytest.raises(DataError, match=r"12 images.*11 labels"):
        load_raw("mnist", raw_root=tmp_path, download=False)


def test_idx_labels_out_of_range(tmp_path: Path) -> None:
    directory = tmp_path / "mnist"
    write_idx_set(directory, np.random.default_rng(0), gz=False)
    (directory / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(12, 10, np.uint8)))
    with pytest.raises(DataError, match=r"outside 0\.\.9"):
        load_raw("mnist", raw_root=tmp_path, download=False)


# --------------------------------------------------------------------------- CIFAR


def test_cifar10_extracted_and_tar(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    staged = tmp_path / "staging"
    x, y, xt, yt = write_cifar10(staged, rng)

    # Extracted folder under raw_root/cifar10/cifar-10-batches-bin/.
    extracted_root = tmp_path / "a"
    (extracted_root / "cifar10").mkdir(parents=True)
    staged.rename(extracted_root / "cifar10" / "cifar-10-batches-bin")
    raw = load_raw("cifar10", raw_root=extracted_root, download=False)
    np.testing.assert_array_equal(raw.x_train, x)
    np.testing.assert_array_equal(raw.y_train, y)
    np.testing.assert_array_equal(raw.x_test, xt)
    np.testing.assert_array_equal(raw.y_test, yt)
    assert raw.classes == data.CIFAR10_CLASSES
    assert raw.x_train.shape == (20, 3, 32, 32)

    # The official tar.gz, plus a hostile member that must be neither used nor written.
    tar_root = tmp_path / "b" / "cifar10"
    tar_root.mkdir(parents=True)
    make_tar(
        tar_root / "cifar-10-binary.tar.gz",
        extracted_root / "cifar10" / "cifar-10-batches-bin",
        "cifar-10-batches-bin",
        extra={"../../escaped.bin": b"x" * 3073},
    )
    raw_tar = load_raw("cifar10", raw_root=tmp_path / "b", download=False)
    np.testing.assert_array_equal(raw_tar.x_train, x)
    np.testing.assert_array_equal(raw_tar.y_test, yt)
    assert raw_tar.source.endswith("cifar-10-binary.tar.gz")
    assert not list(tmp_path.rglob("escaped.bin"))
    assert sorted(p.name for p in tar_root.iterdir()) == ["cifar-10-binary.tar.gz"]


def test_cifar10_truncated_batch(tmp_path: Path) -> None:
    root = tmp_path / "cifar10" / "cifar-10-batches-bin"
    write_cifar10(root, np.random.default_rng(0))
    blob = (root / "data_batch_3.bin").read_bytes()
    (root / "data_batch_3.bin").write_bytes(blob[:-100])
    with pytest.raises(DataError, match=r"data_batch_3\.bin.*3073-byte"):
        load_raw("cifar10", raw_root=tmp_path, download=False)


def test_cifar10_tar_missing_member(tmp_path: Path) -> None:
    staged = tmp_path / "staging"
    write_cifar10(staged, np.random.default_rng(0))
    (staged / "test_batch.bin").unlink()
    (tmp_path / "cifar10").mkdir()
    make_tar(tmp_path / "cifar10" / "cifar-10-binary.tar.gz", staged, "cifar-10-batches-bin")
    with pytest.raises(DataError, match=r"missing cifar-10-batches-bin/test_batch\.bin"):
        load_raw("cifar10", raw_root=tmp_path, download=False)


@pytest.mark.parametrize("as_tar", [False, True])
def test_cifar100_fine_labels(tmp_path: Path, as_tar: bool) -> None:
    rng = np.random.default_rng(3)
    staged = tmp_path / "staging"
    staged.mkdir()
    x = rng.integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)
    fine, coarse = rng.integers(0, 100, 6), rng.integers(0, 20, 6)
    xt = rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)
    fine_t, coarse_t = rng.integers(0, 100, 3), rng.integers(0, 20, 3)
    (staged / "train.bin").write_bytes(cifar_blob([coarse, fine], x))
    (staged / "test.bin").write_bytes(cifar_blob([coarse_t, fine_t], xt))
    names = [f"name{k}" for k in range(100)]
    (staged / "fine_label_names.txt").write_text("\n".join(names) + "\n")
    target = tmp_path / "cifar100"
    target.mkdir()
    if as_tar:
        make_tar(target / "cifar-100-binary.tar.gz", staged, "cifar-100-binary")
    else:
        staged.rename(target / "cifar-100-binary")
    raw = load_raw("cifar100", raw_root=tmp_path, download=False)
    np.testing.assert_array_equal(raw.x_train, x)
    np.testing.assert_array_equal(raw.y_train, fine)
    np.testing.assert_array_equal(raw.x_test, xt)
    np.testing.assert_array_equal(raw.y_test, fine_t)
    assert raw.classes == tuple(names)


def test_cifar_default_class_names() -> None:
    assert len(set(data.CIFAR100_CLASSES)) == 100
    assert tuple(sorted(data.CIFAR100_CLASSES)) == data.CIFAR100_CLASSES
    assert len(data.CIFAR10_CLASSES) == 10


# --------------------------------------------------------------------------- SVHN


def test_svhn_mat(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    directory = tmp_path / "svhn"
    directory.mkdir()
    mats = {}
    for split, n in (("train", 7), ("test", 4)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, (n, 1)).astype(np.uint8)
        y[0, 0] = 10
        scipy.io.savemat(directory / f"{split}_32x32.mat", {"X": x, "y": y})
        mats[split] = (x, y)
    raw = load_raw("svhn", raw_root=tmp_path, download=False)
    x, y = mats["train"]
    assert raw.x_train.shape == (7, 3, 32, 32) and raw.x_train.dtype == np.uint8
    # NCHW: raw[i, c, h, w] is X[h, w, c, i].
    assert raw.x_train[5, 2, 7, 30] == x[7, 30, 2, 5]
    np.testing.assert_array_equal(raw.x_train, x.transpose(3, 2, 0, 1))
    expected = y[:, 0].astype(np.int64) % 10
    np.testing.assert_array_equal(raw.y_train, expected)
    assert raw.y_train[0] == 0
    np.testing.assert_array_equal(raw.y_test, mats["test"][1][:, 0].astype(np.int64) % 10)
    assert raw.classes == tuple("0123456789")


def test_svhn_not_a_mat(tmp_path: Path) -> None:
    directory = tmp_path / "svhn"
    directory.mkdir()
    (directory / "train_32x32.mat").write_bytes(b"this is not a matlab file at all" * 10)
    (directory / "test_32x32.mat").write_bytes(b"nor this")
    with pytest.raises(DataError, match=r"train_32x32\.mat"):
        load_raw("svhn", raw_root=tmp_path, download=False)


# --------------------------------------------------------------------------- npz


def _npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("layout", ["nhwc", "nchw", "gray"])
def test_npz_layouts(tmp_path: Path, layout: str) -> None:
    rng = np.random.default_rng(5)
    nchw = rng.integers(0, 256, (9, 3, 5, 6), dtype=np.uint8)
    nchw_t = rng.integers(0, 256, (4, 3, 5, 6), dtype=np.uint8)
    if layout == "nhwc":
        x, xt = nchw.transpose(0, 2, 3, 1), nchw_t.transpose(0, 2, 3, 1)
    elif layout == "nchw":
        x, xt = nchw, nchw_t
    else:
        nchw, nchw_t = nchw[:, :1], nchw_t[:, :1]
        x, xt = nchw[:, 0], nchw_t[:, 0]
    y = rng.integers(0, 4, 9).astype(np.int32)
    yt = np.array([[0], [1], [2], [3]], dtype=np.uint8)
    path = _npz(tmp_path / "d.npz", x=x, y=y, x_test=xt, y_test=yt)
    raw = load_raw("npz", path=path)
    np.testing.assert_array_equal(raw.x_train, nchw)
    np.testing.assert_array_equal(raw.x_test, nchw_t)
    np.testing.assert_array_equal(raw.y_train, y)
    np.testing.assert_array_equal(raw.y_test, [0, 1, 2, 3])
    assert raw.y_train.dtype == np.int64
    assert raw.classes == ("0", "1", "2", "3")
    assert raw.source == path


def test_npz_class_names(tmp_path: Path) -> None:
    x = np.zeros((4, 1, 6, 6), np.uint8)
    y = np.array([0, 1, 2, 0])
    path = _npz(tmp_path / "d.npz", x=x, y=y, x_test=x, y_test=y, classes=np.array(["a", "b", "c"]))
    assert load_raw("npz", path=path).classes == ("a", "b", "c")
    path = _npz(
        tmp_path / "b.npz", x=x, y=y, x_test=x, y_test=y, classes=np.array([b"u", b"v", b"w"])
    )
    assert load_raw("npz", path=path).classes == ("u", "v", "w")


def test_npz_errors(tmp_path: Path) -> None:
    y = np.zeros(4, np.int64)
    ambiguous = np.zeros((4, 3, 5, 3), np.uint8)
    path = _npz(tmp_path / "amb.npz", x=ambiguous, y=y, x_test=ambiguous, y_test=y)
    with pytest.raises(DataError, match="ambiguous"):
        load_raw("npz", path=path)

    x = np.zeros((4, 8, 8, 3), np.uint8)
    path = _npz(tmp_path / "halftest.npz", x=x, y=y, x_test=x)
    with pytest.raises(DataError, match=r"has x_test but no y_test.*x_test and y_test"):
        load_raw("npz", path=path)
    path = _npz(tmp_path / "noy.npz", x=x, x_test=x, y_test=y)
    with pytest.raises(DataError, match="missing y"):
        load_raw("npz", path=path)

    five = np.zeros((4, 8, 8, 5), np.uint8)
    path = _npz(tmp_path / "five.npz", x=five, y=y, x_test=five, y_test=y)
    with pytest.raises(DataError, match="1 or 3 channels"):
        load_raw("npz", path=path)

    floats = np.zeros((4, 8, 8, 3), np.float32)
    path = _npz(tmp_path / "float.npz", x=floats, y=y, x_test=floats, y_test=y)
    with pytest.raises(DataError, match="uint8"):
        load_raw("npz", path=path)

    path = _npz(tmp_path / "short.npz", x=x, y=y[:3], x_test=x, y_test=y)
    with pytest.raises(DataError, match="shape"):
        load_raw("npz", path=path)

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x=np.array([{"a": 1}], dtype=object), y=y, x_test=x, y_test=y)
    with pytest.raises(DataError, match="never unpickles"):
        load_raw("npz", path=str(pickled))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x80\x04not an archive at all" * 8)
    with pytest.raises(DataError, match=r"garbage.npz: holds pickled data .* never unpickles"):
        load_raw("npz", path=str(garbage))

    with pytest.raises(DataError, match="not found"):
        load_raw("npz", path=str(tmp_path / "absent.npz"))
    with pytest.raises(DataError, match="path is required"):
        load_raw("npz")


def test_npz_without_test_set(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    x = rng.integers(0, 256, (40, 6, 6), dtype=np.uint8)
    y = np.repeat(np.arange(4), 10)
    raw = load_raw("npz", path=_npz(tmp_path / "xy.npz", x=x, y=y))
    assert raw.x_test is None and raw.y_test is None and not raw.has_test
    assert raw.classes == ("0", "1", "2", "3") and raw.x_train.shape == (40, 1, 6, 6)
    splits = make_splits(raw, "npz", val_size=8, train_size=0, seed=0, test_size=12)
    assert splits.test_source == "held-out"
    assert np.bincount(splits.y_test.numpy()).tolist() == [3, 3, 3, 3]
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (20, 8, 12)


# --------------------------------------------------------------------------- folder


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_image_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    expected: dict[str, list[np.ndarray]] = {}
    for split, per_class in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog"):
            for i in range(per_class):
                img = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)  # H, W, C
                _png(tmp_path / "imgs" / split / cls / f"{i}.png", img)
                expected.setdefault(split, []).append(img.transpose(2, 0, 1))
    raw = load_raw("folder", path=str(tmp_path / "imgs"))
    assert raw.classes == ("cat", "dog")
    assert raw.x_train.shape == (6, 3, 5, 7) and raw.x_train.dtype == np.uint8
    np.testing.assert_array_equal(raw.x_train, np.stack(expected["train"]))
    np.testing.assert_array_equal(raw.x_test, np.stack(expected["test"]))
    np.testing.assert_array_equal(raw.y_train, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(raw.y_test, [0, 0, 1, 1])


def test_image_folder_grayscale_stays_one_channel(tmp_path: Path) -> None:
    img = np.arange(20, dtype=np.uint8).reshape(4, 5)
    for split in ("train", "test"):
        for cls in ("a", "b"):
            _png(tmp_path / split / cls / "x.png", img)
    raw = load_raw("folder", path=str(tmp_path))
    assert raw.x_train.shape == (2, 1, 4, 5)
    np.testing.assert_array_equal(raw.x_test[1, 0], img)


def test_image_folder_without_test(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    for cls in ("a", "b"):
        for i in range(5):
            _png(tmp_path / "train" / cls / f"{i}.png", rng.integers(0, 256, (4, 4, 3), np.uint8))
    raw = load_raw("folder", path=str(tmp_path))
    assert raw.x_test is None and raw.y_test is None and raw.x_train.shape == (10, 3, 4, 4)
    splits = make_splits(raw, "folder", val_size=2, train_size=0, seed=0, test_size=4)
    assert splits.test_source == "held-out"
    assert np.bincount(splits.y_test.numpy()).tolist() == [2, 2]
    assert np.bincount(splits.y_val.numpy()).tolist() == [1, 1]
    assert len(splits.y_train) == 4


def test_image_folder_errors(tmp_path: Path) -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    _png(tmp_path / "m" / "train" / "a" / "1.png", img)
    _png(tmp_path / "m" / "train" / "b" / "1.png", img)
    _png(tmp_path / "m" / "test" / "a" / "1.png", img)
    _png(tmp_path / "m" / "test" / "c" / "1.png", img)
    with pytest.raises(DataError, match="differ"):
        load_raw("folder", path=str(tmp_path / "m"))

    _png(tmp_path / "s" / "train" / "a" / "1.png", img)
    _png(tmp_path / "s" / "train" / "a" / "2.png", np.zeros((5, 4, 3), np.uint8))
    _png(tmp_path / "s" / "test" / "a" / "1.png", img)
    with pytest.raises(DataError, match="one size"):
        load_raw("folder", path=str(tmp_path / "s"))

    _png(tmp_path / "n" / "test" / "a" / "1.png", img)
    with pytest.raises(DataError, match="train/ not found"):
        load_raw("folder", path=str(tmp_path / "n"))


# --------------------------------------------------------------------------- downloads


def _mnist_payloads(tmp_path: Path) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """Gzipped IDX files as the official server would send them, keyed by official URL."""
    arrays = write_idx_set(tmp_path / "origin", np.random.default_rng(7), gz=True)
    payloads = {
        r.url: (tmp_path / "origin" / r.filename).read_bytes() for r in data.DOWNLOADS["mnist"]
    }
    return payloads, arrays


def test_download_sha256_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payloads, _ = _mnist_payloads(tmp_path)
    serve(monkeypatch, payloads)
    first = data.DOWNLOADS["mnist"][0]
    actual = hashlib.sha256(payloads[first.url]).hexdigest()
    raw_root = tmp_path / "raw"
    with pytest.raises(DataError) as info:
        load_raw("mnist", raw_root=raw_root)
    message = str(info.value)
    assert first.filename in message
    assert first.sha256 in message and actual in message
    assert "\n" not in message
    # Nothing was kept: neither the bad file nor a temporary one.
    assert [p for p in raw_root.rglob("*") if p.is_file()] == []


def test_download_success(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payloads, arrays = _mnist_payloads(tmp_path)
    pinned = tuple(
        data.Remote(r.filename, r.url, hashlib.sha256(payloads[r.url]).hexdigest())
        for r in data.DOWNLOADS["mnist"]
    )
    monkeypatch.setitem(data.DOWNLOADS, "mnist", pinned)
    seen: list = []
    serve(monkeypatch, payloads, seen)
    raw = load_raw("mnist", raw_root=tmp_path / "raw")
    np.testing.assert_array_equal(raw.x_train[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(raw.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert raw.source == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert [t for _, t in seen] == [30.0] * 4
    stored = sorted(p.name for p in (tmp_path / "raw" / "mnist").iterdir())
    assert stored == sorted(f"{n}.gz" for n in IDX_NAMES)
    # Second call reads the verified local copy and fetches nothing.
    seen.clear()
    again = load_raw("mnist", raw_root=tmp_path / "raw")
    assert seen == [] and again.source == str(tmp_path / "raw" / "mnist")


def test_download_function_directly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = b"payload" * 1000
    serve(monkeypatch, {"http://example.invalid/f": blob})
    dest = tmp_path / "sub" / "f"
    data.download("http://example.invalid/f", dest, hashlib.sha256(blob).hexdigest())
    assert dest.read_bytes() == blob
    with pytest.raises(DataError, match=r"expected 0{64}, got"):
        data.download("http://example.invalid/f", tmp_path / "g", "0" * 64)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["f"]


def test_all_sources_fail_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serve(monkeypatch, {})
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion-mnist", (tmp_path / "no-system-copy",))
    with pytest.raises(DataError) as info:
        load_raw("fashion-mnist", raw_root=tmp_path / "raw")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("fashion-mnist: not found in ")
    assert str(tmp_path / "no-system-copy") in message
    assert data.DOWNLOADS["fashion-mnist"][0].url in message
    assert "Name or service not known" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert [p for p in (tmp_path / "raw").rglob("*") if p.is_file()] == []

    with pytest.raises(DataError, match="downloading is disabled"):
        load_raw("cifar10", raw_root=tmp_path / "raw", download=False)


def test_download_table_is_complete() -> None:
    for name in ("fashion-mnist", "mnist", "cifar10", "cifar100", "svhn"):
        remotes = data.DOWNLOADS[name]
        assert remotes
        for r in remotes:
            assert r.url.endswith("/" + r.filename)
            assert len(r.sha256) == 64 and int(r.sha256, 16) >= 0


def test_unknown_dataset() -> None:
    with pytest.raises(DataError, match="unknown dataset 'imagenet'"):
        load_raw("imagenet")
    assert DATASETS.names == (
        "fashion-mnist", "mnist", "cifar10", "cifar100", "svhn", "npz", "folder"
    )
    assert [n for n, entry in DATASETS.items() if entry.needs_path] == ["npz", "folder"]
    assert DATASETS.lookup("npz", "data.name").name == "npz"
    assert DataError is errors.DataError  # re-exported, one class
    with pytest.raises(ConfigError, match=r'data\.name = "imagenet": must be one of fashion-mnist'):
        DATASETS.lookup("imagenet", "data.name")


@pytest.mark.skipif(not FMNIST_SYSTEM.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_system_copy(tmp_path: Path) -> None:
    raw = load_raw("fashion-mnist", raw_root=tmp_path, download=False)
    assert raw.x_train.shape == (60000, 1, 28, 28) and raw.x_test.shape == (10000, 1, 28, 28)
    assert raw.x_train.dtype == np.uint8 and raw.y_train.dtype == np.int64
    assert raw.source == str(FMNIST_SYSTEM)
    np.testing.assert_array_equal(np.bincount(raw.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(raw.y_test), [1000] * 10)


# --------------------------------------------------------------------------- make_splits


def test_val_is_stratified_and_disjoint() -> None:
    counts = [50, 30, 20, 7, 1]
    raw = toy_raw(counts)
    splits = make_splits(raw, "toy", val_size=23, train_size=0, seed=0)
    val_counts = np.bincount(splits.y_val.numpy(), minlength=5)
    assert val_counts.sum() == 23
    proportional = 23 * np.array(counts) / sum(counts)
    assert np.all(np.abs(val_counts - proportional) <= 1)
    assert len(splits.y_train) == sum(counts) - 23
    # Train and val partition the original training set: recover indices by content.
    keys = {raw.x_train[i].tobytes(): i for i in range(len(raw.y_train))}
    val_idx = {keys[x.numpy().tobytes()] for x in splits.x_val}
    train_idx = {keys[x.numpy().tobytes()] for x in splits.x_train}
    assert not val_idx & train_idx and len(val_idx | train_idx) == sum(counts)
    for x, y in zip(splits.x_val, splits.y_val, strict=True):
        assert raw.y_train[keys[x.numpy().tobytes()]] == int(y)
    assert torch.equal(splits.x_test, torch.from_numpy(raw.x_test))
    assert splits.x_train.dtype == torch.uint8 and splits.y_train.dtype == torch.int64
    assert splits.shape == (3, 4, 4) and splits.num_classes == 5 and splits.name == "toy"


def test_train_size_is_class_balanced() -> None:
    raw = toy_raw([40, 40, 40, 6])
    splits = make_splits(raw, "toy", val_size=10, train_size=50, seed=1)
    train_counts = np.bincount(splits.y_train.numpy(), minlength=4)
    assert train_counts.sum() == 50
    # Class 3 has only ~5 left after validation: it gives all it has, the rest share evenly.
    remaining_3 = 6 - int((splits.y_val == 3).sum())
    assert train_counts[3] == remaining_3
    assert train_counts[:3].max() - train_counts[:3].min() <= 1

    even = make_splits(toy_raw([30, 30, 30]), "toy", val_size=9, train_size=20, seed=0)
    assert sorted(np.bincount(even.y_train.numpy()).tolist()) == [6, 7, 7]


def test_splits_are_deterministic_per_seed() -> None:
    raw = toy_raw([60, 60, 60])
    a = make_splits(raw, "toy", 30, 60, seed=3)
    b = make_splits(raw, "toy", 30, 60, seed=3)
    c = make_splits(raw, "toy", 30, 60, seed=4)
    for key in ("x_train", "y_train", "x_val", "y_val"):
        assert torch.equal(getattr(a, key), getattr(b, key))
    assert not torch.equal(a.x_val, c.x_val)
    assert a.mean == b.mean and a.std == b.std


def test_split_errors() -> None:
    raw = toy_raw([10, 10])
    with pytest.raises(DataError, match="train_size=16 is larger than the 15"):
        make_splits(raw, "toy", val_size=5, train_size=16, seed=0)
    with pytest.raises(DataError, match="val_size"):
        make_splits(raw, "toy", val_size=20, train_size=0, seed=0)
    bad = RawDataset(raw.x_train, raw.y_train + 1, raw.x_test, raw.y_test, raw.classes, "toy")
    with pytest.raises(DataError, match=r"outside 0\.\.1"):
        make_splits(bad, "toy", val_size=2, train_size=0, seed=0)
    neg = RawDataset(raw.x_train, raw.y_train, raw.x_test, raw.y_test - 5, raw.classes, "toy")
    with pytest.raises(DataError, match="test labels"):
        make_splits(neg, "toy", val_size=2, train_size=0, seed=0)


def test_mean_std_of_train_part() -> None:
    raw = toy_raw([20, 20, 20], channels=3)
    splits = make_splits(raw, "toy", val_size=6, train_size=0, seed=0)
    x = splits.x_train.numpy().astype(np.float64) / 255.0
    np.testing.assert_allclose(splits.mean, x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(splits.std, x.std(axis=(0, 2, 3)), rtol=1e-12)
    assert len(splits.mean) == 3


def _no_test(raw: RawDataset) -> RawDataset:
    return dataclasses.replace(raw, x_test=None, y_test=None)


def test_held_out_test_is_stratified_disjoint_and_drawn_first() -> None:
    counts = [50, 30, 20, 7, 1]
    raw = _no_test(toy_raw(counts))
    splits = make_splits(raw, "toy", val_size=11, train_size=0, seed=2, test_size=23)
    assert splits.test_source == "held-out"
    test_counts = np.bincount(splits.y_test.numpy(), minlength=5)
    assert test_counts.sum() == 23
    assert np.all(np.abs(test_counts - 23 * np.array(counts) / sum(counts)) <= 1)
    keys = {raw.x_train[i].tobytes(): i for i in range(len(raw.y_train))}
    parts = [{keys[x.numpy().tobytes()] for x in getattr(splits, f"x_{p}")}
             for p in ("train", "val", "test")]  # fmt: skip
    assert sum(map(len, parts)) == sum(counts) and set.union(*parts) == set(range(sum(counts)))
    for x, y in zip(splits.x_test, splits.y_test, strict=True):
        assert raw.y_train[keys[x.numpy().tobytes()]] == int(y)
    # The test draw comes first from the seed's stream: it equals a validation draw of 23.
    first = make_splits(toy_raw(counts), "toy", val_size=23, train_size=0, seed=2)
    assert torch.equal(splits.x_test, first.x_val) and torch.equal(splits.y_test, first.y_val)
    again = make_splits(raw, "toy", val_size=11, train_size=0, seed=2, test_size=23)
    for key in ("x_train", "x_val", "x_test"):
        assert torch.equal(getattr(splits, key), getattr(again, key))


def test_test_size_ignored_when_the_dataset_has_a_test_set() -> None:
    raw = toy_raw([20, 20, 20])
    a = make_splits(raw, "toy", val_size=6, train_size=30, seed=1)
    b = make_splits(raw, "toy", val_size=6, train_size=30, seed=1, test_size=9)
    assert a.test_source == b.test_source == "given"
    for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(a, key), getattr(b, key)), key


def test_held_out_errors() -> None:
    raw = _no_test(toy_raw([10, 10]))
    with pytest.raises(DataError) as info:
        make_splits(raw, "toy", val_size=2, train_size=0, seed=0)
    message = str(info.value)
    assert "data.test_size" in message and "must be > 0 when the dataset has no test set" in message
    assert "\n" not in message
    with pytest.raises(DataError, match=r"test_size=15 \+ val_size=5 leaves no training data"):
        make_splits(raw, "toy", val_size=5, train_size=0, seed=0, test_size=15)
    with pytest.raises(DataError, match=r"larger than the 10 .* and test_size=6"):
        make_splits(raw, "toy", val_size=4, train_size=11, seed=0, test_size=6)
    half = dataclasses.replace(raw, y_test=np.zeros(3, np.int64))
    with pytest.raises(DataError, match="both be given or both be None"):
        make_splits(half, "toy", val_size=2, train_size=0, seed=0, test_size=2)


# --------------------------------------------------------------------------- save / load


def test_save_load_round_trip(tmp_path: Path) -> None:
    splits = make_splits(toy_raw([15, 12, 9]), "toy", val_size=6, train_size=0, seed=0)
    path = tmp_path / "out" / "splits.npz"
    save_splits(splits, path)
    save_splits(splits, path)  # overwriting is atomic too
    assert sorted(p.name for p in path.parent.iterdir()) == ["splits.npz"]

    loaded = load_splits(path)
    assert isinstance(loaded, Splits)
    for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(loaded, key), getattr(splits, key)), key
        assert getattr(loaded, key).dtype == getattr(splits, key).dtype
    assert loaded.classes == splits.classes and loaded.name == "toy"
    assert loaded.mean == splits.mean and loaded.std == splits.std
    assert splits.test_source == "given" and loaded.test_source == "unknown"  # not stored

    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"][0]))
        assert z["meta"].dtype.kind == "U"
    assert meta["classes"] == ["c0", "c1", "c2"]
    assert sorted(meta) == ["classes", "format", "mean", "name", "std"]

    held = make_splits(_no_test(toy_raw([15, 12, 9])), "toy", 6, 0, seed=0, test_size=6)
    save_splits(held, path)
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(["meta", "x_train", "y_train", "x_val", "y_val",
                                          "x_test", "y_test"])
        assert "test_source" not in str(z["meta"][0])


def test_load_splits_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_splits(tmp_path / "absent.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00\x01not a zip file" * 50)
    with pytest.raises(DataError, match=r"garbage\.npz"):
        load_splits(garbage)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(DataError, match="not a splits file"):
        load_splits(other)
    splits = make_splits(toy_raw([5, 5]), "toy", val_size=2, train_size=0, seed=0)
    good = tmp_path / "good.npz"
    save_splits(splits, good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:-200])
    with pytest.raises(DataError, match=r"truncated\.npz"):
        load_splits(truncated)


def test_npz_labels_must_number_trained_classes(tmp_path):
    """A test label the training set never has, sparse labels and a test set of another image
    size are refused with a one-line error naming the file, the key and the label."""
    x = np.zeros((6, 8, 8), np.uint8)
    y = np.array([0, 1, 2, 0, 1, 2])
    path = _npz(tmp_path / "unseen.npz", x=x, y=y, x_test=x[:3], y_test=np.array([0, 1, 3]))
    with pytest.raises(DataError, match=r"unseen.npz: 'y_test' holds label 3 \(1 test "
                                        r"examples\) that 'y' never has"):
        load_raw("npz", path=path)
    path = _npz(tmp_path / "sparse.npz", x=x, y=np.array([0, 499] * 3))
    with pytest.raises(DataError, match=r"sparse.npz: 'y' has 2 distinct labels spread over "
                                        r"0..499 \(498 unused, e.g. 1, 2, 3, 4, 5, …\)") as err:
        load_raw("npz", path=path)
    assert "\n" not in str(err.value)
    path = _npz(tmp_path / "size.npz", x=x, y=y, x_test=np.zeros((3, 10, 10), np.uint8),
                y_test=np.array([0, 1, 2]))
    with pytest.raises(DataError, match=r"size.npz: 'x_test' images are 10×10 with 1 "
                                        r"channel\(s\) but 'x' images are 8×8"):
        load_raw("npz", path=path)
