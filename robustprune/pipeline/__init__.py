"""The library side of the pipeline's stages: one module per stage (``prepare``, ``corrupt``,
``warmup``, ``scoring``, ``train``, ``evaluate``), each a plain function of (params sections,
paths, device) that validates everything it can (params, input files, their compatibility)
before any compute, computes, then writes its outputs atomically.

Why one module per stage, and nothing imported here: a stage script imports only its own
module, so DVC's dependency list of each stage is the code that stage runs, and an edit to
training reruns no evaluation (and the reverse). :mod:`.api` gathers every stage function in
one namespace for tests and scripts that drive several stages in-process.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from robustprune.schema import as_dict

CHECKPOINT_ROOT = Path(".cache/checkpoints")
"""Resume state lives outside DVC's outputs (which DVC deletes before a rerun), keyed by a hash
of the stage's params and input files, so a stale checkpoint can never be resumed."""
STATE_FORMAT = 4
"""Part of every resume key: bumped when the layout of the resume state or the meaning of a
setting changes, so a checkpoint written by older code is never resumed by newer code."""


def fingerprint(*parts: Any) -> str:
    """Stable short hash of JSON-able parts: keys resume checkpoints to exactly these inputs."""
    blob = json.dumps([as_dict(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file: keys checkpoints to the exact inputs they were trained from."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
