"""Format readers: one dataset file format in, one :class:`RawDataset` (uint8 NCHW images,
int64 labels) out.

IDX (the MNISTs, plain or ``.gz``), the CIFAR *binary* batches (a folder or the official
``.tar.gz``, read in memory), SVHN's MATLAB files and an image folder; a user ``.npz`` is
read by :mod:`.user_npz`, whose ``np.load`` runs with ``allow_pickle=False``.
Nothing here unpickles: the official CIFAR "python" archives are pickles, so we read the
binary distribution, because a dataset file is data from the internet and must never be
able to execute code.  Every reader checks sizes and headers, so a truncated or swapped
file is a one-line :class:`DataError` naming it, never garbage images.
"""

from __future__ import annotations

import gzip
import struct
import tarfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from robustprune.data.splits import RawDataset, display, names_list, one_line
from robustprune.errors import DataError

if TYPE_CHECKING:
    from PIL import Image


def read_file(path: Path) -> bytes:
    """Read a whole file, transparently gunzipping ``*.gz``; errors name the file."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read {path}: {one_line(err)}") from err


# --------------------------------------------------------------------------- IDX (MNISTs)
# Not torchvision.datasets.mnist.read_image_file/read_label_file: they open() without gunzip,
# fail on bare asserts, and read_label_file skips the length check (strict=False).

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


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
    data = read_file(path)
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


def idx_present(directory: Path) -> bool:
    """Whether ``directory`` holds the four IDX files (each plain or ``.gz``)."""
    return all(_idx_file(directory, base) is not None for base in IDX_FILES)


def _idx_pair(directory: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (as N,1,H,W) and int64 labels of one IDX split, with matching counts."""
    img_path = _idx_file(directory, f"{prefix}-images-idx3-ubyte")
    lbl_path = _idx_file(directory, f"{prefix}-labels-idx1-ubyte")
    assert img_path is not None and lbl_path is not None  # callers check idx_present first
    images = read_idx(img_path, IDX_IMAGES_MAGIC)
    labels = read_idx(lbl_path, IDX_LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{img_path} holds {images.shape[0]} images but {lbl_path} holds "
            f"{labels.shape[0]} labels"
        )
    return images[:, None, :, :], labels.astype(np.int64)


def read_idx_dir(directory: Path, classes: tuple[str, ...]) -> RawDataset:
    """The MNIST-style train and t10k IDX pairs in ``directory``."""
    x_train, y_train = _idx_pair(directory, "train")
    x_test, y_test = _idx_pair(directory, "t10k")
    return RawDataset(x_train, y_train, x_test, y_test, classes, str(directory))


# --------------------------------------------------------------------------- CIFAR binary

_CIFAR_PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR binary distribution keeps its files, and how its records look."""

    archive: str  # the official .tar.gz
    inner: str  # the folder inside it (also accepted extracted)
    train: tuple[str, ...]
    test: str
    names_file: str  # class names, one a line (optional)
    label_bytes: int  # label bytes before each record's pixels
    label_index: int  # which of them is the class
    default_classes: tuple[str, ...]  # used only when the names file is absent

    @property
    def needed(self) -> tuple[str, ...]:
        return (*self.train, self.test)


def _cifar_records(data: bytes, layout: CifarLayout, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Split CIFAR binary records (label byte(s) then 3072 pixel bytes, R, G, B planes).

    The planes are already channel-major 32x32, so a reshape gives NCHW with no transpose.
    """
    record = layout.label_bytes + _CIFAR_PIXELS
    if len(data) == 0 or len(data) % record:
        raise DataError(
            f"{where}: {len(data)} bytes is not a whole number of {record}-byte CIFAR records "
            "(truncated or not the binary version)"
        )
    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    labels = rows[:, layout.label_index].astype(np.int64)
    images = rows[:, layout.label_bytes:].reshape(-1, 3, 32, 32).copy()
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


def _cifar_dir(directory: Path, layout: CifarLayout) -> Path | None:
    """The extracted CIFAR folder: ``directory/inner/`` or ``directory`` itself."""
    for candidate in (directory / layout.inner, directory):
        if all((candidate / name).is_file() for name in layout.needed):
            return candidate
    return None


def tar_members(archive: Path, inner: str, wanted: Sequence[str],
                take: Callable[[str, IO[bytes]], None]) -> None:
    """Hand each wanted regular file ``inner/<name>`` of a tar archive (any compression) to
    ``take(name, stream)``, in one pass over the archive (seeking backwards in a compressed
    stream re-decompresses it).  Names are matched exactly, so a hostile member name (``../x``,
    an absolute path) is never even read; errors become one-line :class:`DataError` s."""
    targets = {f"{inner}/{name}": name for name in wanted}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = targets.get(member.name.removeprefix("./"))
                if name is None or not member.isfile():
                    continue
                fh = tar.extractfile(member)
                if fh is not None:
                    take(name, fh)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read {archive}: {one_line(err)}") from err


def _cifar_members(archive: Path, inner: str, wanted: Sequence[str]) -> dict[str, bytes]:
    """Read the wanted members of a CIFAR ``.tar.gz`` straight into memory (nothing is
    extracted to disk)."""
    found: dict[str, bytes] = {}
    tar_members(archive, inner, wanted, lambda name, fh: found.__setitem__(name, fh.read()))
    return found


def cifar_present(directory: Path, layout: CifarLayout) -> bool:
    """Whether ``directory`` holds the extracted batches or the official archive."""
    return _cifar_dir(directory, layout) is not None or (directory / layout.archive).is_file()


def _cifar_files(directory: Path, layout: CifarLayout) -> tuple[dict[str, bytes], str]:
    """The CIFAR files (needed + names file if there), from a folder or the archive."""
    extracted = _cifar_dir(directory, layout)
    if extracted is not None:
        files = {name: (extracted / name).read_bytes() for name in layout.needed}
        if (extracted / layout.names_file).is_file():
            files[layout.names_file] = (extracted / layout.names_file).read_bytes()
        return files, str(extracted)
    archive = directory / layout.archive
    files = _cifar_members(archive, layout.inner, [*layout.needed, layout.names_file])
    missing = [f"{layout.inner}/{name}" for name in layout.needed if name not in files]
    if missing:
        raise DataError(f"{archive}: missing {names_list(missing)} (not the binary version?)")
    return files, str(archive)


def read_cifar(directory: Path, layout: CifarLayout) -> RawDataset:
    """A CIFAR binary distribution in ``directory`` (extracted or as its ``.tar.gz``)."""
    files, source = _cifar_files(directory, layout)
    parts = [_cifar_records(files[n], layout, f"{source}:{n}") for n in layout.train]
    x_test, y_test = _cifar_records(files[layout.test], layout, f"{source}:{layout.test}")
    classes = _read_names(
        files.get(layout.names_file), layout.default_classes, f"{source}:{layout.names_file}"
    )
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    return RawDataset(x_train, y_train, x_test, y_test, classes, source)


# --------------------------------------------------------------------------- SVHN
# Not torchvision's SVHN: it is the same scipy.io.loadmat read, but re-hashes the whole file
# on every load and fails with a bare RuntimeError and no shape or label checks.

SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN ``*_32x32.mat``: X is (32, 32, 3, N) HWCN and y is (N, 1) with 10 for '0'."""
    import scipy.io  # imported here: only SVHN needs scipy, and it is slow to import

    try:
        mat = scipy.io.loadmat(path, variable_names=("X", "y"))
    except (OSError, ValueError, TypeError, NotImplementedError, EOFError) as err:
        raise DataError(f"cannot read {path} as a MATLAB v5 file: {one_line(err)}") from err
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


def read_svhn_dir(directory: Path, classes: tuple[str, ...]) -> RawDataset:
    """SVHN's cropped-digit train and test ``.mat`` files in ``directory``."""
    x_train, y_train = read_svhn_mat(directory / SVHN_FILES[0])
    x_test, y_test = read_svhn_mat(directory / SVHN_FILES[1])
    return RawDataset(x_train, y_train, x_test, y_test, classes, str(directory))


# --------------------------------------------------------------------------- image folder


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
            f"folder: cannot use {display(root)} as <class>/<image> folders: {one_line(err)}"
        ) from err
    images: list[np.ndarray] = []
    for file, _ in folder.samples:
        try:
            img = folder.loader(file)
        except (OSError, ValueError) as err:
            raise DataError(f"cannot read image {file}: {one_line(err)}") from err
        images.append(pil_to_tensor(img).numpy())
        if images[-1].shape != images[0].shape:
            raise DataError(
                f"folder: {file} is {images[-1].shape} (C,H,W) but {folder.samples[0][0]} is "
                f"{images[0].shape}; resize all images to one size first"
            )
    labels = np.asarray(folder.targets, dtype=np.int64)
    return np.stack(images), labels, tuple(folder.classes)


def read_image_folder(path: Path) -> RawDataset:
    """``path/train/<class>/*`` and, when present, ``path/test/<class>/*`` (same classes and
    image size).  Without ``test/``, ``x_test = y_test = None`` (make_splits holds one out)."""
    train, test = path / "train", path / "test"
    if not train.is_dir():
        raise DataError(
            f"folder: {display(train)} not found; expected {display(path)}train/<class>/*.png "
            f"(and optionally {display(path)}test/<class>/*.png)"
        )
    x_train, y_train, classes = _load_image_split(train)
    if not test.is_dir():
        return RawDataset(x_train, y_train, None, None, classes, str(path))
    x_test, y_test, test_classes = _load_image_split(test)
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
