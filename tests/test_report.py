"""The report stage on hand-written metrics: speed-ups, deltas, the random-baseline verdict,
the Pareto front, and a one-line error for a missing input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from robustprune import report
from robustprune.config import params_from_dict
from robustprune.pipeline import InputError

METHODS = {
    "full": {},
    "random-online": {"method": "random-online", "fraction": 0.3},
    "score": {"method": "score", "fraction": 0.3},
    "bullettrain": {"mining": "bullettrain"},
    "stack": {"method": "score", "fraction": 0.3, "mining": "bullettrain", "attack": "fgsm-rs",
              "alpha": 0.125},
}
# name -> (passes, seconds, clean, pgd, autoattack)
MEASURED = {
    "full": (1_000_000, 400.0, 0.80, 0.70, 0.68),
    "random-online": (300_000, 100.0, 0.75, 0.64, 0.62),
    "score": (500_000, 200.0, 0.74, 0.66, 0.63),
    "bullettrain": (480_000, 210.0, 0.82, 0.69, 0.675),
    "stack": (250_000, 125.0, 0.70, 0.58, 0.55),
}


def _write_metrics(root: Path, measured: dict[str, tuple[float, ...]]) -> Path:
    for name, (passes, seconds, clean, pgd, aa) in measured.items():
        (root / "train").mkdir(parents=True, exist_ok=True)
        (root / "eval").mkdir(parents=True, exist_ok=True)
        (root / "train" / f"{name}.json").write_text(json.dumps(
            {"cost": {"passes": passes, "seconds": seconds}}))
        (root / "eval" / f"{name}.json").write_text(json.dumps(
            {"clean_acc": clean, "pgd_acc": pgd, "autoattack_acc": aa, "n_autoattack": 1000,
             "checks_passed": True}))
    (root / "eval_clean.json").write_text(json.dumps(
        {"clean_acc": 0.82, "pgd_acc": 0.03, "autoattack_acc": 0.01, "n_autoattack": 1000,
         "checks_passed": True}))
    return root


def _run(tmp_path: Path, methods: dict[str, Any] | None = None) -> dict[str, Any]:
    params = params_from_dict({"methods": METHODS if methods is None else methods})
    metrics = _write_metrics(tmp_path / "metrics", MEASURED)
    return report.report(params, metrics, "full", tmp_path / "summary.json",
                         tmp_path / "summary.md", tmp_path / "pareto.png")


def test_speedups_and_deltas_are_against_the_baseline(tmp_path: Path) -> None:
    rows = _run(tmp_path)["methods"]
    assert rows["full"]["speedup_passes"] == 1.0 and rows["full"]["delta_robust"] == 0.0
    assert rows["random-online"]["speedup_passes"] == pytest.approx(1_000_000 / 300_000, 1e-3)
    assert rows["bullettrain"]["speedup_seconds"] == pytest.approx(400 / 210, 1e-3)
    assert rows["stack"]["relative_cost"] == 0.25
    assert rows["score"]["delta_robust"] == pytest.approx(0.63 - 0.68)
    assert rows["stack"]["attack"] == "fgsm-rs" and rows["score"]["attack"] == "pgd-10"


def test_beats_random_compares_with_random_baselines_at_the_same_fraction(
        tmp_path: Path) -> None:
    rows = _run(tmp_path)["methods"]
    assert rows["score"]["beats_random"] is True        # 63 % > random-online's 62 %
    assert rows["stack"]["beats_random"] is False       # 55 % < 62 %, other mining and attack
    assert rows["bullettrain"]["beats_random"] is None  # no random baseline at f = 1
    assert rows["full"]["beats_random"] is None
    assert rows["random-online"]["beats_random"] is None


def test_no_verdict_without_a_random_baseline(tmp_path: Path) -> None:
    methods = {k: v for k, v in METHODS.items() if k != "random-online"}
    rows = _run(tmp_path, methods)["methods"]
    assert all(r["beats_random"] is None for r in rows.values())


def test_pareto_front_keeps_only_undominated_points() -> None:
    points = {"a": (1.0, 68.0), "b": (0.5, 67.5), "c": (0.3, 62.0), "d": (0.5, 60.0),
              "e": (0.25, 55.0), "f": (0.6, 66.0)}
    assert report.pareto_front(points) == ["e", "c", "b", "a"]


def test_outputs_table_and_plot(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text()) == result
    table = (tmp_path / "summary.md").read_text().splitlines()
    assert len(table) == 2 + len(METHODS) + 1  # header, rule, methods, clean-trained
    stack = next(line for line in table if line.startswith("| stack |"))
    assert "| 4.00× |" in stack and "| no |" in stack and "-13.00" in stack
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["pareto_front"] == ["stack", "random-online", "bullettrain", "full"]


def test_missing_metrics_is_a_one_line_error_naming_the_stage(tmp_path: Path) -> None:
    params = params_from_dict({"methods": METHODS})
    metrics = _write_metrics(tmp_path / "metrics", MEASURED)
    (metrics / "eval" / "stack.json").unlink()
    with pytest.raises(InputError, match=r"evaluate@stack") as err:
        report.report(params, metrics, "full", tmp_path / "s.json", tmp_path / "s.md", None)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "s.json").exists()
