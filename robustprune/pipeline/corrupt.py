"""Stage corrupt: the common-corruption test set every evaluation adds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from robustprune.atomic import atomic_write_json
from robustprune.data import load_splits
from robustprune.data.corrupted import CIFAR_C, generate, read_cifar_c, save_corrupted
from robustprune.errors import InputError, require_file


def corrupt(params: Any, data_path: Path, out: Path, metrics_out: Path | None = None,
            raw_root: Path = Path("data/raw")) -> dict[str, Any]:
    """The corrupted test set: generated from the prepared test split (seeded), or read from
    an official CIFAR-C archive; checked against the test split's labels so the examples pair
    with the clean ones."""
    require_file(data_path, "prepare")
    c = params.corruptions
    splits = load_splits(data_path)
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    if c.source in CIFAR_C and CIFAR_C[c.source].dataset != splits.name:
        raise InputError(f"corruptions.source = {c.source}: corrupts the "
                         f"{CIFAR_C[c.source].dataset} test set, but {data_path} holds "
                         f"{splits.name} (use generated)")
    if c.source == "generated":
        cset, seconds = generate(splits.x_test.numpy(), splits.y_test.numpy(), c.n, c.seed)
    else:
        spec = CIFAR_C[c.source]
        cset = read_cifar_c(Path(c.path) if c.path else raw_root / c.source, spec, c.n)
        if not np.array_equal(cset.y, splits.y_test.numpy()[:len(cset.y)]):
            raise InputError(f"corruptions.source = {c.source}: its labels differ from the "
                             f"prepared test split's ({data_path}); prepare {spec.dataset} "
                             "with its official test set")
    if cset.x.shape[3:] != tuple(splits.x_test.shape[1:]):
        raise InputError(f"corrupted images are {cset.x.shape[3:]} but the test split's are "
                         f"{tuple(splits.x_test.shape[1:])} (C,H,W)")
    save_corrupted(cset, out)
    info = {"source": cset.source, "n": len(cset.y), "corruptions": list(cset.names),
            "severities": list(cset.severities), "seconds": seconds,
            "stage_seconds": round(time.perf_counter() - started, 2)}
    if metrics_out is not None:
        atomic_write_json(metrics_out, info)
    return info
