"""The publish stage: one run's small results (its training metrics, its evaluation metrics, its
per-example table) copied, checked, into the git-tracked ``results/`` folder the report reads.

Why a stage of its own. The models and every stage output are DVC-cached, and there is no DVC
remote, so a clone has none of them. The report's inputs are small (a few kB of JSON and an
~80 kB table per run) and must be in git, so that the report, its statistics and ``dvc status``
work in any clone. But DVC saves a stage to its run-cache only when all of its plain outputs are
cached (``cache: false`` outputs other than metrics and plots turn the run-cache off for that
stage), and training and evaluation must stay run-cacheable: they are the hours of compute that
come back when earlier params return. So training and evaluation write cached outputs, and this
cheap per-run stage (no torch work, well under a second of compute) writes git-tracked copies
of them. An edit to training or evaluation reruns it after them; nothing else does.

The copies are byte for byte (the report reads exactly what the stages wrote); each input is
checked first (a JSON object; a parquet table with the ``clean`` and ``pgd`` columns every
evaluation writes), and a missing or damaged one fails with one line naming the file and the
stage that makes it, before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from robustprune.atomic import atomic_write_bytes
from robustprune.errors import InputError, require_file

REQUIRED_COLUMNS = ("clean", "pgd")
"""What every per-example table holds (the paired statistics need both)."""


def _check(path: Path, made_by: str) -> bytes:
    """The file's bytes once it is known to be a readable metrics JSON or per-example table."""
    require_file(path, made_by)
    data = path.read_bytes()
    if path.suffix == ".json":
        try:
            value = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError(f"{path}: not valid JSON; rerun the {made_by} stage") from None
        if not isinstance(value, dict):
            raise InputError(f"{path}: not a JSON object; rerun the {made_by} stage")
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(pa.BufferReader(data)).names
        except (pa.ArrowException, OSError):
            raise InputError(f"{path}: not a readable parquet table; rerun the {made_by} "
                             "stage") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise InputError(f"{path}: lacks column {missing[0]}; rerun the {made_by} stage")
    else:
        raise InputError(f"{path}: publishes .json and .parquet files only")
    return data


def publish(copies: Sequence[tuple[Path, Path, str]]) -> None:
    """Copy each ``(source, destination, made_by)``: every source checked first, then each
    destination written atomically (``made_by`` names the stage to rerun in an error)."""
    targets = [dst for _, dst, _ in copies]
    if len(set(targets)) != len(targets):
        raise InputError("publish: two sources share a destination")
    checked = [(_check(src, made_by), dst) for src, dst, made_by in copies]
    for data, dst in checked:
        atomic_write_bytes(dst, data)
