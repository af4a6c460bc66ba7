"""Stage prepare: the raw dataset into the canonical train/validation/test ``.npz``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustprune.atomic import atomic_write_json
from robustprune.data import load_raw, make_splits, save_splits


def prepare(params: Any, out: Path, raw_root: Path = Path("data/raw"),
            metrics_out: Path | None = None) -> dict[str, Any]:
    """Read the raw dataset, split off validation (and a test set when the dataset has none),
    write the canonical ``.npz``; returns the prepare metrics (sizes, where the test set came
    from)."""
    d = params.data
    raw = load_raw(d.name, d.path, raw_root=raw_root)
    splits = make_splits(raw, d.name, d.val_size, d.train_size, d.seed, test_size=d.test_size)
    info = {"dataset": d.name, "source": raw.source, "train": len(splits.y_train),
            "val": len(splits.y_val), "test": len(splits.y_test),
            "test_split": splits.test_source, "shape": list(splits.shape),
            "classes": list(splits.classes)}
    save_splits(splits, out)
    if metrics_out is not None:
        atomic_write_json(metrics_out, info)
    return info
