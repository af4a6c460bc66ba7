"""Datasets: turn a named dataset into canonical train/val/test tensors, and back from disk.

Two stages, kept apart on purpose:

* :func:`load_raw` reads a dataset in its *original* distribution format (IDX for the
  MNISTs, the CIFAR binary batches, SVHN's MATLAB files, a user ``.npz`` or an image folder)
  into one in-memory shape: uint8 images NCHW and int64 labels.  Nothing here unpickles:
  the official CIFAR "python" archives are pickles, so we read the binary distribution,
  and every ``np.load`` runs with ``allow_pickle=False``, because a dataset file is data
  from the internet and must never be able to execute code.
* :func:`make_splits` carves a stratified, seeded validation set out of the training set
  (the test set is never touched for model selection), and :func:`save_splits` /
  :func:`load_splits` store the result as one plain ``.npz`` so that every later stage
  reads the exact same examples.

Built-in datasets are looked for in ``data/raw/<name>/`` first, then in a copy installed
by the operating system (Debian ships Fashion-MNIST), and only then downloaded from the
official URL.  Every download is checked against a pinned SHA-256 before it is used:
a dataset that silently changes would make results irreproducible.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import struct
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "DATASETS",
    "DOWNLOADS",
    "SYSTEM_DIRS",
    "DataError",
    "RawDataset",
    "Splits",
    "load_raw",
    "load_splits",
    "make_splits",
    "save_splits",
]

DATASETS: tuple[str, ...] = (
    "fashion-mnist",
    "mnist",
    "cifar10",
    "cifar100",
    "svhn",
    "npz",
    "folder",
)
"""Every name :func:`load_raw` accepts; the last two read a file or folder given by ``path``."""

DOWNLOAD_TIMEOUT_S = 30.0
"""Socket timeout for downloads: long enough for a slow mirror, short enough that an
offline machine fails in seconds instead of hanging a pipeline."""

SPLITS_FORMAT = "robustprune.splits/1"
"""Tag stored in every splits file, so that a future layout change is detected, not misread."""


class DataError(Exception):
    """A dataset could not be found, fetched or parsed.

    The message is one line meant for the user: it says what was looked for, where, and
    how to get it, so the command line can print it as is instead of a traceback.
    """


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True, eq=False)
class RawDataset:
    """A dataset as distributed: train and test sets, not yet split.

    ``eq=False`` because arrays do not compare to a single bool; compare fields instead.
    """

    x_train: np.ndarray  # uint8 [N, C, H, W]
    y_train: np.ndarray  # int64 [N]
    x_test: np.ndarray  # uint8 [M, C, H, W]
    y_test: np.ndarray  # int64 [M]
    classes: tuple[str, ...]
    source: str  # where the data came from (a path or a URL), recorded for provenance


@dataclass(frozen=True, eq=False)
class Splits:
    """Canonical train/val/test tensors plus the metadata later stages need.

    Images stay uint8 so that a split costs a quarter of the float32 memory; ``mean`` and
    ``std`` (per channel, of ``x_train / 255``) are what a model's normalisation layer uses,
    computed on the training part only so that no validation or test statistic leaks in.
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

    @property
    def num_classes(self) -> int:
        """Number of classes, i.e. the width of a classifier's output."""
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one image, (C, H, W)."""
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))


# --------------------------------------------------------------------------- sources

_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension

_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
MNIST_CLASSES = tuple(str(d) for d in range(10))
SVHN_CLASSES = MNIST_CLASSES
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip
"""Fallback names, in label order, used only when an archive lacks its names file."""


@dataclass(frozen=True)
class Remote:
    """One official file: where to fetch it, what to call it, and what it must hash to."""

    filename: str
    url: str
    sha256: str


_FMNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"

DOWNLOADS: dict[str, tuple[Remote, ...]] = {
    # Fashion-MNIST, official Zalando S3 bucket.  Digests computed here from Debian's
    # dataset-fashion-mnist 0.0~git20200523.55506a9-1 (/usr/share/datasets/fashion-mnist):
    # Debian re-gzipped the files without the name field, so the original gzip header
    # (FNAME + mtime 2017-08-31) was restored and the result matched the official MD5s of
    # the zalandoresearch/fashion-mnist README byte for byte; the SHA-256 of those bytes
    # equals tensorflow/datasets tensorflow_datasets/url_checksums/fashion_mnist.txt.
    "fashion-mnist": (
        Remote("train-images-idx3-ubyte.gz", _FMNIST_URL + "train-images-idx3-ubyte.gz",
               "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        Remote("train-labels-idx1-ubyte.gz", _FMNIST_URL + "train-labels-idx1-ubyte.gz",
               "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        Remote("t10k-images-idx3-ubyte.gz", _FMNIST_URL + "t10k-images-idx3-ubyte.gz",
               "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        Remote("t10k-labels-idx1-ubyte.gz", _FMNIST_URL + "t10k-labels-idx1-ubyte.gz",
               "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    ),
    # MNIST, the mirror torchvision downloads from.  SHA-256 from tensorflow/datasets
    # url_checksums/mnist.txt (listed there for the identical files on the
    # storage.googleapis.com/cvdf-datasets mirror, same sizes 9912422/28881/1648877/4542;
    # torchvision pins both mirrors and yann.lecun.com to the same MD5s).
    "mnist": (
        Remote("train-images-idx3-ubyte.gz", _MNIST_URL + "train-images-idx3-ubyte.gz",
               "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        Remote("train-labels-idx1-ubyte.gz", _MNIST_URL + "train-labels-idx1-ubyte.gz",
               "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        Remote("t10k-images-idx3-ubyte.gz", _MNIST_URL + "t10k-images-idx3-ubyte.gz",
               "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        Remote("t10k-labels-idx1-ubyte.gz", _MNIST_URL + "t10k-labels-idx1-ubyte.gz",
               "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    ),
    # CIFAR binary versions.  SHA-256 from tensorflow/datasets url_checksums/cifar10.txt
    # and url_checksums/cifar100.txt (same URLs, sizes 170052171 and 168513733).
    "cifar10": (
        Remote("cifar-10-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
               "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"),
    ),
    "cifar100": (
        Remote("cifar-100-binary.tar.gz",
               "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
               "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec"),
    ),
    # SVHN cropped digits.  SHA-256 from tensorflow/datasets url_checksums/svhn_cropped.txt
    # (same URLs, sizes 182040794 and 64275384).
    "svhn": (
        Remote("train_32x32.mat", _SVHN_URL + "train_32x32.mat",
               "435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8"),
        Remote("test_32x32.mat", _SVHN_URL + "test_32x32.mat",
               "cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b"),
    ),
}  # fmt: skip
"""Official URL and pinned SHA-256 of every file a built-in dataset may download."""

SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}
"""Read-only copies installed by the operating system, tried before any download."""

_APT_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}

_CIFAR10_DIR = "cifar-10-batches-bin"
_CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_CIFAR10_TEST = "test_batch.bin"
_CIFAR10_META = "batches.meta.txt"
_CIFAR100_DIR = "cifar-100-binary"
_CIFAR100_TRAIN = "train.bin"
_CIFAR100_TEST = "test.bin"
_CIFAR100_META = "fine_label_names.txt"
_CIFAR_PIXELS = 3 * 32 * 32


# --------------------------------------------------------------------------- small helpers


def _one_line(err: BaseException | str) -> str:
    """Collapse an error text to one line, because DataError messages are printed as is."""
    text = " ".join(str(err).split())
    if not text and isinstance(err, BaseException):
        text = type(err).__name__
    return text


def _display(directory: Path) -> str:
    """A directory as the user should read it in a message: with its trailing slash."""
    return str(directory).rstrip("/") + "/"


def _names_list(names: Sequence[str]) -> str:
    """'a, b and c': file lists in messages."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _read_file(path: Path) -> bytes:
    """Read a whole file, transparently gunzipping ``*.gz``; errors name the file."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read {path}: {_one_line(err)}") from err


# --------------------------------------------------------------------------- IDX (MNISTs)


def _idx_file(directory: Path, base: str) -> Path | None:
    """The file for IDX ``base`` in ``directory``, uncompressed or ``.gz``, if present."""
    for candidate in (directory / base, directory / f"{base}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one IDX file (the MNIST format) and return its uint8 array.

    The header is a big-endian magic number (``0x0000 08 nd``: unsigned bytes, ``nd``
    dimensions) followed by ``nd`` big-endian uint32 sizes.  The magic, the dimensions and
    the payload length are all checked so that a truncated download or a swapped file
    (labels where images belong) is reported instead of producing garbage images.
    """
    data = _read_file(path)
    if len(data) < 4:
        raise DataError(f"{path}: not an IDX file (only {len(data)} bytes)")
    (found,) = struct.unpack(">i", data[:4])
    if found != magic:
        raise DataError(f"{path}: bad IDX magic number {found}, expected {magic}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != expected:
        raise DataError(
            f"{path}: IDX payload is {len(data) - header} bytes, dimensions {dims} "
            f"need {expected} (truncated or corrupt file)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def _idx_present(directory: Path) -> bool:
    return all(_idx_file(directory, base) is not None for base in _MNIST_FILES)


def _idx_pair(directory: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (as N,1,H,W) and int64 labels of one IDX split, with matching counts."""
    img_path = _idx_file(directory, f"{prefix}-images-idx3-ubyte")
    lbl_path = _idx_file(directory, f"{prefix}-labels-idx1-ubyte")
    assert img_path is not None and lbl_path is not None  # callers check _idx_present first
    images = read_idx(img_path, _IDX_IMAGES_MAGIC)
    labels = read_idx(lbl_path, _IDX_LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{img_path} holds {images.shape[0]} images but {lbl_path} holds "
            f"{labels.shape[0]} labels"
        )
    return images[:, None, :, :], labels.astype(np.int64)


def _parse_idx(classes: tuple[str, ...]) -> Callable[[Path], RawDataset]:
    def parse(directory: Path) -> RawDataset:
        x_train, y_train = _idx_pair(directory, "train")
        x_test, y_test = _idx_pair(directory, "t10k")
        return RawDataset(x_train, y_train, x_test, y_test, classes, str(directory))

    return parse


# --------------------------------------------------------------------------- CIFAR binary


def _cifar_records(
    data: bytes, label_bytes: int, label_index: int, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Split CIFAR binary records (label byte(s) then 3072 pixel bytes, R, G, B planes).

    The planes are already channel-major 32x32, so a reshape gives NCHW with no transpose.
    """
    record = label_bytes + _CIFAR_PIXELS
    if len(data) == 0 or len(data) % record:
        raise DataError(
            f"{where}: {len(data)} bytes is not a whole number of {record}-byte CIFAR records "
            "(truncated or not the binary version)"
        )
    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    labels = rows[:, label_index].astype(np.int64)
    images = rows[:, label_bytes:].reshape(-1, 3, 32, 32).copy()
    return images, labels


def _read_names(data: bytes | None, default: tuple[str, ...], where: str) -> tuple[str, ...]:
    """Class names from a CIFAR ``*.txt`` names file (one per line), else the defaults."""
    if data is None:
        return default
    names = tuple(line.strip() for line in data.decode("utf-8", "replace").splitlines())
    names = tuple(n for n in names if n)
    if len(names) != len(default):
        raise DataError(f"{where}: expected {len(default)} class names, found {len(names)}")
    return names


def _cifar_dir(directory: Path, inner: str, needed: Sequence[str]) -> Path | None:
    """The extracted CIFAR folder: ``directory/inner/`` or ``directory`` itself."""
    for candidate in (directory / inner, directory):
        if all((candidate / name).is_file() for name in needed):
            return candidate
    return None


def _cifar_members(archive: Path, inner: str, wanted: Sequence[str]) -> dict[str, bytes]:
    """Read the wanted members of a CIFAR ``.tar.gz`` straight into memory.

    Nothing is extracted to disk, so a hostile member name (``../x``, an absolute path) cannot
    write anywhere; names are matched exactly, and only regular files are read.  One pass
    over the archive, because seeking backwards in a gzip stream re-decompresses it.
    """
    targets = {f"{inner}/{name}": name for name in wanted}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = targets.get(member.name.removeprefix("./"))
                if name is None or not member.isfile():
                    continue
                fh = tar.extractfile(member)
                if fh is not None:
                    found[name] = fh.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read {archive}: {_one_line(err)}") from err
    return found


def _cifar_source(
    directory: Path, archive_name: str, inner: str, needed: Sequence[str], optional: str
) -> tuple[dict[str, bytes], str]:
    """The CIFAR files (``needed`` + ``optional`` if there), from a folder or the archive."""
    extracted = _cifar_dir(directory, inner, needed)
    if extracted is not None:
        files = {name: (extracted / name).read_bytes() for name in needed}
        if (extracted / optional).is_file():
            files[optional] = (extracted / optional).read_bytes()
        return files, str(extracted)
    archive = directory / archive_name
    files = _cifar_members(archive, inner, [*needed, optional])
    missing = [f"{inner}/{name}" for name in needed if name not in files]
    if missing:
        raise DataError(f"{archive}: missing {_names_list(missing)} (not the binary version?)")
    return files, str(archive)


def _cifar10_present(directory: Path) -> bool:
    needed = (*_CIFAR10_TRAIN, _CIFAR10_TEST)
    return (
        _cifar_dir(directory, _CIFAR10_DIR, needed) is not None
        or (directory / "cifar-10-binary.tar.gz").is_file()
    )


def _parse_cifar10(directory: Path) -> RawDataset:
    needed = (*_CIFAR10_TRAIN, _CIFAR10_TEST)
    files, source = _cifar_source(
        directory, "cifar-10-binary.tar.gz", _CIFAR10_DIR, needed, _CIFAR10_META
    )
    parts = [_cifar_records(files[n], 1, 0, f"{source}:{n}") for n in _CIFAR10_TRAIN]
    x_test, y_test = _cifar_records(files[_CIFAR10_TEST], 1, 0, f"{source}:{_CIFAR10_TEST}")
    classes = _read_names(files.get(_CIFAR10_META), CIFAR10_CLASSES, f"{source}:{_CIFAR10_META}")
    return RawDataset(
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        x_test,
        y_test,
        classes,
        source,
    )


def _cifar100_present(directory: Path) -> bool:
    needed = (_CIFAR100_TRAIN, _CIFAR100_TEST)
    return (
        _cifar_dir(directory, _CIFAR100_DIR, needed) is not None
        or (directory / "cifar-100-binary.tar.gz").is_file()
    )


def _parse_cifar100(directory: Path) -> RawDataset:
    files, source = _cifar_source(
        directory,
        "cifar-100-binary.tar.gz",
        _CIFAR100_DIR,
        (_CIFAR100_TRAIN, _CIFAR100_TEST),
        _CIFAR100_META,
    )
    # Records are <coarse label><fine label><pixels>; we classify the 100 fine labels.
    x_train, y_train = _cifar_records(files[_CIFAR100_TRAIN], 2, 1, f"{source}:train.bin")
    x_test, y_test = _cifar_records(files[_CIFAR100_TEST], 2, 1, f"{source}:test.bin")
    classes = _read_names(files.get(_CIFAR100_META), CIFAR100_CLASSES, f"{source}:{_CIFAR100_META}")
    return RawDataset(x_train, y_train, x_test, y_test, classes, source)


# --------------------------------------------------------------------------- SVHN


def _svhn_present(directory: Path) -> bool:
    return all((directory / r.filename).is_file() for r in DOWNLOADS["svhn"])


def _read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN ``*_32x32.mat``: X is (32, 32, 3, N) HWCN and y is (N, 1) with 10 for '0'."""
    import scipy.io  # imported here: only SVHN needs scipy, and it is slow to import

    try:
        mat = scipy.io.loadmat(path, variable_names=("X", "y"))
    except (OSError, ValueError, TypeError, NotImplementedError, EOFError) as err:
        raise DataError(f"cannot read {path} as a MATLAB v5 file: {_one_line(err)}") from err
    if "X" not in mat or "y" not in mat:
        raise DataError(f"{path}: expected variables X and y, found {sorted(mat)}")
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"])
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.dtype != np.uint8:
        raise DataError(f"{path}: X must be uint8 (32, 32, 3, N), got {x.dtype} {x.shape}")
    y = y.reshape(-1)
    if y.shape[0] != x.shape[3] or not np.all((y >= 1) & (y <= 10) & (y == np.round(y))):
        raise DataError(f"{path}: y must hold {x.shape[3]} labels in 1..10")
    labels = y.astype(np.int64)
    labels[labels == 10] = 0  # SVHN stores digit 0 as label 10 (MATLAB's 1-based habit)
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), labels


def _parse_svhn(directory: Path) -> RawDataset:
    x_train, y_train = _read_svhn_mat(directory / "train_32x32.mat")
    x_test, y_test = _read_svhn_mat(directory / "test_32x32.mat")
    return RawDataset(x_train, y_train, x_test, y_test, SVHN_CLASSES, str(directory))


# --------------------------------------------------------------------------- npz and folder


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


def _load_npz(path: Path) -> RawDataset:
    if not path.is_file():
        raise DataError(f"npz: file {path} not found (expected x, y, x_test, y_test arrays)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {key: z[key] for key in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as err:
        raise DataError(f"cannot read {path} as .npz without pickle: {_one_line(err)}") from err
    missing = [k for k in ("x", "y", "x_test", "y_test") if k not in arrays]
    if missing:
        raise DataError(
            f"{path}: missing {_names_list(missing)}; an npz dataset needs x, y and an explicit "
            "test set x_test, y_test (optional: classes)"
        )
    x_train = _to_nchw(arrays["x"], "x", path)
    x_test = _to_nchw(arrays["x_test"], "x_test", path)
    y_train = _npz_labels(arrays["y"], "y", x_train.shape[0], path)
    y_test = _npz_labels(arrays["y_test"], "y_test", x_test.shape[0], path)
    if "classes" in arrays:
        names = np.asarray(arrays["classes"]).reshape(-1)
        classes = tuple(c.decode() if isinstance(c, bytes) else str(c) for c in names)
    else:
        top = max(int(y_train.max(initial=-1)), int(y_test.max(initial=-1)))
        classes = tuple(str(k) for k in range(top + 1))
    return RawDataset(x_train, y_train, x_test, y_test, classes, str(path))


def _pil_loader(path: str) -> Image.Image:
    """Open an image keeping grayscale as one channel (torchvision's default forces RGB)."""
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        return img.convert("L") if img.mode in ("1", "L", "I", "I;16", "F") else img.convert("RGB")


def _load_image_split(root: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from torchvision.datasets import ImageFolder
    from torchvision.transforms.functional import pil_to_tensor

    try:
        folder = ImageFolder(str(root), loader=_pil_loader)
    except (FileNotFoundError, OSError) as err:
        raise DataError(
            f"folder: cannot use {_display(root)} as <class>/<image> folders: {_one_line(err)}"
        ) from err
    images: list[np.ndarray] = []
    for file, _ in folder.samples:
        try:
            img = folder.loader(file)
        except (OSError, ValueError) as err:
            raise DataError(f"cannot read image {file}: {_one_line(err)}") from err
        images.append(pil_to_tensor(img).numpy())
        if images[-1].shape != images[0].shape:
            raise DataError(
                f"folder: {file} is {images[-1].shape} (C,H,W) but {folder.samples[0][0]} is "
                f"{images[0].shape}; resize all images to one size first"
            )
    labels = np.asarray(folder.targets, dtype=np.int64)
    return np.stack(images), labels, tuple(folder.classes)


def _load_folder(path: Path) -> RawDataset:
    for part in ("train", "test"):
        if not (path / part).is_dir():
            raise DataError(
                f"folder: {_display(path / part)} not found; expected {_display(path)}train/"
                f"<class>/*.png and {_display(path)}test/<class>/*.png"
            )
    x_train, y_train, classes = _load_image_split(path / "train")
    x_test, y_test, test_classes = _load_image_split(path / "test")
    if classes != test_classes:
        raise DataError(
            f"folder: train classes {list(classes)} differ from test classes {list(test_classes)}"
        )
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"folder: train images are {x_train.shape[1:]} (C,H,W) but test images are "
            f"{x_test.shape[1:]}"
        )
    return RawDataset(x_train, y_train, x_test, y_test, classes, str(path))


# --------------------------------------------------------------------------- downloads


def download(url: str, dest: Path, sha256: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Fetch ``url`` to ``dest`` only if its bytes hash to ``sha256``.

    The body is streamed to a temporary file next to ``dest`` and renamed into place after
    the digest checks out, so ``dest`` never exists half-written or unverified and an
    interrupted run leaves nothing that a later run would trust.  Network failures raise
    the underlying ``OSError``/``HTTPException`` (the caller words the message); a digest
    mismatch raises :class:`DataError` naming both digests, after deleting the bad bytes.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != sha256.lower():
            raise DataError(
                f"SHA-256 mismatch for {dest.name} downloaded from {url}: expected {sha256}, "
                f"got {actual}; the file was deleted (corrupt or tampered download), retry or "
                f"put a verified copy in {_display(dest.parent)}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _have(directory: Path, remote: Remote) -> bool:
    """Whether ``directory`` already holds ``remote`` (gzipped files also count gunzipped)."""
    names = {remote.filename, remote.filename.removesuffix(".gz")}
    return any((directory / n).is_file() for n in names)


def _fetch_missing(name: str, directory: Path) -> str:
    """Download the official files of ``name`` that ``directory`` lacks; return the source."""
    remotes = DOWNLOADS[name]
    for remote in remotes:
        if not _have(directory, remote):
            download(remote.url, directory / remote.filename, remote.sha256)
    if len(remotes) == 1:
        return remotes[0].url
    folders = {r.url[: r.url.rfind("/") + 1] for r in remotes}
    return folders.pop() if len(folders) == 1 else " ".join(r.url for r in remotes)


def _network_reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return _one_line(err.reason)
    return _one_line(err)


# --------------------------------------------------------------------------- load_raw


@dataclass(frozen=True)
class _Builtin:
    """How to recognise and parse one built-in dataset in a directory."""

    present: Callable[[Path], bool]
    parse: Callable[[Path], RawDataset]
    wanted: str  # what to put in the folder, for messages


_BUILTINS: dict[str, _Builtin] = {
    "fashion-mnist": _Builtin(
        _idx_present,
        _parse_idx(FASHION_MNIST_CLASSES),
        "the 4 IDX files " + _names_list([f"{b}[.gz]" for b in _MNIST_FILES]),
    ),
    "mnist": _Builtin(
        _idx_present,
        _parse_idx(MNIST_CLASSES),
        "the 4 IDX files " + _names_list([f"{b}[.gz]" for b in _MNIST_FILES]),
    ),
    "cifar10": _Builtin(
        _cifar10_present,
        _parse_cifar10,
        f"cifar-10-binary.tar.gz (or its extracted {_CIFAR10_DIR}/)",
    ),
    "cifar100": _Builtin(
        _cifar100_present,
        _parse_cifar100,
        f"cifar-100-binary.tar.gz (or its extracted {_CIFAR100_DIR}/)",
    ),
    "svhn": _Builtin(_svhn_present, _parse_svhn, "train_32x32.mat and test_32x32.mat"),
}


def load_raw(
    name: str, path: str = "", raw_root: Path = Path("data/raw"), download: bool = True
) -> RawDataset:
    """Read dataset ``name`` in its original format.

    Built-in datasets are looked for, in order, in ``raw_root/<name>/`` (or ``path`` when
    given), in the system copies listed in :data:`SYSTEM_DIRS`, and finally downloaded
    (when ``download`` is true) from :data:`DOWNLOADS` into ``raw_root/<name>/`` (or
    ``path``), checked against the pinned SHA-256.  ``"npz"`` reads the ``.npz`` file and
    ``"folder"`` the ``train/`` + ``test/`` image folders at ``path``.

    Raises :class:`DataError` with a one-line explanation when nothing usable is found.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name in ("npz", "folder"):
        if not path:
            what = (
                "a .npz file with x, y, x_test, y_test"
                if name == "npz"
                else ("a directory with train/<class>/ and test/<class>/ images")
            )
            raise DataError(f"{name}: a path is required ({what})")
        raw = _load_npz(Path(path)) if name == "npz" else _load_folder(Path(path))
        return _checked(raw, name)

    spec = _BUILTINS[name]
    local = Path(path) if path else Path(raw_root) / name
    system = SYSTEM_DIRS.get(name, ())
    for directory in (local, *system):
        if spec.present(directory):
            return _checked(spec.parse(directory), name)

    looked = _display(local) + "".join(f" or {d}" for d in system)
    hint = f"put {spec.wanted} in {_display(local)}"
    if name in _APT_PACKAGES:
        hint += f" (or: apt-get install {_APT_PACKAGES[name]})"
    if not download:
        raise DataError(f"{name}: not found in {looked}, and downloading is disabled; {hint}")
    try:
        source = _fetch_missing(name, local)
    except (OSError, http.client.HTTPException, ValueError) as err:
        # Files are fetched in order and each lands only once verified, so the one that
        # failed is the first still missing.
        url = next(r.url for r in DOWNLOADS[name] if not _have(local, r))
        raise DataError(
            f"{name}: not found in {looked}, and download from {url} failed "
            f"({_network_reason(err)}); {hint}"
        ) from err
    raw = spec.parse(local)
    return _checked(
        RawDataset(raw.x_train, raw.y_train, raw.x_test, raw.y_test, raw.classes, source), name
    )


def _checked(raw: RawDataset, name: str) -> RawDataset:
    """Enforce the RawDataset contract once, whatever the source format."""
    for split in ("train", "test"):
        x, y = getattr(raw, f"x_{split}"), getattr(raw, f"y_{split}")
        if x.dtype != np.uint8 or x.ndim != 4:
            raise DataError(f"{name}: {split} images must be uint8 NCHW, got {x.dtype} {x.shape}")
        if y.dtype != np.int64 or y.shape != (x.shape[0],):
            raise DataError(f"{name}: {split} needs {x.shape[0]} int64 labels, got {y.shape}")
        if x.shape[0] == 0:
            raise DataError(f"{name}: the {split} set is empty ({raw.source})")
    if raw.x_train.shape[1:] != raw.x_test.shape[1:]:
        raise DataError(
            f"{name}: train images are {raw.x_train.shape[1:]} but test images are "
            f"{raw.x_test.shape[1:]} (C,H,W)"
        )
    _check_labels(raw.y_train, len(raw.classes), f"{name} train labels ({raw.source})")
    _check_labels(raw.y_test, len(raw.classes), f"{name} test labels ({raw.source})")
    return raw


def _check_labels(y: np.ndarray, num_classes: int, what: str) -> None:
    if y.size and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise DataError(
            f"{what} span {int(y.min())}..{int(y.max())}, outside 0..{num_classes - 1} "
            f"for {num_classes} classes"
        )


# --------------------------------------------------------------------------- splits


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


def make_splits(raw: RawDataset, name: str, val_size: int, train_size: int, seed: int) -> Splits:
    """Hold out a stratified validation set from the training data and build :class:`Splits`.

    ``val_size`` examples are drawn from the training set with class proportions preserved
    (each class within one example of proportional) by ``numpy.random.default_rng(seed)``,
    so a seed always yields the same split.  Of the rest, ``train_size == 0`` keeps all;
    otherwise a class-balanced subset of exactly ``train_size`` examples is drawn (balanced
    so small-data runs are not dominated by the frequent classes).  The test set is kept
    whole.  Labels outside ``[0, len(classes))`` raise :class:`DataError`.
    """
    num_classes = len(raw.classes)
    if num_classes == 0:
        raise DataError(f"{name}: the dataset has no classes")
    _check_labels(np.asarray(raw.y_train), num_classes, f"{name} train labels")
    _check_labels(np.asarray(raw.y_test), num_classes, f"{name} test labels")
    n = int(raw.y_train.shape[0])
    if raw.x_train.shape[0] != n or raw.x_test.shape[0] != raw.y_test.shape[0]:
        raise DataError(f"{name}: image and label counts differ")
    if val_size < 0 or train_size < 0:
        raise DataError(f"{name}: val_size and train_size must be >= 0")
    if val_size >= n:
        raise DataError(f"{name}: val_size={val_size} leaves no training data out of {n}")

    rng = np.random.default_rng(seed)
    y = np.asarray(raw.y_train, dtype=np.int64)
    counts = np.bincount(y, minlength=num_classes)
    val_idx = _sample_per_class(y, _proportional_quota(counts, val_size), rng)
    rest = np.setdiff1d(np.arange(n), val_idx, assume_unique=True)
    if train_size:
        if train_size > rest.size:
            raise DataError(
                f"{name}: train_size={train_size} is larger than the {rest.size} training "
                f"examples left after holding out val_size={val_size}"
            )
        available = np.bincount(y[rest], minlength=num_classes)
        chosen = _sample_per_class(y[rest], _balanced_quota(available, train_size), rng)
        train_idx = rest[chosen]
    else:
        train_idx = rest

    x_train = np.ascontiguousarray(raw.x_train[train_idx])
    mean, std = _channel_stats(x_train)
    return Splits(
        x_train=torch.from_numpy(x_train),
        y_train=torch.from_numpy(y[train_idx]),
        x_val=torch.from_numpy(np.ascontiguousarray(raw.x_train[val_idx])),
        y_val=torch.from_numpy(y[val_idx]),
        x_test=torch.from_numpy(np.array(raw.x_test, dtype=np.uint8, copy=True)),
        y_test=torch.from_numpy(np.array(raw.y_test, dtype=np.int64, copy=True)),
        classes=tuple(raw.classes),
        mean=mean,
        std=std,
        name=name,
    )


_ARRAYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def save_splits(splits: Splits, path: Path) -> None:
    """Write ``splits`` to ``path`` as a plain ``.npz`` (no pickle), atomically.

    Arrays go in as themselves; the metadata is one JSON string in a unicode array named
    ``meta``, so the file loads with ``allow_pickle=False``.  The file is written to a
    temporary name in the same directory and renamed over ``path``, so a crash or a
    concurrent reader never sees a half-written splits file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": SPLITS_FORMAT,
        "name": splits.name,
        "classes": list(splits.classes),
        "mean": [float(v) for v in splits.mean],
        "std": [float(v) for v in splits.std],
    }
    arrays = {key: getattr(splits, key).detach().cpu().numpy() for key in _ARRAYS}
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, meta=np.array([json.dumps(meta)]), **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
                raise DataError(f"{path}: not a splits file (missing {_names_list(missing)})")
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
        raise DataError(f"cannot read splits file {path}: {_one_line(err)}") from err

    shape = arrays["x_train"].shape[1:]
    for part in ("train", "val", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != shape:
            raise DataError(f"{path}: x_{part} must be uint8 {('N', *shape)}, got {x.shape}")
        if y.dtype != np.int64 or y.shape != (x.shape[0],):
            raise DataError(f"{path}: y_{part} must be int64 ({x.shape[0]},), got {y.shape}")
        _check_labels(y, len(classes), f"{path}: y_{part}")
    if len(mean) != shape[0] or len(std) != shape[0]:
        raise DataError(f"{path}: mean/std must have one value per channel ({shape[0]})")
    tensors = {key: torch.from_numpy(value) for key, value in arrays.items()}
    return Splits(**tensors, classes=classes, mean=mean, std=std, name=name)
