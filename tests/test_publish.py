"""The publish stage: git-tracked, checked, byte-for-byte copies of each run's small results,
from which the report gives what it gives from the stage outputs themselves."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from robustprune.config import params_from_dict
from robustprune.errors import InputError
from robustprune.pipeline.publish import publish
from robustprune.report import report
from tests.conftest import ROOT
from tests.test_report import MEASURED, METHODS, _write


def _sources(metrics: Path, examples: Path, key: str) -> list[Path]:
    return [metrics / "train" / f"{key}.json", metrics / "eval" / f"{key}.json",
            examples / f"{key}.parquet"]


def _stage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "stages" / "publish.py"), *args],
                          capture_output=True, text=True)


def test_the_report_from_published_copies_equals_the_report_from_the_stage_outputs(
        tmp_path: Path) -> None:
    """Each run published by the stage script (as dvc.yaml calls it), the stage outputs then
    deleted: the report over the copies is byte-identical to the report over the originals."""
    params = params_from_dict({"methods": METHODS, "seeds": [0, 1]})
    metrics, examples = _write(tmp_path, MEASURED, (0, 1))
    results = tmp_path / "results"
    for seed in (0, 1):
        for name in METHODS:
            src = _sources(metrics, examples, f"{name}-{seed}")
            res = _stage("--out", str(results), *map(str, src))
            assert res.returncode == 0, res.stderr
            for s in src:
                assert (results / s.parent.name / s.name).read_bytes() == s.read_bytes()
        clean = [metrics / "eval_clean" / f"s{seed}.json", examples / f"clean-s{seed}.parquet"]
        if clean[0].exists():
            assert _stage("--out", str(results), *map(str, clean)).returncode == 0
    first = report(params, metrics, examples, tmp_path / "a.json", tmp_path / "a.md", None,
                   tmp_path / "a.csv", tmp_path / "a-head.json")
    shutil.rmtree(metrics)
    shutil.rmtree(examples)
    again = report(params, results, results / "examples", tmp_path / "b.json",
                   tmp_path / "b.md", None, tmp_path / "b.csv", tmp_path / "b-head.json")
    assert again == first
    for a, b in (("a.json", "b.json"), ("a.md", "b.md"), ("a.csv", "b.csv"),
                 ("a-head.json", "b-head.json")):
        assert (tmp_path / a).read_bytes() == (tmp_path / b).read_bytes()
    with pytest.raises(InputError, match=r"new-0\.json: not found; it is made by the "
                                         r"publish@new-0 stage"):
        report(params_from_dict({"methods": {**METHODS, "new": {}}, "seeds": [0]}), results,
               results / "examples", tmp_path / "c.json", tmp_path / "c.md", None)


@pytest.mark.parametrize(("damage", "message"), [
    ("missing", r"full-0\.json: not found; it is made by the evaluate stage"),
    ("json", r"full-0\.json: not valid JSON; rerun the evaluate stage"),
    ("list", r"full-0\.json: not a JSON object; rerun the evaluate stage"),
    ("parquet", r"full-0\.parquet: not a readable parquet table; rerun the evaluate stage"),
    ("column", r"full-0\.parquet: lacks column pgd; rerun the evaluate stage"),
])
def test_a_damaged_input_is_one_line_and_nothing_is_written(tmp_path: Path, damage: str,
                                                           message: str) -> None:
    """Every source is checked before the first copy: a bad one (here the last two, so the
    training metrics before them would be copied first by a careless loop) leaves the
    results folder empty, and the script says so in one line with exit status 2."""
    import pandas as pd

    metrics, examples = _write(tmp_path, MEASURED)
    train, ev, table = _sources(metrics, examples, "full-0")
    if damage == "missing":
        ev.unlink()
    elif damage == "json":
        ev.write_text('{"clean_acc": 0.5')
    elif damage == "list":
        ev.write_text("[0.5]")
    elif damage == "parquet":
        table.write_bytes(table.read_bytes()[:200])
    else:
        pd.read_parquet(table).drop(columns="pgd").to_parquet(table)
    results = tmp_path / "results"
    res = _stage("--out", str(results), str(train), str(ev), str(table))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert re.search(message, lines[0]), lines[0]
    assert not results.exists() or not any(results.rglob("*"))


def test_publish_refuses_two_sources_for_one_destination_and_other_kinds(tmp_path: Path) -> None:
    """Two files of the same name in folders of the same name would overwrite each other;
    only metrics JSON and per-example parquet tables are published."""
    a, b = tmp_path / "x" / "eval" / "r.json", tmp_path / "y" / "eval" / "r.json"
    for p in (a, b):
        p.parent.mkdir(parents=True)
        p.write_text("{}")
    out = tmp_path / "results"
    with pytest.raises(InputError, match="share a destination"):
        publish([(a, out / "eval" / "r.json", "evaluate"), (b, out / "eval" / "r.json",
                                                            "evaluate")])
    other = tmp_path / "x" / "eval" / "model.pt"
    other.write_bytes(b"\0")
    with pytest.raises(InputError, match=r"model\.pt: publishes \.json and \.parquet"):
        publish([(other, out / "eval" / "model.pt", "evaluate")])
    assert not out.exists()
