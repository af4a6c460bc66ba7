"""Where each dataset comes from: one entry per ``data.name``, each knowing how to load itself.

Built-in datasets are looked for in ``data/raw/<name>/`` (or ``data.path``) first, then in a
copy installed by the operating system (Debian ships Fashion-MNIST), and only then downloaded
from the official URL.  Every download is checked against a pinned SHA-256 before it is used:
a dataset that silently changes would make results irreproducible.  A user dataset (``npz``,
``folder``) is read from ``data.path`` only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar

from robustprune.atomic import atomic_write
from robustprune.data.readers import (
    IDX_FILES,
    SVHN_FILES,
    CifarLayout,
    cifar_present,
    idx_present,
    read_cifar,
    read_idx_dir,
    read_image_folder,
    read_svhn_dir,
)
from robustprune.data.splits import RawDataset, display, names_list, one_line
from robustprune.data.user_npz import read_npz
from robustprune.errors import DataError

DOWNLOAD_TIMEOUT_S = 30.0
"""Socket timeout for downloads: long enough for a slow mirror, short enough that an
offline machine fails in seconds instead of hanging a pipeline."""

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
"""CIFAR fallback names, in label order, used only when an archive lacks its names file."""

CIFAR10_LAYOUT = CifarLayout(
    "cifar-10-binary.tar.gz", "cifar-10-batches-bin",
    tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin", "batches.meta.txt",
    label_bytes=1, label_index=0, default_classes=CIFAR10_CLASSES,
)  # fmt: skip
CIFAR100_LAYOUT = CifarLayout(
    "cifar-100-binary.tar.gz", "cifar-100-binary", ("train.bin",), "test.bin",
    "fine_label_names.txt",
    # Records are <coarse label><fine label><pixels>; we classify the 100 fine labels.
    label_bytes=2, label_index=1, default_classes=CIFAR100_CLASSES,
)  # fmt: skip


@dataclass(frozen=True)
class Remote:
    """One official file: where to fetch it, what to call it, and what it must hash to."""

    filename: str
    url: str
    sha256: str


def _idx_remotes(base_url: str, sha256s: tuple[str, str, str, str]) -> tuple[Remote, ...]:
    """The four gzipped IDX files of an MNIST-format dataset under ``base_url``, in the order
    train images, train labels, test images, test labels."""
    names = [f"{base}.gz" for base in IDX_FILES]
    return tuple(Remote(n, base_url + n, h) for n, h in zip(names, sha256s, strict=True))


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
    "fashion-mnist": _idx_remotes(_FMNIST_URL, (
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    )),
    # MNIST, the mirror torchvision downloads from.  SHA-256 from tensorflow/datasets
    # url_checksums/mnist.txt (listed there for the identical files on the
    # storage.googleapis.com/cvdf-datasets mirror, same sizes 9912422/28881/1648877/4542;
    # torchvision pins both mirrors and yann.lecun.com to the same MD5s).
    "mnist": _idx_remotes(_MNIST_URL, (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    )),
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


# --------------------------------------------------------------------------- downloads


def download(url: str, dest: Path, sha256: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Fetch ``url`` to ``dest`` only if its bytes hash to ``sha256``.

    The body is streamed to a temporary file next to ``dest`` and renamed into place after
    the digest checks out (:func:`robustprune.atomic.atomic_write`), so ``dest`` never exists
    half-written or unverified and an interrupted run leaves nothing that a later run would
    trust.  Network failures raise the underlying ``OSError``/``HTTPException`` (the caller
    words the message); a digest mismatch raises :class:`DataError` naming both digests,
    after deleting the bad bytes.
    """

    def fetch(tmp: str) -> None:
        digest = hashlib.sha256()
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != sha256.lower():
            raise DataError(
                f"SHA-256 mismatch for {dest.name} downloaded from {url}: expected {sha256}, "
                f"got {actual}; the file was deleted (corrupt or tampered download), retry or "
                f"put a verified copy in {display(dest.parent)}"
            )

    atomic_write(dest, fetch)
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
        return one_line(err.reason)
    return one_line(err)


# --------------------------------------------------------------------------- the entries


@dataclass(frozen=True)
class Builtin:
    """A built-in dataset: found locally, in a system copy, or downloaded and verified."""

    name: str
    present: Callable[[Path], bool]  # whether a directory holds it
    read: Callable[[Path], RawDataset]  # read it from that directory
    wanted: str  # what to put in the folder, for messages
    apt_package: str = ""  # the OS package that installs a system copy, if any
    needs_path: ClassVar[bool] = False

    def load(self, path: str, raw_root: Path, download: bool) -> RawDataset:
        """From ``path`` (else ``raw_root/<name>/``), a :data:`SYSTEM_DIRS` copy, or
        (when ``download``) the :data:`DOWNLOADS` into that first folder."""
        local = Path(path) if path else Path(raw_root) / self.name
        system = SYSTEM_DIRS.get(self.name, ())
        for directory in (local, *system):
            if self.present(directory):
                return self.read(directory)

        looked = display(local) + "".join(f" or {d}" for d in system)
        hint = f"put {self.wanted} in {display(local)}"
        if self.apt_package:
            hint += f" (or: apt-get install {self.apt_package})"
        if not download:
            raise DataError(
                f"{self.name}: not found in {looked}, and downloading is disabled; {hint}"
            )
        try:
            source = _fetch_missing(self.name, local)
        except (OSError, http.client.HTTPException, ValueError) as err:
            # Files are fetched in order and each lands only once verified, so the one that
            # failed is the first still missing.
            url = next(r.url for r in DOWNLOADS[self.name] if not _have(local, r))
            raise DataError(
                f"{self.name}: not found in {looked}, and download from {url} failed "
                f"({_network_reason(err)}); {hint}"
            ) from err
        return dataclasses.replace(self.read(local), source=source)


@dataclass(frozen=True)
class UserPath:
    """A user's dataset, read from ``data.path`` only (never downloaded)."""

    name: str
    read: Callable[[Path], RawDataset]
    wanted: str  # what ``path`` must be, for messages
    needs_path: ClassVar[bool] = True

    def load(self, path: str, raw_root: Path, download: bool) -> RawDataset:
        if not path:
            raise DataError(f"{self.name}: a path is required ({self.wanted})")
        return self.read(Path(path))


_IDX_WANTED = "the 4 IDX files " + names_list([f"{b}[.gz]" for b in IDX_FILES])

ENTRIES: tuple[Builtin | UserPath, ...] = (
    Builtin("fashion-mnist", idx_present, partial(read_idx_dir, classes=FASHION_MNIST_CLASSES),
            _IDX_WANTED, apt_package="dataset-fashion-mnist"),
    Builtin("mnist", idx_present, partial(read_idx_dir, classes=MNIST_CLASSES), _IDX_WANTED),
    Builtin("cifar10", partial(cifar_present, layout=CIFAR10_LAYOUT),
            partial(read_cifar, layout=CIFAR10_LAYOUT),
            f"cifar-10-binary.tar.gz (or its extracted {CIFAR10_LAYOUT.inner}/)"),
    Builtin("cifar100", partial(cifar_present, layout=CIFAR100_LAYOUT),
            partial(read_cifar, layout=CIFAR100_LAYOUT),
            f"cifar-100-binary.tar.gz (or its extracted {CIFAR100_LAYOUT.inner}/)"),
    Builtin("svhn", lambda d: all((d / f).is_file() for f in SVHN_FILES),
            partial(read_svhn_dir, classes=SVHN_CLASSES), names_list(SVHN_FILES)),
    UserPath("npz", read_npz, "a .npz file with x, y and optionally x_test, y_test"),
    UserPath("folder", read_image_folder,
             "a directory with train/<class>/ and optionally test/<class>/ images"),
)  # fmt: skip
"""Every dataset, in the order ``data.name`` lists them; the registry is built from it."""
