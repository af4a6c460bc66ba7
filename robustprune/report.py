"""The side-by-side report: accuracy and cost per trained model, speed-ups against a baseline.

Speed-up = baseline ÷ model, both in wall-clock training seconds and in example-passes
(forward + backward); the shared warm-up is not part of any model's cost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robustprune.io import atomic_write_json, atomic_write_text
from robustprune.pipeline import InputError, require_file


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f}"


def report(rows: dict[str, tuple[Path, Path]], summary_out: Path, table_out: Path,
           baseline: str) -> dict[str, Any]:
    """Side-by-side table: one row per (training metrics, evaluation metrics) pair.

    Speed-ups are relative to ``baseline`` (wall-clock seconds and example-passes).
    """
    loaded: dict[str, dict[str, Any]] = {}
    for name, (train_json, eval_json) in rows.items():
        for path in (train_json, eval_json):
            require_file(path, "train/evaluate")
        loaded[name] = {"train": json.loads(train_json.read_text()),
                        "eval": json.loads(eval_json.read_text())}
    if baseline not in loaded:
        raise InputError(f"report baseline {baseline!r} is not one of {', '.join(loaded)}")
    base = loaded[baseline]["train"]["cost"]
    summary: dict[str, Any] = {"baseline": baseline, "rows": {}}
    lines = ["| model | clean % | PGD-20 % | AutoAttack % (n) | train s | passes | "
             "speed-up (s) | speed-up (passes) | checks |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, m in loaded.items():
        cost, ev = m["train"]["cost"], m["eval"]
        row = {"clean_acc": ev["clean_acc"], "pgd_acc": ev["pgd_acc"],
               "autoattack_acc": ev.get("autoattack_acc"),
               "n_autoattack": ev.get("n_autoattack", 0),
               "seconds": cost["seconds"], "passes": cost["passes"],
               "speedup_seconds": round(base["seconds"] / max(cost["seconds"], 1e-9), 3),
               "speedup_passes": round(base["passes"] / max(cost["passes"], 1), 3),
               "checks_passed": ev["checks_passed"]}
        summary["rows"][name] = row
        lines.append(f"| {name} | {_pct(row['clean_acc'])} | {_pct(row['pgd_acc'])} | "
                     f"{_pct(row['autoattack_acc'])} ({row['n_autoattack']}) | "
                     f"{row['seconds']:.0f} | {row['passes']:,} | "
                     f"{row['speedup_seconds']:.2f}× | {row['speedup_passes']:.2f}× | "
                     f"{'ok' if row['checks_passed'] else 'FAILED'} |")
    atomic_write_json(summary_out, summary)
    atomic_write_text(table_out, "\n".join(lines) + "\n")
    return summary
