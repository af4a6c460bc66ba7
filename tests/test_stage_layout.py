"""A stage run by hand reads and writes what the pipeline does: every path flag's default is
dvc.yaml's path for the same seed and method."""

from __future__ import annotations

import shlex

import pytest
import yaml

from stages import scoring, train, warmup
from tests.conftest import ROOT

STAGES = {"warmup": warmup, "scoring": scoring, "train": train}


def _cmd_args(stage: str) -> list[str]:
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]
    cmd = (spec.get("do") or spec)["cmd"]
    for var, value in (("${item.method}", "full"), ("${item.seed}", "0"), ("${item}", "0"),
                       ("${key}", "full-0"), ("${scale.nproc}", "1")):
        cmd = cmd.replace(var, value)
    words = shlex.split(cmd)
    return words[words.index(f"stages/{stage}.py") + 1:]


@pytest.mark.parametrize("stage", list(STAGES))
def test_path_defaults_are_the_pipelines_paths(stage):
    p = STAGES[stage].build_parser()
    given = p.parse_args(_cmd_args(stage))
    by_default = p.parse_args(["--seed", "0"] + (["--method", "full"] if stage == "train"
                                                 else []))
    p.fill(given, 0, "full")
    p.fill(by_default, 0, "full")
    for dest in p.layout:
        assert getattr(by_default, dest) == getattr(given, dest), dest
    assert p.layout, "the stage declares its paths"
