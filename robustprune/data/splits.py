"""The two in-memory shapes of a dataset, and the split between them.

:class:`RawDataset` is a dataset as distributed (train and, when it has one, test);
:func:`make_splits` carves a stratified, seeded validation set (and, for a dataset without a
test set, a held-out test set) out of the training data into :class:`Splits`, and
:func:`save_splits` / :func:`load_splits` store the result as one plain ``.npz`` so that every
later stage reads the exact same examples. The test set is never used for model selection.

The splits file is loaded with ``allow_pickle=False``: its metadata is a JSON string in a
unicode array, never a pickled object.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robustprune.atomic import atomic_write
from robustprune.errors import DataError

SPLITS_FORMAT = "robustprune.splits/1"
"""Tag stored in every splits file, so that a future layout change is detected, not misread."""

TEST_GIVEN = "given"
"""``Splits.test_source`` when the test set is the dataset's own."""
TEST_HELD_OUT = "held-out"
"""``Splits.test_source`` when :func:`make_splits` held the test set out of the training data."""
TEST_UNKNOWN = "unknown"
"""``Splits.test_source`` of a :func:`load_splits` result: the file does not record it."""

_ARRAYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True, eq=False)
class RawDataset:
    """A dataset as distributed: train and test sets, not yet split.

    A dataset that ships no test set (a user ``.npz`` with only ``x``/``y``, an image folder
    without ``test/``) has ``x_test = y_test = None``; :func:`make_splits` then holds one out
    of the training data (``test_size``). ``eq=False`` because arrays do not compare to a
    single bool; compare fields instead.
    """

    x_train: np.ndarray  # uint8 [N, C, H, W]
    y_train: np.ndarray  # int64 [N]
    x_test: np.ndarray | None  # uint8 [M, C, H, W], or None: no test set
    y_test: np.ndarray | None  # int64 [M], or None together with x_test
    classes: tuple[str, ...]
    source: str  # where the data came from (a path or a URL), recorded for provenance

    @property
    def has_test(self) -> bool:
        """Whether the dataset ships its own test set."""
        return self.x_test is not None


@dataclass(frozen=True, eq=False)
class Splits:
    """Canonical train/val/test tensors plus the metadata later stages need.

    Images stay uint8 so that a split costs a quarter of the float32 memory; ``mean`` and
    ``std`` (per channel, of ``x_train / 255``) are what a model's normalisation layer uses,
    computed on the training part only so that no validation or test statistic leaks in.

    ``test_source`` says where the test set came from: :data:`TEST_GIVEN` (the dataset's own)
    or :data:`TEST_HELD_OUT` (drawn from the training data by :func:`make_splits`). It is
    *not* saved by :func:`save_splits` (the file's layout, and so its bytes, stay as they
    were), so a :func:`load_splits` result says :data:`TEST_UNKNOWN`.
    """

    x_train: torch.Tensor  # uint8 [N, C, H, W]
    y_train: torch.Tensor  # int64 [N]
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str
    test_source: str = TEST_UNKNOWN

    @property
    def num_classes(self) -> int:
        """Number of classes, i.e. the width of a classifier's output."""
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one image, (C, H, W)."""
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))


# --------------------------------------------------------------------------- message helpers


def one_line(err: BaseException | str) -> str:
    """Collapse an error text to one line, because DataError messages are printed as is."""
    text = " ".join(str(err).split())
    if not text and isinstance(err, BaseException):
        text = type(err).__name__
    return text


def display(directory: Path) -> str:
    """A directory as the user should read it in a message: with its trailing slash."""
    return str(directory).rstrip("/") + "/"


def names_list(names: Sequence[str]) -> str:
    """'a, b and c': file lists in messages."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def check_labels(y: np.ndarray, num_classes: int, what: str) -> None:
    """:class:`DataError` when a label falls outside ``0..num_classes-1``."""
    if y.size and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise DataError(
            f"{what} span {int(y.min())}..{int(y.max())}, outside 0..{num_classes - 1} "
            f"for {num_classes} classes"
        )


# --------------------------------------------------------------------------- quotas


def _proportional_quota(counts: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``counts`` (largest remainder method).

    Integer arithmetic, so every class gets floor or ceil of its exact share: each class
    count is within 1 of proportional, and ties are broken by class index, deterministically.
    """
    n = int(counts.sum())
    numer = counts.astype(np.int64) * total
    quota, rest = numer // n, numer % n
    extra = total - int(quota.sum())
    order = np.argsort(-rest, kind="stable")
    quota[order[:extra]] += 1
    return quota


def _balanced_quota(available: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` as evenly as possible over classes, capped by what each class has.

    Water filling: every class still below its cap is raised by the same whole share, so
    they stay level; a class too small for an equal share gives everything it has and the
    shortfall is spread over the others.  The last few (fewer than one per open class) go
    one each to the lowest-index open classes, so counts differ by at most one and the
    subset has exactly ``total`` examples.
    """
    quota = np.zeros_like(available)
    remaining = total
    while remaining > 0:
        open_classes = np.flatnonzero(quota < available)
        share = remaining // len(open_classes)
        if share == 0:
            quota[open_classes[:remaining]] += 1
            break
        add = np.minimum(share, available[open_classes] - quota[open_classes])
        quota[open_classes] += add
        remaining -= int(add.sum())
    return quota


def _sample_per_class(
    labels: np.ndarray, quota: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Indices (sorted) of ``quota[k]`` random examples of each class ``k``."""
    picked = [rng.permutation(np.flatnonzero(labels == k))[: int(q)] for k, q in enumerate(quota)]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def _stratified(
    y: np.ndarray, pool: np.ndarray, size: int, num_classes: int, rng: np.random.Generator
) -> np.ndarray:
    """``size`` indices of ``pool`` (sorted), class proportions of ``y[pool]`` preserved."""
    counts = np.bincount(y[pool], minlength=num_classes)
    return pool[_sample_per_class(y[pool], _proportional_quota(counts, size), rng)]


def _channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of ``x / 255``.

    Via a 256-bin histogram per channel: exact, and it never materialises a float copy of
    the whole training set (which for CIFAR would be over a gigabyte in float64).
    """
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[1]):
        hist = np.bincount(x[:, c].reshape(-1), minlength=256).astype(np.float64)
        n = hist.sum()
        mean = float((hist * values).sum() / n)
        var = float((hist * (values - mean) ** 2).sum() / n)
        means.append(mean)
        stds.append(var**0.5)
    return tuple(means), tuple(stds)


# --------------------------------------------------------------------------- make_splits


def make_splits(
    raw: RawDataset, name: str, val_size: int, train_size: int, seed: int, test_size: int = 0
) -> Splits:
    """Hold out a stratified validation set from the training data and build :class:`Splits`.

    ``val_size`` examples are drawn from the training set with class proportions preserved
    (each class within one example of proportional) by ``numpy.random.default_rng(seed)``,
    so a seed always yields the same split.  Of the rest, ``train_size == 0`` keeps all;
    otherwise a class-balanced subset of exactly ``train_size`` examples is drawn (balanced
    so small-data runs are not dominated by the frequent classes).

    A dataset's own test set is kept whole, ``test_size`` is ignored and the random stream is
    exactly as without it (``test_source == "given"``).  A dataset without one
    (``raw.has_test`` false) first has ``test_size > 0`` examples held out of the training
    data, stratified the same way and drawn from the same generator *before* the validation
    draw; validation then comes from the rest (``test_source == "held-out"``).

    Labels outside ``[0, len(classes))`` and impossible sizes raise :class:`DataError`.
    """
    num_classes = len(raw.classes)
    if num_classes == 0:
        raise DataError(f"{name}: the dataset has no classes")
    check_labels(np.asarray(raw.y_train), num_classes, f"{name} train labels")
    n = int(raw.y_train.shape[0])
    if raw.x_train.shape[0] != n:
        raise DataError(f"{name}: image and label counts differ")
    if raw.x_test is not None and raw.y_test is not None:
        check_labels(np.asarray(raw.y_test), num_classes, f"{name} test labels")
        if raw.x_test.shape[0] != raw.y_test.shape[0]:
            raise DataError(f"{name}: image and label counts differ")
        held_out = 0
    elif raw.x_test is not None or raw.y_test is not None:
        raise DataError(f"{name}: x_test and y_test must both be given or both be None")
    elif test_size <= 0:
        raise DataError(
            f"{name}: data.test_size = {test_size}: must be > 0 when the dataset has no test "
            f"set ({raw.source}); it is held out of the training data"
        )
    else:
        held_out = test_size
    if val_size < 0 or train_size < 0:
        raise DataError(f"{name}: val_size and train_size must be >= 0")
    if held_out + val_size >= n:
        what = f"test_size={held_out} + val_size={val_size}" if held_out else f"val_size={val_size}"
        raise DataError(f"{name}: {what} leaves no training data out of {n}")

    rng = np.random.default_rng(seed)
    y = np.asarray(raw.y_train, dtype=np.int64)
    pool = np.arange(n)
    test_idx = None
    if held_out:  # only then: a dataset's own test set leaves the stream untouched
        test_idx = _stratified(y, pool, held_out, num_classes, rng)
        pool = np.setdiff1d(pool, test_idx, assume_unique=True)
    val_idx = _stratified(y, pool, val_size, num_classes, rng)
    rest = np.setdiff1d(pool, val_idx, assume_unique=True)
    if train_size:
        if train_size > rest.size:
            raise DataError(
                f"{name}: train_size={train_size} is larger than the {rest.size} training "
                f"examples left after holding out val_size={val_size}"
                + (f" and test_size={held_out}" if held_out else "")
            )
        available = np.bincount(y[rest], minlength=num_classes)
        chosen = _sample_per_class(y[rest], _balanced_quota(available, train_size), rng)
        train_idx = rest[chosen]
    else:
        train_idx = rest

    if test_idx is None:
        x_test = np.array(raw.x_test, dtype=np.uint8, copy=True)
        y_test = np.array(raw.y_test, dtype=np.int64, copy=True)
    else:
        x_test, y_test = np.ascontiguousarray(raw.x_train[test_idx]), y[test_idx]
    x_train = np.ascontiguousarray(raw.x_train[train_idx])
    mean, std = _channel_stats(x_train)
    return Splits(
        x_train=torch.from_numpy(x_train),
        y_train=torch.from_numpy(y[train_idx]),
        x_val=torch.from_numpy(np.ascontiguousarray(raw.x_train[val_idx])),
        y_val=torch.from_numpy(y[val_idx]),
        x_test=torch.from_numpy(x_test),
        y_test=torch.from_numpy(y_test),
        classes=tuple(raw.classes),
        mean=mean,
        std=std,
        name=name,
        test_source=TEST_HELD_OUT if held_out else TEST_GIVEN,
    )


# --------------------------------------------------------------------------- save / load


def save_splits(splits: Splits, path: Path) -> None:
    """Write ``splits`` to ``path`` as a plain ``.npz`` (no pickle), atomically.

    Arrays go in as themselves; the metadata is one JSON string in a unicode array named
    ``meta``, so the file loads with ``allow_pickle=False``.  Written through
    :func:`robustprune.atomic.atomic_write`, so a crash or a concurrent reader never sees a
    half-written splits file.  ``test_source`` is not stored (see :class:`Splits`).
    """
    meta = {
        "format": SPLITS_FORMAT,
        "name": splits.name,
        "classes": list(splits.classes),
        "mean": [float(v) for v in splits.mean],
        "std": [float(v) for v in splits.std],
    }
    arrays = {key: getattr(splits, key).detach().cpu().numpy() for key in _ARRAYS}

    def write(tmp: str) -> None:
        # A file object, not the name: np.savez would append ".npz" to the temp name.
        with open(tmp, "wb") as fh:
            np.savez(fh, meta=np.array([json.dumps(meta)]), **arrays)

    atomic_write(path, write)


def load_splits(path: Path) -> Splits:
    """Read a file written by :func:`save_splits`; :class:`DataError` if missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"splits file {path} not found; prepare the dataset first")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: not a splits file (a single .npy array, not an .npz)")
        with loaded as z:
            missing = [k for k in ("meta", *_ARRAYS) if k not in z.files]
            if missing:
                raise DataError(f"{path}: not a splits file (missing {names_list(missing)})")
            arrays = {key: z[key] for key in _ARRAYS}
            meta = json.loads(str(z["meta"].reshape(-1)[0]))
        if not isinstance(meta, dict) or meta.get("format") != SPLITS_FORMAT:
            raise DataError(f"{path}: unknown splits format (expected {SPLITS_FORMAT})")
        classes = tuple(str(c) for c in meta["classes"])
        mean = tuple(float(v) for v in meta["mean"])
        std = tuple(float(v) for v in meta["std"])
        name = str(meta["name"])
    except DataError:
        raise
    except (
        OSError, ValueError, EOFError, KeyError, IndexError, TypeError, zipfile.BadZipFile,
        zlib.error,
    ) as err:  # fmt: skip
        raise DataError(f"cannot read splits file {path}: {one_line(err)}") from err

    shape = arrays["x_train"].shape[1:]
    for part in ("train", "val", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != shape:
            raise DataError(f"{path}: x_{part} must be uint8 {('N', *shape)}, got {x.shape}")
        if y.dtype != np.int64 or y.shape != (x.shape[0],):
            raise DataError(f"{path}: y_{part} must be int64 ({x.shape[0]},), got {y.shape}")
        check_labels(y, len(classes), f"{path}: y_{part}")
    if len(mean) != shape[0] or len(std) != shape[0]:
        raise DataError(f"{path}: mean/std must have one value per channel ({shape[0]})")
    tensors = {key: torch.from_numpy(value) for key, value in arrays.items()}
    return Splits(**tensors, classes=classes, mean=mean, std=std, name=name)
