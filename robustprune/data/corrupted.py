"""Corrupted test sets: the common-corruption benchmark every evaluation reuses.

A :class:`CorruptedSet` holds the first ``n`` test images under each of the 15 benchmark
corruptions at 5 severities (uint8 [K, S, n, C, H, W]) with their labels, in one plain
``.npz`` (no pickle). It comes from one of :data:`CORRUPTED_SOURCES`:

* ``generated``: made here from the prepared clean test set by
  :func:`robustprune.corruption_ops.corrupt`, seeded, so the same seed gives the same bytes (for
  any dataset and image size, e.g. a Fashion-MNIST-C);
* ``cifar10-c`` / ``cifar100-c``: the official CIFAR-10-C / CIFAR-100-C archives (Hendrycks &
  Dietterich 2019; Zenodo), downloaded with pinned checksums, each ``<corruption>.npy`` holding
  the 10 000 test images at severities 1…5 in order. Their images are the CIFAR test set in
  order, so the examples pair with the clean test set's.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from robustprune.atomic import atomic_write
from robustprune.corruption_ops import CATEGORIES, CORRUPTIONS, SEVERITIES, corrupt
from robustprune.data.readers import tar_members
from robustprune.data.splits import display, names_list, one_line
from robustprune.errors import DataError
from robustprune.schema import param as _p

CORRUPTED_FORMAT = 1
CORRUPTION_NAMES = tuple(CORRUPTIONS.names)


@dataclass(frozen=True)
class CorruptedSet:
    """x: uint8 [K, S, n, C, H, W] (corruption, severity, example); y: int64 [n]."""

    x: np.ndarray
    y: np.ndarray
    names: tuple[str, ...]
    severities: tuple[int, ...]
    source: str

    def __post_init__(self) -> None:
        if self.x.ndim != 6 or self.x.dtype != np.uint8:
            raise DataError(f"corrupted set ({self.source}): images must be uint8 "
                            f"[K,S,n,C,H,W], got {self.x.dtype} {self.x.shape}")
        k, s, n = self.x.shape[:3]
        if (k, s) != (len(self.names), len(self.severities)) or self.y.shape != (n,):
            raise DataError(f"corrupted set ({self.source}): {self.x.shape} images do not "
                            f"match {len(self.names)} corruptions × {len(self.severities)} "
                            f"severities and {self.y.shape[0]} labels")


def generate(x_test: np.ndarray, y_test: np.ndarray, n: int, seed: int,
             log: Callable[[str], None] = print) -> tuple[CorruptedSet, dict[str, float]]:
    """Every benchmark corruption × severity of the first ``n`` test images (0 = all), and
    the seconds each corruption took."""
    n = len(y_test) if n == 0 else min(n, len(y_test))
    x = np.ascontiguousarray(x_test[:n])
    out = np.empty((len(CORRUPTION_NAMES), len(SEVERITIES), *x.shape), dtype=np.uint8)
    seconds = {}
    for k, name in enumerate(CORRUPTION_NAMES):
        started = time.perf_counter()
        for j, s in enumerate(SEVERITIES):
            out[k, j] = corrupt(x, name, s, seed)
        seconds[name] = round(time.perf_counter() - started, 2)
        log(f"{name}: {seconds[name]:.1f} s")
    return CorruptedSet(out, np.asarray(y_test[:n], dtype=np.int64), CORRUPTION_NAMES,
                        SEVERITIES, f"generated (seed {seed})"), seconds


def save_corrupted(cset: CorruptedSet, path: Path) -> None:
    """One ``.npz`` (metadata as a JSON string), written atomically."""
    meta = {"format": CORRUPTED_FORMAT, "names": list(cset.names),
            "severities": list(cset.severities), "source": cset.source}

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, meta=np.array([json.dumps(meta)]), x=cset.x, y=cset.y)

    atomic_write(path, write)


def load_corrupted(path: Path) -> CorruptedSet:
    """Read a file written by :func:`save_corrupted`; :class:`DataError` if missing/corrupt."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"corrupted test set {path} not found; run the corrupt stage first")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"].reshape(-1)[0]))
            x, y = z["x"], z["y"]
        if meta.get("format") != CORRUPTED_FORMAT:
            raise DataError(f"{path}: unknown corrupted-set format (expected "
                            f"{CORRUPTED_FORMAT})")
        return CorruptedSet(x, y.astype(np.int64), tuple(meta["names"]),
                            tuple(int(s) for s in meta["severities"]), str(meta["source"]))
    except DataError:
        raise
    except (OSError, ValueError, EOFError, KeyError, IndexError, TypeError, AttributeError,
            zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"cannot read corrupted test set {path}: {one_line(err)}") from err


# --------------------------------------------------------------------------- CIFAR-10/100-C
@dataclass(frozen=True)
class CifarC:
    """An official CIFAR-C archive: where it is, what it hashes to, what is inside."""

    name: str
    dataset: str  # the data.name whose test set it corrupts
    url: str
    archive: str
    inner: str  # the folder inside the archive
    md5: str  # as published on the Zenodo record
    size: int = 0  # bytes, when published; 0 = not checked


CIFAR_C = {
    "cifar10-c": CifarC("cifar10-c", "cifar10",
                        "https://zenodo.org/records/2535967/files/CIFAR-10-C.tar",
                        "CIFAR-10-C.tar", "CIFAR-10-C", "56bf5dcef84df0e2308c6dcbcbbd8499",
                        2_918_471_680),
    "cifar100-c": CifarC("cifar100-c", "cifar100",
                         "https://zenodo.org/records/3555552/files/CIFAR-100-C.tar",
                         "CIFAR-100-C.tar", "CIFAR-100-C", "11f0ed0f1191edbf9fa23466ae6021d3"),
}
"""The official archives (Zenodo records 2535967 and 3555552) and their published MD5s."""

CORRUPTED_SOURCES = ("generated", *CIFAR_C)


@dataclass(frozen=True)
class CorruptionsConfig:
    """The ``corruptions`` section: the common-corruption test set every evaluation adds."""

    source: str = _p("generated", choices=CORRUPTED_SOURCES,
                     doc="generated: the 15 corruptions x 5 severities made from the test set; "
                         "cifar10-c / cifar100-c: the official archives")
    n: int = _p(2000, lo=0, doc="first n test examples; 0 = all")
    seed: int = _p(0, lo=0, doc="the generated corruptions' random draws")
    path: str = _p("", doc="cifar*-c: directory holding the archive (default data/raw/<source>)")
CIFAR_C_PER_SEVERITY = 10_000


def download_md5(url: str, dest: Path, md5: str, size: int = 0,
                 timeout: float = 30.0) -> Path:
    """Fetch ``url`` to ``dest`` only if its bytes hash to the published ``md5`` (the only
    digest Zenodo publishes for these archives); nothing unverified is left behind."""
    import urllib.request

    def fetch(tmp: str) -> None:
        digest = hashlib.md5(usedforsecurity=False)
        total = 0
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
                total += len(chunk)
        if digest.hexdigest() != md5 or (size and total != size):
            raise DataError(f"MD5/size mismatch for {dest.name} downloaded from {url}: "
                            f"expected {md5} ({size or '?'} bytes), got {digest.hexdigest()} "
                            f"({total} bytes); the file was deleted, retry or put a verified "
                            f"copy in {display(dest.parent)}")

    atomic_write(dest, fetch)
    return dest


def _extract_npy(archive: Path, inner: str, wanted: list[str], into: Path) -> None:
    """Extract exactly ``inner/<wanted>`` from the tar into ``into``, streamed (a CIFAR-C
    array is 150 MB) and each file written atomically."""

    def take(name: str, fh: IO[bytes]) -> None:
        atomic_write(into / name, lambda tmp: _copy(fh, tmp))

    tar_members(archive, inner, wanted, take)


def _copy(src: IO[bytes], dest: str) -> None:
    with open(dest, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _npy(path: Path, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read {path}: {one_line(err)}") from err
    if arr.dtype != np.uint8 or arr.shape[:len(shape)] != shape or arr.ndim != len(shape):
        raise DataError(f"{path}: expected {what} uint8 {shape}, got {arr.dtype} {arr.shape}")
    return arr


def read_cifar_c(directory: Path, spec: CifarC, n: int, download: bool = True) -> CorruptedSet:
    """The 15 benchmark corruptions of an official CIFAR-C release, first ``n`` examples
    (0 = all 10 000). Looked for extracted (``directory/<inner>/`` or ``directory``), else
    extracted from ``directory/<archive>``, else downloaded there (when ``download``)."""
    directory = Path(directory)
    wanted = [*(f"{c}.npy" for c in CORRUPTION_NAMES), "labels.npy"]
    found = next((d for d in (directory / spec.inner, directory)
                  if all((d / f).is_file() for f in wanted)), None)
    if found is None:
        archive = directory / spec.archive
        if not archive.is_file():
            if not download:
                raise DataError(f"{spec.name}: not found in {display(directory)} and "
                                f"downloading is disabled; put {spec.archive} (or its "
                                f"extracted {spec.inner}/) there")
            try:
                download_md5(spec.url, archive, spec.md5, spec.size)
            except (OSError, ValueError) as err:
                raise DataError(f"{spec.name}: download from {spec.url} failed "
                                f"({one_line(err)}); put {spec.archive} in "
                                f"{display(directory)}") from err
        found = directory / spec.inner
        _extract_npy(archive, spec.inner, wanted, found)
        missing = [f for f in wanted if not (found / f).is_file()]
        if missing:
            inside = [f"{spec.inner}/{m}" for m in missing]
            raise DataError(f"{archive}: missing {names_list(inside)}")
    total = len(SEVERITIES) * CIFAR_C_PER_SEVERITY
    labels = np.asarray(_npy(found / "labels.npy", (total,), "labels"), dtype=np.int64)
    count = CIFAR_C_PER_SEVERITY if n == 0 else min(n, CIFAR_C_PER_SEVERITY)
    for s in range(1, len(SEVERITIES)):
        block = labels[s * CIFAR_C_PER_SEVERITY:(s + 1) * CIFAR_C_PER_SEVERITY]
        if not np.array_equal(block, labels[:CIFAR_C_PER_SEVERITY]):
            raise DataError(f"{found / 'labels.npy'}: severity {s + 1} labels differ from "
                            "severity 1's (not a CIFAR-C release?)")
    x = np.empty((len(CORRUPTION_NAMES), len(SEVERITIES), count, 3, 32, 32), dtype=np.uint8)
    for k, name in enumerate(CORRUPTION_NAMES):
        arr = _npy(found / f"{name}.npy", (total, 32, 32, 3), name)
        for j in range(len(SEVERITIES)):
            start = j * CIFAR_C_PER_SEVERITY
            x[k, j] = np.asarray(arr[start:start + count]).transpose(0, 3, 1, 2)
    return CorruptedSet(x, labels[:count].copy(), CORRUPTION_NAMES, SEVERITIES,
                        f"{spec.name} ({display(found)})")


def category_of(name: str) -> str:
    """The ImageNet-C group (noise, blur, weather, digital) of a corruption."""
    return next(group for group, names in CATEGORIES.items() if name in names)
