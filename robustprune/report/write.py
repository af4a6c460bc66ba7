"""The report stage's work: read every input (checked first), summarise, judge the targets,
then write each output atomically, the typed summary turned into JSON and text only here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustprune.atomic import atomic_write_json, atomic_write_text
from robustprune.errors import InputError
from robustprune.report.config import ReportConfig, eval_failed
from robustprune.report.load import collect
from robustprune.report.pareto import front, plot
from robustprune.report.render import curves, headline, markdown
from robustprune.report.summary import summarise
from robustprune.report.verdicts import targets

CLEAN_TRAINED_KEYS = ("clean_acc", "pgd_acc", "verdict_acc", "n_verdict", "autoattack_acc",
                      "n_autoattack", "corruption_acc")
"""The clean-trained model's figures summary.json repeats (the rest is in its evaluation)."""


def report(params: Any, metrics_dir: Path, examples_dir: Path, summary_out: Path,
           table_out: Path, plot_out: Path | None, curves_out: Path | None = None,
           headline_out: Path | None = None) -> dict[str, Any]:
    """Write the summary JSON, the markdown tables, the Pareto plot with the full-data
    frontier, the curves CSV and the ``dvc exp show`` headline from the runs' metrics under
    ``metrics_dir`` (``train/``, ``eval/``, ``eval_clean/``) and their per-example tables in
    ``examples_dir``, inputs checked first (nothing is written when one is missing); return
    the summary JSON. In the pipeline these are the git-tracked copies the publish stage makes
    (``results/``), so the report reruns in any clone. ``params`` holds ``seeds``,
    ``methods`` and ``report``."""
    cfg: ReportConfig = params.report
    baseline = cfg.baseline
    if not params.methods:
        raise InputError("methods: no methods defined in params; nothing to report")
    runs, clean = collect(params, metrics_dir, examples_dir)
    summary = summarise(runs, clean, baseline, cfg)
    goal = targets(summary)
    result = {"baseline": baseline, "seeds": list(params.seeds),
              "methods": {n: r.as_dict() for n, r in summary.items()},
              "targets": [t.as_dict() for t in goal],
              "pareto_axis": cfg.pareto_axis,
              "pareto_front": front(summary, cfg.pareto_axis),
              "clean_trained": {str(s): {**{k: c["eval"].get(k) for k in CLEAN_TRAINED_KEYS},
                                         "checks_failed": eval_failed(c["eval"], cfg)}
                                for s, c in clean.items()}}
    table = markdown(summary, clean, goal, baseline, cfg)
    compact = headline(summary, goal) if headline_out is not None else None
    atomic_write_json(summary_out, result)
    atomic_write_text(table_out, table)
    if plot_out is not None:
        plot(summary, plot_out, cfg.pareto_axis)
    if curves_out is not None:
        atomic_write_text(curves_out, curves(runs))
    if headline_out is not None:
        atomic_write_json(headline_out, compact)
    return result
