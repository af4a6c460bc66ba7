"""Tests for robustprune.atomic: atomic writes leave the old file or the new one, never a temp
file, and checkpoints saved twice are the same bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robustprune.atomic import atomic_torch_save, atomic_write, atomic_write_json


def test_torch_save_is_byte_deterministic(tmp_path: Path) -> None:
    state = torch.nn.Linear(5, 3).state_dict()
    atomic_torch_save(state, tmp_path / "a.pt")
    atomic_torch_save(state, tmp_path / "sub" / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "sub" / "b.pt").read_bytes()
    loaded = torch.load(tmp_path / "a.pt", weights_only=True)
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.pt", "b.pt"]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    atomic_write_json(path, {"a": 1})

    def fail(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(path, fail)
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
