"""The ``report`` params section and the checks judged against its thresholds.

Every threshold that decides whether a figure passes a check lives in :class:`ReportConfig`, not
in ``eval``, so changing one reruns the report (seconds) and no evaluation. The checks that
*void* a model (:data:`VOIDING`) decide which comparisons the report may make at all, so they
are judged here, once, before any Δ, speed-up or verdict is computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robustprune.report.load import Clean, Run
from robustprune.schema import param as _p

VOIDING = frozenset({"above_chance", "clean_collapse", "curve_decreasing",
                     "catastrophic_overfitting", "verdict_complete"})
"""Failed checks that void any comparison with the model: it learned nothing (at chance), it
gave up clean accuracy for robustness (collapse), its robust accuracy rises with ε (masked
gradients: the attack, not the model, failed), or its robustness collapsed during training.
No Δ, speed-up, frontier point or verdict is computed from such a model, and the report names
the check that blocked it. ``verdict_complete`` voids too: FAB-T or Square broke examples of
the check subset that the verdict tier's APGD-CE + APGD-T did not, so that tier over-states the
model and nothing read from it can be trusted. Not among them: ``pgd_trusted`` (PGD-k
over-states the verdict tier: why
verdicts are read on the stronger tier) and ``curve_reaches_zero`` (accuracy still above
``report.curve_zero`` at the largest ε of ``eval.eps_factors``: a prompt to look, which data
whose classes differ by more than that ε fail legitimately) and ``class_given_up`` (a class
the model abandoned: named with its accuracy; the overall figures already carry its loss)."""
EQUAL_COST = 0.1
"""A random-selection run counts as "at equal cost" within ±10 % of the method's passes."""


@dataclass(frozen=True)
class ReportConfig:
    """The ``report`` section: how the report judges and presents the runs. Every threshold
    that decides whether a figure passes a check lives here, not in ``eval``, so changing one
    reruns the report (seconds) and no evaluation."""

    baseline: str = _p("full", doc="the method every Δ and speed-up is relative to (an entry "
                                   "of methods)")
    pareto_axis: str = _p("adversarial", choices=("adversarial", "corruption"),
                          doc="the Pareto plot's robustness axis: APGD-CE+T-calibrated "
                              "accuracy, or mean common-corruption accuracy")
    chance_margin: float = _p(0.1, lo=0.0, hi=1.0, doc="clean accuracy must beat the majority "
                                                       "class rate by this much")
    collapse_ratio: float = _p(0.5, lo=0.0, hi=1.0, doc="flag clean accuracy below this "
                                                        "share of the clean-trained model's")
    trust_gap: float = _p(0.005, lo=0.0, doc="flag PGD-k when the verdict tier "
                                             "(APGD-CE+T) is this far below it "
                                             "on the same examples")
    class_ratio: float = _p(0.25, lo=0.0, hi=1.0, doc="name a class given up on: its clean "
                                                      "accuracy below this share of the "
                                                      "clean-trained model's on that class")
    curve_zero: float = _p(0.05, lo=0.0, hi=1.0, doc="accuracy at the largest eps of the curve "
                                                     "must be <= this")
    target_drop: float = _p(0.01, lo=0.0, hi=1.0, doc="time-to-accuracy target: the "
                                                      "baseline's final validation PGD "
                                                      "accuracy minus this")


def eval_failed(ev: dict[str, Any], cfg: ReportConfig) -> list[str]:
    """The checks one evaluation fails: those the evaluate stage decided (no threshold) and
    those judged here against this section's thresholds from the figures it recorded."""
    failed = set(ev.get("checks_failed", []))
    if ev["clean_acc"] < ev.get("majority_rate", 0.0) + cfg.chance_margin:
        failed.add("above_chance")
    if ev.get("trust_gap") is not None and ev["trust_gap"] > cfg.trust_gap:
        failed.add("pgd_trusted")
    curve = ev.get("eps_curve") or {}
    if curve and curve[max(curve, key=float)] > cfg.curve_zero:
        failed.add("curve_reaches_zero")
    return sorted(failed)


def collapsed_epochs(history: list[dict[str, float]]) -> list[int]:
    """Epochs the trainer flagged as catastrophic overfitting (validation PGD accuracy
    ``train.co_drop`` below the best earlier epoch's)."""
    return [int(row.get("epoch", i + 1)) for i, row in enumerate(history)
            if row.get("collapsed")]


def class_accuracy(table: dict[str, Any], num: int) -> np.ndarray:
    """Clean accuracy per class on the examples the clean tier evaluated (NaN: none)."""
    pred, label = table["clean_pred"], table["label"]
    done = pred >= 0
    out = np.full(num, np.nan)
    for c in range(num):
        mine = done & (label == c)
        if mine.any():
            out[c] = float((pred[mine] == c).mean())
    return out


def classes_given_up(runs: dict[int, Run], clean: Clean,
                     cfg: ReportConfig) -> dict[int, tuple[float, float]]:
    """Classes one method gave up on, on any seed: clean accuracy on the class below
    ``report.class_ratio`` × the same seed's clean-trained model's on it (class → the two
    accuracies, mean over such seeds). Overall accuracy hides this: a pruned run that never
    predicts one class of ten loses at most ten points and may still look merely weaker."""
    hits: dict[int, list[tuple[float, float]]] = {}
    for seed, run in runs.items():
        if seed not in clean or "clean_pred" not in run["examples"] or (
                "clean_pred" not in clean[seed]["examples"]):
            continue
        ref_table = clean[seed]["examples"]
        num = int(max(run["examples"]["label"].max(), ref_table["label"].max())) + 1
        mine, ref = class_accuracy(run["examples"], num), class_accuracy(ref_table, num)
        for c in range(num):
            if not np.isnan(mine[c]) and not np.isnan(ref[c]) and (
                    mine[c] < cfg.class_ratio * ref[c]):
                hits.setdefault(c, []).append((float(mine[c]), float(ref[c])))
    return {c: (round(float(np.mean([a for a, _ in v])), 6),
                round(float(np.mean([b for _, b in v])), 6)) for c, v in sorted(hits.items())}


def method_checks(runs: dict[int, Run], clean: Clean, cfg: ReportConfig) -> list[str]:
    """Names of the failed checks of one method, over all its seeds: its evaluations', clean
    accuracy collapsed against the same seed's clean-trained model (overall, and on any
    class: ``class_given_up``), and catastrophic overfitting during training."""
    failed: set[str] = set()
    if classes_given_up(runs, clean, cfg):
        failed.add("class_given_up")
    for seed, run in runs.items():
        failed.update(eval_failed(run["eval"], cfg))
        if seed in clean and run["eval"]["clean_acc"] < (
                cfg.collapse_ratio * clean[seed]["eval"]["clean_acc"]):
            failed.add("clean_collapse")
        if collapsed_epochs(run["train"].get("history", [])):
            failed.add("catastrophic_overfitting")
    return sorted(failed)


def blocked_by(name: str, baseline: str, voided: dict[str, list[str]]) -> list[str]:
    """Why ``name`` cannot be compared with the baseline: each voiding check that it or the
    baseline failed, as "model: check" (empty when nothing blocks it)."""
    return [f"{n}: {c}" for n in dict.fromkeys((name, baseline)) for c in voided[n]]
