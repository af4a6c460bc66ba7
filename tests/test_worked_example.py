"""The worked example of docs/methods.md ("Adding a selector"), done exactly as written: a new
selector with one parameter is one new file, one import line in the selection registry and one
`methods` entry, and it then trains through the stage scripts with its option validated and
recorded."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import yaml

from tests.conftest import ROOT, copy_project, tiny_params


def worked_example_blocks() -> dict[str, str]:
    """The code blocks docs/methods.md marks with ``<!-- example: <target> -->``, by target."""
    text = (ROOT / "docs" / "methods.md").read_text()
    found = re.findall(r"<!-- example: (\S+) -->\n```\w*\n(.*?)```", text, flags=re.S)
    return dict(found)


def test_adding_a_selector_with_one_parameter_as_the_methods_doc_says(tmp_path, tiny_npz):
    blocks = worked_example_blocks()
    assert set(blocks) == {"robustprune/selection/clean_loss.py",
                           "robustprune/selection/registry.py", "params.yaml"}
    repo = copy_project(tmp_path / "proj")
    new_file = repo / "robustprune" / "selection" / "clean_loss.py"
    assert not new_file.exists()
    new_file.write_text(blocks["robustprune/selection/clean_loss.py"])
    registry = repo / "robustprune" / "selection" / "registry.py"
    (line,) = blocks["robustprune/selection/registry.py"].strip().splitlines()
    lines = registry.read_text().splitlines(keepends=True)
    last_import = max(i for i, s in enumerate(lines) if s.startswith("from robustprune.selection."))
    registry.write_text("".join([*lines[:last_import + 1], line + "\n", *lines[last_import + 1:]]))
    entry = yaml.safe_load(blocks["params.yaml"])["methods"]
    (name,) = entry
    raw = tiny_params(tiny_npz, methods={"full": {}, **entry}, train={"epochs": 2})
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))

    env = {**os.environ, "PYTHONPATH": str(repo)}  # the copy's package, not the installed one

    def stage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=300)

    for args in (["stages/prepare.py"], ["stages/warmup.py", "--device", "cpu"],
                 ["stages/train.py", "--device", "cpu", "--method", name]):
        res = stage(*args)
        assert res.returncode == 0, res.stderr
    metrics = json.loads((repo / "metrics" / "train" / f"{name}-0.json").read_text())
    assert metrics["settings"]["selector"] == "clean-loss"
    assert metrics["settings"]["selector_options"] == {"every": entry[name]["every"]}
    n = metrics["train_examples"]
    assert metrics["final"]["examples"] == round(entry[name]["fraction"] * n)  # balanced classes
    assert metrics["cost"]["select_forward"] == n  # one ranking pass, charged to the method

    raw["methods"][name]["every"] = 0  # its option is validated like any other param
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))
    res = stage("stages/train.py", "--method", name)
    assert res.returncode == 2
    assert res.stderr.strip() == f"error: methods.{name}.every = 0: must be >= 1"
