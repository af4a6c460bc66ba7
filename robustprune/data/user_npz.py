"""The user ``.npz`` reader: arrays ``x``, ``y`` (optionally ``x_test``/``y_test`` and
``classes``) in, one :class:`RawDataset` out.

A user file is the least predictable input: its images may be NHWC or NCHW, its labels a
column vector, its classes numbered with gaps, its test set holding a class the training set
lacks. Each of these is detected and reported as a one-line :class:`DataError` naming the
file and saying how to fix it, never guessed at (a wrong guess scrambles every image or
leaves a class the model cannot learn). The file is read with ``allow_pickle=False``: a
dataset file is data from the internet and must never be able to execute code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from robustprune.data.splits import RawDataset, names_list, one_line
from robustprune.errors import DataError


def _to_nchw(x: np.ndarray, key: str, path: Path) -> np.ndarray:
    """Bring user images to NCHW, detecting the layout from the channel axis.

    Only 1 or 3 channels exist in practice, so the channel axis is whichever of axis 1
    (NCHW) or axis 3 (NHWC) has that size.  When both do (e.g. 3x3 images with 3 channels)
    guessing could silently scramble every image, so that is an error.
    """
    if x.dtype != np.uint8:
        raise DataError(f"{path}: '{key}' must be uint8 pixels 0..255, got {x.dtype}")
    if x.ndim == 3:
        return x[:, None, :, :]
    if x.ndim != 4:
        raise DataError(f"{path}: '{key}' must be (N,H,W), (N,H,W,C) or (N,C,H,W), got {x.shape}")
    first, last = x.shape[1] in (1, 3), x.shape[3] in (1, 3)
    if first and last:
        raise DataError(
            f"{path}: '{key}' has shape {x.shape}: ambiguous layout, both axis 1 and axis 3 "
            "could be channels; store it as (N,C,H,W) with H,W not in (1,3)"
        )
    if last:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    if first:
        return x
    raise DataError(f"{path}: '{key}' has shape {x.shape}: need 1 or 3 channels on axis 1 or 3")


def _npz_labels(y: np.ndarray, key: str, n: int, path: Path) -> np.ndarray:
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: '{key}' must hold integer labels, got {y.dtype}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (n,):
        raise DataError(f"{path}: '{key}' must have shape ({n},), got {y.shape}")
    return y.astype(np.int64)


def _chw(x: np.ndarray) -> str:
    return f"{x.shape[2]}×{x.shape[3]} with {x.shape[1]} channel(s)"


def _check_label_set(y: np.ndarray, y_test: np.ndarray | None, path: Path) -> None:
    """Labels must number the classes 0..K−1, each present in ``y``: the model gets one
    output per label up to the largest, and an output no training example ever targets is a
    class it cannot learn (its test examples would count as errors whatever the method)."""
    present = np.unique(y)
    if len(present) and present[0] < 0:
        raise DataError(f"{path}: 'y' holds the negative label {int(present[0])}; labels "
                        "number the classes 0..K-1")
    if y_test is not None:
        unseen = np.setdiff1d(np.unique(y_test), present)
        if len(unseen):
            k = int(unseen[0])
            raise DataError(
                f"{path}: 'y_test' holds label {k} ({int((y_test == k).sum())} test examples) "
                f"that 'y' never has ('y' has {_label_list(present)}); a model cannot learn a "
                "class without training examples: drop those test examples or add training "
                "examples of that class")
    top = int(present[-1]) if len(present) else -1
    if len(present) != top + 1:
        missing = np.setdiff1d(np.arange(top + 1), present)
        raise DataError(
            f"{path}: 'y' has {len(present)} distinct labels spread over 0..{top} "
            f"({len(missing)} unused, e.g. {_label_list(missing)}); number the classes "
            "0..K-1, e.g. y = np.unique(y, return_inverse=True)[1] (and the same mapping "
            "for y_test)")


def _label_list(labels: np.ndarray, most: int = 5) -> str:
    shown = ", ".join(str(int(v)) for v in labels[:most])
    return shown + (", …" if len(labels) > most else "")


def read_npz(path: Path) -> RawDataset:
    """A user ``.npz``: ``x``, ``y``, optionally ``x_test``/``y_test`` (both or neither) and
    ``classes``.  Without a test set, ``x_test = y_test = None`` (make_splits holds one out)."""
    if not path.is_file():
        raise DataError(
            f"npz: file {path} not found (expected arrays x, y and optionally x_test, y_test)"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {key: z[key] for key in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as err:
        if "pickle" in str(err).lower():
            raise DataError(
                f"{path}: holds pickled data (an object array, or a file that is no .npz "
                "archive, which numpy would read as a pickle); robustprune never unpickles a "
                "file, since loading one can run any code: save plain arrays with "
                "np.savez(path, x=..., y=...)") from err
        raise DataError(f"cannot read {path} as .npz without pickle: {one_line(err)}") from err
    if not isinstance(arrays, dict):  # np.load of a plain .npy returns an array
        raise DataError(f"{path}: a single array, not an .npz archive with x and y")
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DataError(
            f"{path}: missing {names_list(missing)}; an npz dataset needs x and y "
            "(optional: x_test and y_test together, classes)"
        )
    if ("x_test" in arrays) != ("y_test" in arrays):
        have, lack = ("x_test", "y_test") if "x_test" in arrays else ("y_test", "x_test")
        raise DataError(
            f"{path}: has {have} but no {lack}; give both x_test and y_test, or neither to "
            "hold a test set out of x, y (data.test_size)"
        )
    x_train = _to_nchw(arrays["x"], "x", path)
    y_train = _npz_labels(arrays["y"], "y", x_train.shape[0], path)
    x_test = y_test = None
    if "x_test" in arrays:
        x_test = _to_nchw(arrays["x_test"], "x_test", path)
        y_test = _npz_labels(arrays["y_test"], "y_test", x_test.shape[0], path)
        if x_test.shape[1:] != x_train.shape[1:]:
            raise DataError(
                f"{path}: 'x_test' images are {_chw(x_test)} but 'x' images are "
                f"{_chw(x_train)}; both splits need one image size and channel count")
    _check_label_set(y_train, y_test, path)
    if "classes" in arrays:
        names = np.asarray(arrays["classes"]).reshape(-1)
        classes = tuple(c.decode() if isinstance(c, bytes) else str(c) for c in names)
    else:
        top = max(int(y.max(initial=-1)) for y in (y_train, y_test) if y is not None)
        classes = tuple(str(k) for k in range(top + 1))
    return RawDataset(x_train, y_train, x_test, y_test, classes, str(path))
