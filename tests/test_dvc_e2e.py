"""End to end: the project copied into a fresh git repo, `dvc repro` on tiny params."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.conftest import ROOT, copy_project, tiny_params

METHODS = {"full": {}, "full-50": {"budget": 0.5},
           "random-online": {"selector": "random-online", "fraction": 0.5},
           "bullettrain": {"miner": "bullettrain"},
           "stack": {"selector": "prune", "fraction": 0.5, "miner": "bullettrain",
                     "attack": "fgsm-rs", "alpha": 0.125}}


def _run(cmd: list[str], cwd: Path, stdout_only: bool = False) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "COLUMNS": "1000"}  # dvc's tables are not cut
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout if stdout_only else res.stdout + res.stderr


def _project(tmp_path: Path, raw: dict) -> Path:
    """The project in a fresh git repo with ``raw`` as params.yaml, committed."""
    repo = copy_project(tmp_path / "repo")
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))
    _run(["git", "init", "-q"], repo)
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-qm", "project"], repo)
    return repo


def readme_usage() -> list[str]:
    """The commands of the README's Usage block, in order, without their comments."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Usage\n.*?```sh\n(.*?)```", text, flags=re.S)
    assert block, "README has no Usage command block"
    return [c for line in block.group(1).splitlines() if (c := line.split("#")[0].strip())]


def test_readme_usage_commands_in_a_fresh_repo(tmp_path, tiny_npz):
    """The README's Usage block, run as written, on tiny params: the first `dvc repro` runs
    every stage, a named branch is then up to date, the experiment reruns only its branch and
    the report, and the comparisons show it."""
    # lr 0.01: every model learns the tiny set, so no check voids the report's comparisons
    repo = _project(tmp_path, tiny_params(tiny_npz, methods=METHODS, train={"lr": 0.01},
                                          eval={"n_verdict": 6, "n_autoattack": 3}))
    out: dict[str, str] = {}
    for cmd in readme_usage():
        if cmd.startswith("dvc exp run"):
            _run(["git", "add", "-A"], repo)
            _run(["git", "commit", "-qm", "baseline run"], repo)
        out[cmd] = _run(shlex.split(cmd), repo)
        if cmd == "dvc repro":
            _check_outputs(repo)
    assert "scoring" in out["dvc dag"]

    stages = ["prepare", "corrupt", "warmup@0", "scoring@0", "evaluate_clean@0",
              "publish_clean@0", "report"]
    stages += [f"{s}@{m}-0" for s in ("train", "evaluate", "publish") for m in METHODS]
    for stage in stages:
        assert f"Running stage '{stage}'" in out["dvc repro"]
    assert "Running stage" not in out["dvc repro train@bullettrain-0"]

    exp = out["dvc exp run -S methods.random-online.fraction=0.25"]
    assert "Running stage 'train@random-online-0'" in exp
    for untouched in ("warmup@0", "scoring@0", "train@full-0", "train@stack-0", "evaluate@full-0"):
        assert f"Running stage '{untouched}'" not in exp
    assert "Running stage 'report'" in exp
    # the experiment beside its baseline, without the dependencies' hash columns
    shown = next(v for k, v in out.items() if k.startswith("dvc exp show --only-changed"))
    # the headline is the one metrics file: a few columns per method, so the comparison of
    # an experiment with its baseline fits a terminal (the details are DVC-cached outputs)
    assert "└── " in shown, shown
    assert "random-online.robust" in shown and "methods.random-online.fraction" in shown, shown
    assert "settings" not in shown and "stage_seconds" not in shown, shown  # no stage JSON
    width = max(len(line.rstrip()) for line in shown.splitlines())
    assert width <= 200, f"dvc exp show --only-changed is {width} columns wide:\n{shown}"
    assert "metrics/headline.json" in out["dvc metrics diff"]
    assert "dvc_plots" in out["dvc plots show"]
    assert json.loads(_run(["dvc", "metrics", "show", "--json"], repo))
    plots = json.loads(_run(["dvc", "plots", "show", "--json"], repo, stdout_only=True))["data"]
    assert "val_pgd_acc" in json.dumps(plots)
    for axis in ("passes", "seconds"):  # the time-to-accuracy overlays, one line per run
        spec = plots[f"robust accuracy vs {axis}"][0]["content"]
        assert spec["encoding"]["color"]["field"] == "run"
        assert {d["run"] for d in spec["data"]["values"]} == {f"{m}-0" for m in METHODS}
    assert "Running stage" not in _run(["dvc", "repro"], repo)


def _check_outputs(repo: Path) -> None:
    """Every output of a first `dvc repro` on METHODS, and what the report makes of them."""
    metrics = repo / "metrics"
    for name in ("prepare.json", "warmup/s0.json", "scoring/s0.json", "eval_clean/s0.json",
                 "summary.json"):
        assert json.loads((metrics / name).read_text())
    for m in METHODS:
        ev = json.loads((metrics / "eval" / f"{m}-0.json").read_text())
        assert 0 <= ev["autoattack_acc"] <= 1 and ev["n_autoattack"] == 3
        assert 0 <= ev["verdict_acc"] <= 1 and ev["n_verdict"] == 6
        # checks without a threshold are the evaluation's; the rest the report's
        assert "curve_decreasing" in ev["checks"] and "trust_gap" in ev
        assert ev["n_corruption"] == 24 and 0 <= ev["corruption_acc"] <= 1
        assert (repo / "data" / "examples" / f"{m}-0.parquet").is_file()
        train = json.loads((metrics / "train" / f"{m}-0.json").read_text())
        assert train["cost"]["passes"] > 0 and train["seed"] == 0
        assert train["settings"]["fraction"] == METHODS[m].get("fraction", 1.0)
    summary = json.loads((metrics / "summary.json").read_text())
    rows = summary["methods"]
    assert not [(n, r["blocked_by"]) for n, r in rows.items() if r["blocked_by"]]
    assert set(rows) == set(METHODS) and rows["full"]["speedup_passes"] == 1.0
    assert rows["random-online"]["speedup_passes"] == 2.0  # exactly half the examples
    # the budget run spends half of full's passes (to within one batch) and is the frontier
    budget = json.loads((metrics / "train" / "full-50-0.json").read_text())["budget_passes"]
    assert budget == rows["full"]["passes"] // 2 <= rows["full-50"]["passes"]
    assert [n for n, r in rows.items() if r["frontier"]] == ["full", "full-50"]
    assert rows["random-online"]["effective_speedup"]["estimate"]["value"] > 0
    assert rows["random-online"]["vs_random"] is None and rows["stack"]["to_target"]["of"] == 1
    curves = (metrics / "curves.csv").read_text().splitlines()
    epochs = {m: json.loads((metrics / "train" / f"{m}-0.json").read_text())["epochs"]
              for m in METHODS}
    assert epochs["full"] == 2 and epochs["full-50"] == 1  # half the passes: one epoch
    assert curves[0].startswith("run,method,seed") and len(curves) == 1 + sum(epochs.values())
    stack_cost = json.loads((metrics / "train" / "stack-0.json").read_text())["cost"]
    score_cost = json.loads((metrics / "scoring" / "s0.json").read_text())["cost"]
    assert stack_cost["select_forward"] >= score_cost["forward_passes"] > 0  # scoring is paid
    assert rows["stack"]["speedup_passes"] > 1.0
    assert rows["stack"]["attack"] == "fgsm-rs" and rows["stack"]["miner"] == "bullettrain"
    assert summary["pareto_front"] and summary["clean_trained"]["0"]["n_verdict"] == 6
    assert rows["random-online"]["delta_calibrated"]["n"] == 64  # eval.n_pgd
    table = (metrics / "summary.md").read_text()
    assert "| stack | prune | 0.5 | bullettrain | fgsm-rs |" in table
    assert rows["stack"]["corruption"]["delta"]["n"] == 24 and "mCE vs clean-trained" in table
    assert (metrics / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (repo / "dvclive" / "train" / "stack-0" / "plots" / "metrics" /
            "bt_robust_share.tsv").is_file()


def _stale(repo: Path) -> set[str]:
    """Stages `dvc status` reports as changed."""
    return set(json.loads(_run(["dvc", "status", "--json"], repo)))


def test_dvc_status_after_edits_names_exactly_the_affected_stages(tmp_path, tiny_npz):
    """Invalidation follows the code and params each stage reads: an edit to the report module
    stales only the report; a miner option stales only the branches that mine (and the report);
    a selector module stales every stage that imports it, never the report's inputs' makers
    that do not. Returning to earlier params restores a branch from the run-cache, and the
    per-epoch series draw without warnings."""
    methods = {"full": {}, "bt": {"miner": "bullettrain"}}
    raw = tiny_params(tiny_npz, methods=methods, warmup={"epochs": 1}, train={"epochs": 1},
                      eval={"n_curve": 0})
    repo = _project(tmp_path, raw)
    _run(["dvc", "repro", "--quiet"], repo)
    assert _stale(repo) == set()
    _check_benchmark_scripts(repo, tmp_path / "results")
    _check_fresh_clone(repo, tmp_path / "clone")

    report_py = repo / "robustprune" / "report" / "render.py"
    for edited, expected in (
            (report_py, {"report"}),
            # a selector edit: the training branches and the report, no data, warm-up,
            # scoring or evaluation stage
            (repo / "robustprune" / "selection" / "bullettrain.py",
             {"train@full-0", "train@bt-0", "report"}),
            # an evaluation edit: the evaluations only (the report follows their outputs)
            (repo / "robustprune" / "evaluation.py",
             {"evaluate@full-0", "evaluate@bt-0", "evaluate_clean@0"})):
        original = edited.read_text()
        edited.write_text(original + "\n# an edit\n")
        assert _stale(repo) == expected, edited
        edited.write_text(original)
    raw["report"]["trust_gap"] = 0.02  # a report threshold: the report alone
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))
    assert _stale(repo) == {"report"}
    del raw["report"]["trust_gap"]
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))

    raw["methods"]["bt"]["gamma"] = 0.5
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))
    assert _stale(repo) == {"train@bt-0", "report"}  # evaluate@bt-0 follows its model
    _run(["dvc", "repro", "--quiet"], repo)
    del raw["methods"]["bt"]["gamma"]
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))
    # back to the earlier params: the run-cache restores the branch instead of rerunning it
    back = _run(["dvc", "repro"], repo)
    for stage in ("train@bt-0", "evaluate@bt-0"):
        assert f"Stage '{stage}' is cached - skipping run" in back, back
    assert _stale(repo) == set()
    plots = _run(["dvc", "plots", "show", "--json"], repo)
    assert "nonetype" not in plots.lower() and "dvclive/train/bt-0/plots/metrics" in plots
    assert not (repo / "dvclive" / "train" / "bt-0" / "metrics.json").exists()

    raw["corruptions"]["seed"] = 1  # only the corrupted test set (and what reads it) changes
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))
    assert _stale(repo) == {"corrupt"}  # the evaluations follow its output when it reruns
    raw["corruptions"]["seed"] = 0
    raw["report"]["pareto_axis"] = "corruption"  # presentation only: the report alone
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))
    assert _stale(repo) == {"report"}
    raw["report"]["pareto_axis"] = "adversarial"
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))

    stats_py = repo / "robustprune" / "stats" / "intervals.py"
    stats_py.write_text(stats_py.read_text() + "\n")
    assert "train@full-0" not in _stale(repo)


def _check_fresh_clone(repo: Path, clone: Path) -> None:
    """The run committed and cloned (no DVC cache, as on another machine): `dvc status` finds
    only outputs absent from the clone (DVC-cached ones, and deps that are such outputs),
    nothing modified, no changed command or params, and the report, which reads only
    git-tracked files, unchanged; `dvc repro --single-item --force report` recomputes its
    statistics there, byte for byte."""
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-qm", "a finished run"], repo)
    _run(["git", "clone", "-q", str(repo), str(clone)], repo.parent)
    status = json.loads(_run(["dvc", "status", "--json"], clone, stdout_only=True))
    assert "report" not in status and status, status
    for stage, changes in status.items():
        for change in changes:
            assert isinstance(change, dict), (stage, change)  # not "changed command" etc.
            (kind, paths), = change.items()
            assert kind in ("changed deps", "changed outs"), (stage, change)
            assert set(paths.values()) <= {"deleted", "not in cache"}, (stage, change)
    assert set(status["publish@full-0"][0]["changed deps"]) == {
        "metrics/train/full-0.json", "metrics/eval/full-0.json",
        "data/examples/full-0.parquet"}
    assert len(status["publish@full-0"]) == 1  # its git-tracked copies are all there
    summary = (repo / "metrics" / "summary.json").read_bytes()
    (clone / "metrics" / "summary.json").unlink()
    out = _run(["dvc", "repro", "--single-item", "--force", "report"], clone)
    assert "Running stage 'report'" in out and "Running stage 'train" not in out
    assert (clone / "metrics" / "summary.json").read_bytes() == summary


def test_queued_sweep_runs_on_two_workers(tmp_path, tiny_npz):
    """`dvc exp run --queue` twice, then `dvc queue start -j 2`: both experiments run at
    once, each in its own copy of the committed project, and land beside the baseline."""
    raw = tiny_params(tiny_npz, methods={"full": {}}, warmup={"epochs": 1},
                      train={"epochs": 1}, eval={"n_curve": 0, "n_pgd": 32},
                      corruptions={"n": 8})
    repo = _project(tmp_path, raw)
    _run(["dvc", "repro", "--quiet"], repo)
    _run(["git", "add", "-A"], repo)  # queued runs copy what git tracks: outputs' .lock too
    _run(["git", "commit", "-qm", "baseline run"], repo)
    for lr in ("0.02", "0.03"):  # each reruns the branch's training, its evaluation, report
        _run(["dvc", "exp", "run", "--queue", "-n", f"lr-{lr}", "-S", f"train.lr={lr}"], repo)
    _run(["dvc", "queue", "start", "-j", "2"], repo)
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        status = _run(["dvc", "queue", "status"], repo)
        if "Success" in status and not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(1)
    else:
        raise AssertionError(f"the queue did not finish:\n{status}")
    assert status.count("Success") == 2, status
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], repo, stdout_only=True))
    names = {e.get("name") for b in shown for e in (b.get("experiments") or [])}
    assert {"lr-0.02", "lr-0.03"} <= names
    _run(["dvc", "queue", "stop"], repo)


def test_readme_first_look_runs(tmp_path, tiny_npz):
    """The README's first-look recipe, run as written (its `make setup` is this suite's own
    set-up) on the tiny data set, which stands in for Fashion-MNIST: its data.* values become
    the tiny set's, every other override is the recipe's."""
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- first-look:start -->")[1].split("<!-- first-look:end -->")[0]
    cmds = [line.strip() for line in block.strip().strip("`").splitlines()[1:]
            if line.strip() and not line.startswith("make setup")]
    methods = {m: METHODS[m] for m in ("full", "random-online")}  # two branches keep it short
    repo = _project(tmp_path, tiny_params(tiny_npz, methods=methods))
    for cmd in cmds:
        words = shlex.split(cmd)
        words = [("data.train_size=0" if w.startswith("data.train_size=") else w)
                 for w in words]
        out = _run(words, repo)
        if words[:3] == ["dvc", "exp", "run"]:
            assert "Running stage 'report'" in out
            summary = json.loads((repo / "metrics" / "summary.json").read_text())
            assert set(summary["methods"]) == set(methods)
            assert all(r["n_autoattack"] == r["n_verdict"] == 0
                       for r in summary["methods"].values())
            assert json.loads((repo / "metrics" / "train" / "full-0.json").read_text())[
                "epochs"] == 2
        else:
            assert "first-look" in out


def _check_benchmark_scripts(repo: Path, out: Path) -> None:
    """The recording and reselection-cost scripts on a finished run: they read its outputs
    (``repo`` stands for a regime folder: params.yaml, data/, models/, metrics/), keep the
    notes file, and refuse a missing one with a one-line error before writing anything."""
    bench = ROOT / "benchmarks"
    notes = out.parent / "notes.md"
    notes.write_text("## A measured aside\n\nwith its command.\n")
    _run([sys.executable, str(bench / "record.py"), "tiny", "--metrics", str(repo / "metrics"),
          "--out", str(out), "--notes", str(notes)], ROOT)
    text = (out / "tiny.md").read_text()
    assert "| full |" in text and "**Stage timers:** warmup@0" in text
    assert text.rstrip().endswith("with its command.") and (out / "tiny.json").is_file()
    missing = subprocess.run([sys.executable, str(bench / "record.py"), "other", "--metrics",
                              str(repo / "metrics"), "--out", str(out), "--notes",
                              str(out / "none.md")], capture_output=True, text=True)
    assert missing.returncode == 2 and "none.md: no such file" in missing.stderr
    assert not (out / "other.md").exists()
    shown = _run([sys.executable, str(bench / "reselection_cost.py"), "--regime", str(repo),
                  "--runs", "1", "--settings", "1:0", "0.5:2", "--out",
                  str(out / "cost.json")], ROOT, stdout_only=True)
    rows = json.loads((out / "cost.json").read_text())["rows"]
    assert [(r["pool"], r["attack_steps"]) for r in rows] == [(1.0, 3), (0.5, 2)]
    assert rows[0]["candidates"] == 400 and 200 <= rows[1]["candidates"] < 400  # 80 held out
    assert all(r["gradients"]["mean"] >= 0 for r in rows) and "| 0.5 | PGD-2 |" in shown
