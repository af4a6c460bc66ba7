"""Common corruptions: each is deterministic and changes images more at a higher severity; the
corrupted-set file, the CIFAR-C reader (on files generated in the official layout), the
MD5-pinned download, the corruption evaluation, mCE and the report's corruption table."""

from __future__ import annotations

import hashlib
import io
import itertools
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from robustprune import report
from robustprune.config import ConfigError, params_from_dict
from robustprune.corruption_ops import (
    CATEGORIES,
    CORRUPTIONS,
    SEVERITIES,
    brightness,
    contrast,
    corrupt,
    mean_corruption_error,
)
from robustprune.data.corrupted import (
    CIFAR_C,
    CORRUPTION_NAMES,
    CifarC,
    CorruptedSet,
    download_md5,
    generate,
    load_corrupted,
    read_cifar_c,
    save_corrupted,
)
from robustprune.errors import DataError, InputError
from robustprune.evaluation import corruption_eval
from robustprune.pipeline import api as pipeline
from robustprune.stats import paired_share_difference, share_mean
from tests.conftest import tiny_params


def shapes(n: int = 12, size: int = 28, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Synthetic garment-like uint8 NCHW images: a bright textured ellipse and a bar on a dark
    background (structure for the blurs to smear, flat areas for the noises to show)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    out = np.zeros((n, channels, size, size), dtype=np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(0.35, 0.65, 2)
        ry, rx = rng.uniform(0.2, 0.35, 2)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        shade = 0.5 + 0.4 * np.sin(8 * xx + rng.uniform(0, 6)) * np.cos(6 * yy)
        img = np.where(inside, shade, 0.05)
        top = rng.integers(2, size // 3)
        img[top:top + 3, size // 5: 4 * size // 5] = 0.95
        for c in range(channels):
            out[i, c] = np.rint(255 * np.clip(img * (1 - 0.2 * c), 0, 1))
    return out


def test_the_fifteen_benchmark_corruptions() -> None:
    assert len(CORRUPTIONS) == 15
    assert CORRUPTIONS.names == tuple(n for names in CATEGORIES.values() for n in names)
    assert CORRUPTIONS.names == CORRUPTION_NAMES
    assert SEVERITIES == (1, 2, 3, 4, 5)


@pytest.mark.parametrize("name", CORRUPTIONS.names)
def test_deterministic_and_monotone(name: str) -> None:
    x = shapes()
    change = []
    for s in SEVERITIES:
        a = corrupt(x, name, s, seed=3)
        b = corrupt(x, name, s, seed=3)
        assert a.dtype == np.uint8 and a.shape == x.shape
        np.testing.assert_array_equal(a, b)  # same seed, same bytes
        change.append(float(np.abs(a.astype(float) - x).mean()))
    assert change[0] > 0, f"{name} at severity 1 leaves the images unchanged"
    assert all(b >= a for a, b in itertools.pairwise(change)), (name, change)
    assert change[-1] > change[0], (name, change)


@pytest.mark.parametrize("name", CORRUPTIONS.names)
def test_colour_images_and_odd_sizes(name: str) -> None:
    x = shapes(n=3, size=32, channels=3, seed=1)
    y = corrupt(x, name, 3, seed=0)
    assert y.shape == x.shape and y.dtype == np.uint8
    odd = shapes(n=2, size=21, seed=2)
    assert corrupt(odd, name, 5, seed=0).shape == odd.shape


def test_seed_changes_random_corruptions_only() -> None:
    x = shapes(n=4)
    noisy = [corrupt(x, "gaussian_noise", 3, seed) for seed in (0, 1)]
    assert not np.array_equal(*noisy)
    np.testing.assert_array_equal(corrupt(x, "contrast", 3, 0), corrupt(x, "contrast", 3, 1))
    with pytest.raises(ValueError, match="severity = 6"):
        corrupt(x, "contrast", 6, 0)


def test_brightness_and_contrast_formulas() -> None:
    x = np.array([0.0, 0.2, 0.5, 0.9], dtype=np.float32).reshape(1, 2, 2, 1)
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(brightness(x, 2, rng).ravel(), [0.1, 0.3, 0.6, 1.0], atol=1e-6)
    mean = x.mean()
    np.testing.assert_allclose(contrast(x, 5, rng).ravel(), (x.ravel() - mean) * 0.15 + mean,
                               atol=1e-6)
    # on colour, brightness raises the HSV value and keeps the hue: channel ratios unchanged
    rgb = np.array([[0.2, 0.4, 0.1]], dtype=np.float32).reshape(1, 1, 1, 3)
    out = brightness(rgb, 3, rng).ravel()
    assert out.max() == pytest.approx(0.55)
    np.testing.assert_allclose(out / out.max(), rgb.ravel() / 0.4, atol=1e-6)


def test_generate_save_load_roundtrip(tmp_path: Path) -> None:
    x, y = shapes(n=5), np.arange(5, dtype=np.int64) % 3
    cset, seconds = generate(x, y, n=4, seed=7, log=lambda _: None)
    assert cset.x.shape == (15, 5, 4, 1, 28, 28) and set(seconds) == set(CORRUPTION_NAMES)
    np.testing.assert_array_equal(cset.x[2, 4], corrupt(x[:4], CORRUPTION_NAMES[2], 5, 7))
    again, _ = generate(x, y, n=4, seed=7, log=lambda _: None)
    np.testing.assert_array_equal(cset.x, again.x)
    path = tmp_path / "c.npz"
    save_corrupted(cset, path)
    back = load_corrupted(path)
    np.testing.assert_array_equal(back.x, cset.x)
    np.testing.assert_array_equal(back.y, y[:4])
    assert back.names == CORRUPTION_NAMES and back.source == "generated (seed 7)"
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read corrupted test set"):
        load_corrupted(tmp_path / "bad.npz")
    with pytest.raises(DataError, match="run the corrupt stage"):
        load_corrupted(tmp_path / "missing.npz")


# ------------------------------------------------------------------ CIFAR-C, official layout
def _cifar_c_files(root: Path, per: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The release's layout: <corruption>.npy uint8 [5·per, 32, 32, 3] (severity blocks in
    order) and labels.npy [5·per] (the test labels repeated per severity)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    labels = rng.integers(0, 10, per).astype(np.uint8)
    arrays = {"labels": np.tile(labels, 5)}
    for name in (*CORRUPTION_NAMES, "speckle_noise"):  # the release has extra corruptions too
        arrays[name] = rng.integers(0, 256, (5 * per, 32, 32, 3), dtype=np.uint8)
    for name, arr in arrays.items():
        np.save(root / f"{name}.npy", arr)
    return arrays


def test_cifar_c_reader_on_generated_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    monkeypatch.setattr("robustprune.data.corrupted.CIFAR_C_PER_SEVERITY", 6)
    spec = CIFAR_C["cifar10-c"]
    arrays = _cifar_c_files(tmp_path / "raw" / spec.inner, per=6)
    cset = read_cifar_c(tmp_path / "raw", spec, n=4, download=False)
    assert cset.x.shape == (15, 5, 4, 3, 32, 32)
    k = CORRUPTION_NAMES.index("fog")
    # severity 3 is the third block of 6 images, NHWC -> NCHW
    np.testing.assert_array_equal(cset.x[k, 2], arrays["fog"][12:16].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(cset.y, arrays["labels"][:4])
    assert cset.y.dtype == np.int64


def test_cifar_c_reader_from_archive_and_bad_files(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("robustprune.data.corrupted.CIFAR_C_PER_SEVERITY", 3)
    spec = CIFAR_C["cifar100-c"]
    src = tmp_path / "src"
    arrays = _cifar_c_files(src, per=3, seed=1)
    raw = tmp_path / "raw"
    raw.mkdir()
    with tarfile.open(raw / spec.archive, "w") as tar:
        for f in sorted(src.iterdir()):
            tar.add(f, arcname=f"{spec.inner}/{f.name}")
        evil = tarfile.TarInfo("../evil.npy")  # never extracted: names are matched exactly
        evil.size = 3
        tar.addfile(evil, io.BytesIO(b"bad"))
    cset = read_cifar_c(raw, spec, n=0, download=False)
    assert cset.x.shape[:3] == (15, 5, 3)
    np.testing.assert_array_equal(cset.x[0, 4], arrays[CORRUPTION_NAMES[0]][12:15]
                                  .transpose(0, 3, 1, 2))
    assert not (tmp_path / "evil.npy").exists()
    # severity blocks whose labels disagree are not a CIFAR-C release
    bad = tmp_path / "bad"
    _cifar_c_files(bad, per=3)
    labels = np.load(bad / "labels.npy")
    broken = labels.copy()
    broken[4] = (broken[4] + 1) % 10
    np.save(bad / "labels.npy", broken)
    with pytest.raises(DataError, match="severity 2 labels differ"):
        read_cifar_c(bad, spec, n=0, download=False)
    np.save(bad / "labels.npy", labels)
    np.save(bad / "fog.npy", np.zeros((15, 32, 32), dtype=np.uint8))
    with pytest.raises(DataError, match="fog"):
        read_cifar_c(bad, spec, n=0, download=False)
    with pytest.raises(DataError, match="downloading is disabled"):
        read_cifar_c(tmp_path / "empty", spec, n=0, download=False)


def test_cifar_c_download_is_md5_pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = b"archive bytes" * 100
    url = "https://example.invalid/C.tar"

    def fake(u: str, timeout: float | None = None) -> io.BytesIO:
        if u != url:
            raise urllib.error.URLError("offline")
        return io.BytesIO(blob)

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    good = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    download_md5(url, tmp_path / "ok.tar", good, len(blob))
    assert (tmp_path / "ok.tar").read_bytes() == blob
    with pytest.raises(DataError, match="MD5/size mismatch"):
        download_md5(url, tmp_path / "bad.tar", "0" * 32)
    with pytest.raises(DataError, match="MD5/size mismatch"):
        download_md5(url, tmp_path / "short.tar", good, len(blob) + 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.tar"]
    spec = CifarC("x-c", "cifar10", "https://example.invalid/none.tar", "none.tar", "X-C",
                  "0" * 32)
    with pytest.raises(DataError, match=r"download from .* failed"):
        read_cifar_c(tmp_path / "r", spec, n=0)
    for spec in CIFAR_C.values():
        assert spec.url.endswith("/" + spec.archive) and len(spec.md5) == 32


# ------------------------------------------------------------------ evaluation and statistics
class Threshold(nn.Module):
    """Class 1 when the image's mean brightness is above 0.3, else class 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([0.3 - m, m - 0.3], dim=1)


def test_corruption_eval_counts() -> None:
    x = np.zeros((2, 3, 4, 1, 5, 5), dtype=np.uint8)
    x[0, :, :2] = 255  # corruption 0: the first two examples bright at every severity
    x[1, 2] = 255  # corruption 1, severity 3: all bright
    y = np.array([1, 1, 0, 0])
    metrics, counts = corruption_eval(Threshold(), x, y, ("a", "b"), (1, 2, 3), 2,
                                      torch.device("cpu"))
    # corruption a: every severity all right; b: severities 1-2 half right, 3 half right
    assert metrics["corruption_grid"] == {"a": [1.0, 1.0, 1.0], "b": [0.5, 0.5, 0.5]}
    assert metrics["corruption_acc"] == pytest.approx(0.75)
    assert metrics["corruption_acc_by_severity"] == {"1": 0.75, "2": 0.75, "3": 0.75}
    np.testing.assert_array_equal(counts, [4, 4, 5, 5])  # of 6 copies each
    assert metrics["n_corruption"] == 4


def test_mean_corruption_error_hand_computed() -> None:
    model = {"a": [0.9, 0.8], "b": [0.5, 0.5]}
    base = {"a": [0.8, 0.6], "b": [0.5, 0.0]}
    # a: (0.1 + 0.2) / (0.2 + 0.4) = 0.5; b: (0.5 + 0.5) / (0.5 + 1.0) = 2/3
    out = mean_corruption_error(model, base)
    assert out["ce"]["a"] == pytest.approx(0.5)
    assert out["ce"]["b"] == pytest.approx(2 / 3, abs=1e-6)
    assert out["mce"] == pytest.approx((0.5 + 2 / 3) / 2, abs=1e-6)


def test_share_intervals() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 76, 400) / 75
    b = np.clip(a - 0.02 + rng.normal(0, 0.05, 400), 0, 1)
    iv = paired_share_difference([(a, b)])
    d = a - b
    half = iv.high - iv.estimate
    assert iv.estimate == pytest.approx(d.mean())
    assert half == pytest.approx(1.966 * d.std(ddof=1) / 20, rel=0.01)
    assert iv.method == "paired-t" and iv.contains(d.mean())
    two = paired_share_difference([(a, b), (b, a)])
    assert two.estimate == pytest.approx(0.0) and two.seeds == 2 and two.method == "seeds-crossed"
    m = share_mean([a])
    assert m.estimate == pytest.approx(a.mean()) and 0 <= m.low < m.estimate < m.high <= 1
    with pytest.raises(ValueError, match="shares must lie"):
        paired_share_difference([(a * 2, b)])


def test_corrupted_set_checks_shapes() -> None:
    with pytest.raises(DataError, match="do not match"):
        CorruptedSet(np.zeros((2, 5, 3, 1, 4, 4), dtype=np.uint8), np.zeros(3, dtype=np.int64),
                     ("a",), SEVERITIES, "t")


def test_corrupt_stage_evaluation_and_report(tmp_path: Path, tiny_npz: Path) -> None:
    """prepare → corrupt → warm-up → train two methods → evaluate (with corruptions) → report:
    the corruption table, its paired Δ, mCE against the clean-trained model and the
    corruption axis of the Pareto plot; the stage is deterministic."""
    raw = tiny_params(tiny_npz, methods={"full": {}, "bt": {"miner": "bullettrain"}},
                      train={"epochs": 2, "lr": 0.01}, warmup={"epochs": 3},  # compared
                      report={"pareto_axis": "corruption"})
    params = params_from_dict(raw)
    cpu = torch.device("cpu")
    data, ck = tmp_path / "data.npz", tmp_path / "ck"
    pipeline.prepare(params, data)
    info = pipeline.corrupt(params, data, tmp_path / "c.npz", tmp_path / "c.json")
    assert info["n"] == 24 and len(info["corruptions"]) == 15
    pipeline.corrupt(params, data, tmp_path / "c2.npz")
    assert (tmp_path / "c.npz").read_bytes() == (tmp_path / "c2.npz").read_bytes()
    metrics, ex = tmp_path / "metrics", tmp_path / "examples"
    pipeline.warmup(params, 0, data, tmp_path / "w.pt", metrics / "warmup" / "s0.json", None,
                    cpu, ck)
    pipeline.evaluate(params, 0, data, tmp_path / "w.pt", metrics / "eval_clean" / "s0.json",
                      ex / "clean-s0.parquet", cpu, ck, corrupted_path=tmp_path / "c.npz")
    for m in ("full", "bt"):
        pipeline.train(params, 0, m, data, tmp_path / "w.pt", tmp_path / f"{m}.pt",
                       metrics / "train" / f"{m}-0.json", None, cpu, ck)
        ev = pipeline.evaluate(params, 0, data, tmp_path / f"{m}.pt",
                               metrics / "eval" / f"{m}-0.json", ex / f"{m}-0.parquet", cpu, ck,
                               corrupted_path=tmp_path / "c.npz")
        assert 0 <= ev["corruption_acc"] <= 1 and ev["n_corrupted_copies"] == 75
        assert "corruption" in ev["seconds"]
    result = report.report(params, metrics, ex, tmp_path / "s.json", tmp_path / "s.md",
                           tmp_path / "p.png")
    c = result["methods"]["bt"]["corruption"]
    assert c["n"] == 24 and c["delta"]["n"] == 24 and c["mce"] is not None
    assert set(c["by_severity"]) == {"1", "2", "3", "4", "5"}
    assert result["methods"]["full"]["corruption"]["delta"]["estimate"] == 0.0
    text = (tmp_path / "s.md").read_text()
    assert "mCE vs clean-trained" in text and "| clean-trained (warm-up only) |" in text
    assert (tmp_path / "p.png").stat().st_size > 0
    # a corrupted set made from another test split is refused before any compute
    bad = CorruptedSet(np.zeros((15, 5, 24, 1, 8, 8), dtype=np.uint8),
                       np.zeros(24, dtype=np.int64), CORRUPTION_NAMES, SEVERITIES, "t")
    save_corrupted(bad, tmp_path / "bad.npz")
    with pytest.raises(InputError, match="not made from the test split"):
        pipeline.evaluate(params, 0, data, tmp_path / "full.pt", tmp_path / "x.json", None,
                          cpu, ck, corrupted_path=tmp_path / "bad.npz")
    assert not (tmp_path / "x.json").exists()


def test_cifar_c_source_needs_its_dataset(tiny_npz: Path) -> None:
    with pytest.raises(ConfigError, match=r"corruptions\.source = cifar10-c: corrupts the "
                                          r"cifar10 test set, but data\.name is npz"):
        params_from_dict(tiny_params(tiny_npz, corruptions={"source": "cifar10-c"}))
