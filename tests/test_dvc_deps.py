"""dvc.yaml lists, for every stage, exactly the package modules its script imports (directly
or through other modules), so an edit reruns exactly the stages whose code changed."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _module_file(name: str) -> Path | None:
    path = ROOT / Path(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(path: Path) -> set[str]:
    """Package modules named by the imports of one file (function-level imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in names if n.split(".")[0] == "robustprune"}


def import_closure(script: Path) -> set[str]:
    """Repo-relative files of every package module ``script`` runs on import, parents too."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for name in _imported(todo.pop()):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
                f = _module_file(".".join(parts[:i]))
                if f is not None and f not in seen:
                    seen.add(f)
                    todo.append(f)
    return {str(f.relative_to(ROOT)) for f in seen}


def _stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _body(stage: dict) -> dict:
    return stage.get("do", stage)


def test_every_stage_depends_on_exactly_the_modules_it_imports():
    for name, stage in _stages().items():
        body = _body(stage)
        words = body["cmd"].split()
        script = next(w for w in words if w.startswith("stages/") and w.endswith(".py"))
        deps = set()
        for d in body["deps"]:
            if d.startswith("robustprune/"):  # a package directory stands for all its modules
                path = ROOT / d
                deps |= ({str(f.relative_to(ROOT)) for f in path.glob("*.py")} if path.is_dir()
                         else {d})
        expected = import_closure(ROOT / script)
        if "robustprune.launch" in words:  # the torchrun launcher runs first
            expected |= import_closure(ROOT / "robustprune" / "launch.py") | {
                "robustprune/launch.py"}
        assert script in body["deps"], f"{name}: its script {script} is not a dependency"
        assert deps == expected, (f"{name}: missing {sorted(expected - deps)}, "
                                  f"not imported {sorted(deps - expected)}")


def test_closure_follows_package_parents_and_function_level_imports():
    closure = import_closure(ROOT / "stages" / "evaluate.py")
    assert "robustprune/__init__.py" in closure  # every import of the package runs it
    assert "robustprune/cpu_kernels.py" in closure  # imported by __init__
    assert not any(f.startswith("robustprune/report/") for f in closure)


def _code_deps(stage: dict) -> set[str]:
    deps = set()
    for d in _body(stage)["deps"]:
        path = ROOT / d
        if d.startswith("robustprune/"):
            deps |= ({str(f.relative_to(ROOT)) for f in path.glob("*.py")} if path.is_dir()
                     else {d})
    return deps


def test_an_edit_reruns_only_the_stages_that_run_the_edited_code():
    """A selector edit stales no data, warm-up or evaluation stage; an evaluation edit no data,
    warm-up, scoring or training stage; a report threshold only the report."""
    stages = _stages()
    for name in ("prepare", "corrupt", "warmup", "evaluate", "evaluate_clean", "publish",
                 "publish_clean"):
        assert "robustprune/selection/bullettrain.py" not in _code_deps(stages[name]), name
    for name in ("prepare", "corrupt", "warmup", "scoring", "train", "publish",
                 "publish_clean"):
        assert "robustprune/evaluation.py" not in _code_deps(stages[name]), name
    for name, stage in stages.items():
        params = _body(stage).get("params", [])
        if name != "report":
            assert not any(str(p).split(".")[0] == "report" for p in params), name
    assert "report" in _body(stages["report"])["params"]
    assert "eval" not in _body(stages["report"])["params"]


def test_report_thresholds_are_not_evaluation_params():
    """Every key the evaluate stage depends on is one the evaluation computes with."""
    import dataclasses

    from robustprune.evaluation import EvalConfig
    from robustprune.report import ReportConfig

    evaluated = {f.name for f in dataclasses.fields(EvalConfig)}
    judged = {f.name for f in dataclasses.fields(ReportConfig)}
    assert not evaluated & judged
    assert {"chance_margin", "trust_gap", "curve_zero", "collapse_ratio",
            "target_drop"} <= judged


def test_the_report_reads_only_git_tracked_files():
    """The report's data deps are the publish stages' `cache: false` copies (results/), so a
    clone, which has no DVC-cached output, has every input of the report: `dvc status` finds it
    current there. Every stage that writes a cached output keeps its run-cache: no plain
    `cache: false` output (DVC saves a stage to the run-cache only without one)."""
    stages = _stages()
    data = [d for d in _body(stages["report"])["deps"]
            if not d.startswith(("stages/", "robustprune/"))]
    assert data == ["results"]
    for name, stage in stages.items():
        outs = [next(iter(o.items())) if isinstance(o, dict) else (o, {})
                for o in _body(stage).get("outs", [])]
        uncached = [path for path, opts in outs if opts.get("cache") is False]
        if name.startswith("publish"):
            assert uncached and len(uncached) == len(outs), name
            assert all(path.startswith("results/") for path in uncached), name
        elif name != "report":  # the report's tables: seconds to redo, no run-cache needed
            assert not uncached, name
