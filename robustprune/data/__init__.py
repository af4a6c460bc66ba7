"""Datasets: turn a named dataset into canonical train/val/test tensors, and back from disk.

Two stages, kept apart on purpose:

* :func:`load_raw` reads a dataset in its *original* distribution format into one in-memory
  shape, :class:`RawDataset`: uint8 images NCHW and int64 labels (:mod:`.readers`; nothing
  there unpickles, because a dataset file is data from the internet and must never be able
  to execute code).  Which datasets exist, where each is found and its pinned download
  checksums are in :mod:`.sources`: one entry per name in :data:`DATASETS`.
* :func:`make_splits` carves a stratified, seeded validation set (and, for a dataset that
  ships none, a test set) out of the training set, and :func:`save_splits` /
  :func:`load_splits` store the result as one plain ``.npz`` so that every later stage reads
  the exact same examples (:mod:`.splits`).

This package imports nothing of config, pipeline, training or selection, so any of those can
import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robustprune.data.readers import read_idx
from robustprune.data.sources import (
    CIFAR10_CLASSES,
    CIFAR100_CLASSES,
    DOWNLOAD_TIMEOUT_S,
    DOWNLOADS,
    ENTRIES,
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    SVHN_CLASSES,
    SYSTEM_DIRS,
    Builtin,
    Remote,
    UserPath,
    download,
)
from robustprune.data.splits import (
    SPLITS_FORMAT,
    TEST_GIVEN,
    TEST_HELD_OUT,
    TEST_UNKNOWN,
    RawDataset,
    Splits,
    check_labels,
    load_splits,
    make_splits,
    save_splits,
)
from robustprune.errors import ConfigError, DataError
from robustprune.registry import Registry
from robustprune.schema import param as _p

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR100_CLASSES",
    "DATASETS",
    "DOWNLOADS",
    "DOWNLOAD_TIMEOUT_S",
    "FASHION_MNIST_CLASSES",
    "MNIST_CLASSES",
    "SPLITS_FORMAT",
    "SVHN_CLASSES",
    "SYSTEM_DIRS",
    "TEST_GIVEN",
    "TEST_HELD_OUT",
    "TEST_UNKNOWN",
    "Builtin",
    "DataConfig",
    "DataError",
    "RawDataset",
    "Remote",
    "Splits",
    "UserPath",
    "download",
    "load_raw",
    "load_splits",
    "make_splits",
    "read_idx",
    "save_splits",
]

DATASETS: Registry[Builtin | UserPath] = Registry("data.name", ENTRIES)


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` section: which dataset, and the split every run shares."""

    name: str = _p("fashion-mnist", choices=DATASETS.names)
    seed: int = _p(0, lo=0, doc="validation split and training subset; shared by every seed so "
                               "all runs train, validate and test on the same examples")
    path: str = _p("", doc="file (npz) or directory (folder, or an override of data/raw/<name>)")
    val_size: int = _p(5000, lo=0)
    train_size: int = _p(0, lo=0, doc="0 = all remaining training examples")
    test_size: int = _p(0, lo=0, doc="held out (stratified) from the training data when the "
                                     "dataset has no test set; ignored when it has one")

    def __post_init__(self) -> None:
        if DATASETS[self.name].needs_path and not self.path:
            raise ConfigError(f'data.path = "": required when data.name is {self.name}')
"""Every ``data.name``: each entry has ``name``, ``needs_path`` (a user file or folder given
by ``data.path``) and ``load(path, raw_root, download)``."""


def load_raw(
    name: str, path: str = "", raw_root: Path = Path("data/raw"), download: bool = True
) -> RawDataset:
    """Read dataset ``name`` in its original format.

    Built-in datasets are looked for, in order, in ``raw_root/<name>/`` (or ``path`` when
    given), in the system copies listed in :data:`SYSTEM_DIRS`, and finally downloaded
    (when ``download`` is true) from :data:`DOWNLOADS` into ``raw_root/<name>/`` (or
    ``path``), checked against the pinned SHA-256.  ``"npz"`` reads the ``.npz`` file and
    ``"folder"`` the ``train/`` (+ optional ``test/``) image folders at ``path``; without a
    test set the result has ``x_test = y_test = None``.

    Raises :class:`DataError` with a one-line explanation when nothing usable is found.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return _checked(DATASETS[name].load(path, Path(raw_root), download), name)


def _checked(raw: RawDataset, name: str) -> RawDataset:
    """Enforce the RawDataset contract once, whatever the source format."""
    if (raw.x_test is None) != (raw.y_test is None):
        raise DataError(f"{name}: x_test and y_test must both be given or both be None")
    for split in ("train", "test"):
        x, y = getattr(raw, f"x_{split}"), getattr(raw, f"y_{split}")
        if x is None:
            continue
        if x.dtype != np.uint8 or x.ndim != 4:
            raise DataError(f"{name}: {split} images must be uint8 NCHW, got {x.dtype} {x.shape}")
        if y.dtype != np.int64 or y.shape != (x.shape[0],):
            raise DataError(f"{name}: {split} needs {x.shape[0]} int64 labels, got {y.shape}")
        if x.shape[0] == 0:
            raise DataError(f"{name}: the {split} set is empty ({raw.source})")
    if raw.x_test is not None and raw.x_train.shape[1:] != raw.x_test.shape[1:]:
        raise DataError(
            f"{name}: train images are {raw.x_train.shape[1:]} but test images are "
            f"{raw.x_test.shape[1:]} (C,H,W)"
        )
    for split, y in (("train", raw.y_train), ("test", raw.y_test)):
        if y is not None:
            check_labels(y, len(raw.classes), f"{name} {split} labels ({raw.source})")
    return raw
