"""The per-method summary: settings, accuracies, paired Δs, costs and speed-ups, checks and the
budget-matched figures, as typed values (:class:`~robustprune.stats.Interval`,
:class:`~robustprune.frontier.Speedup`, …) that the targets, the renderers and the headline
read directly; :meth:`MethodSummary.as_dict` turns one into JSON only when it is written.

Costs and settings are read from what training recorded, not from the current params, so
editing an entry after training does not relabel the trained model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robustprune.errors import InputError
from robustprune.objectives import OBJECTIVES
from robustprune.report.budget import BudgetMatched, budget_matched
from robustprune.report.components import Stack, stacks
from robustprune.report.config import (
    VOIDING,
    ReportConfig,
    blocked_by,
    classes_given_up,
    method_checks,
)
from robustprune.report.load import Clean, Runs, check_pairing
from robustprune.report.paired import (
    VERDICT,
    CorruptionSummary,
    Stat,
    calibrated_difference,
    corruption,
    difference,
    prefix,
    robust_interval,
    robust_seed_sd,
    stat,
    tier,
)
from robustprune.stats import Interval, seeds_proportion


def _iv(interval: Interval | None) -> dict[str, Any] | None:
    return None if interval is None else interval.as_dict()


@dataclass(frozen=True)
class MethodSummary:
    """One method over its seeds. Δs and speed-ups are relative to the baseline and None when
    a voiding check of either blocks the comparison (``blocked_by`` says which); the reference
    tiers' figures (``verdict``: APGD-CE+T; ``autoattack``: the standard AutoAttack on the
    check subset) are None unless every seed was attacked."""

    selector: str
    fraction: float
    miner: str
    attack: str
    objective: str
    seeds: list[int]
    clean_acc: Stat
    pgd_acc: Stat
    pgd_by_seed: list[float]
    n_pgd: int
    pgd_label: str
    verdict_acc: Stat | None
    n_verdict: int
    verdict_label: str | None
    autoattack_acc: Stat | None
    n_autoattack: int
    autoattack_label: str | None
    pgd_interval: Interval
    robust_calibrated: Interval | None
    seed_sd: Interval | None
    """The training (seed-to-seed) SD of the robust accuracy (calibrated, else PGD-k) with its
    interval; None for one seed."""
    delta_clean: Interval | None
    delta_pgd: Interval | None
    delta_verdict: Interval | None
    delta_calibrated: Interval | None
    passes: int
    seconds: float
    relative_cost: float
    speedup_passes: float | None
    speedup_seconds: float | None
    checks_failed: list[str]
    classes_given_up: dict[int, tuple[float, float]]
    voided_by: list[str]
    blocked_by: list[str]
    corruption: CorruptionSummary | None
    matched: BudgetMatched
    stack: Stack | None = None
    """For a run that saves on several axes (selection, mining, attack): the runs that save
    on each alone and where they stand against the frontier; None for any other run."""

    @property
    def checks_passed(self) -> bool:
        return not self.checks_failed

    @property
    def verdict_delta(self) -> Interval | None:
        """The Δ verdicts are read from: calibrated on the verdict tier, else PGD-k (None if
        blocked)."""
        return self.delta_calibrated or self.delta_pgd

    @property
    def robust(self) -> Interval:
        """Robust accuracy: calibrated on the verdict tier, else PGD-k on the whole test set."""
        return self.robust_calibrated or self.pgd_interval

    def as_dict(self) -> dict[str, Any]:
        """The JSON row of ``summary.json``."""
        return {
            "selector": self.selector, "fraction": self.fraction, "miner": self.miner,
            "attack": self.attack, "objective": self.objective, "seeds": self.seeds,
            "clean_acc": self.clean_acc.as_dict(), "pgd_acc": self.pgd_acc.as_dict(),
            "pgd_by_seed": self.pgd_by_seed,
            "n_pgd": self.n_pgd, "pgd_label": self.pgd_label,
            "verdict_acc": None if self.verdict_acc is None else self.verdict_acc.as_dict(),
            "n_verdict": self.n_verdict, "verdict_label": self.verdict_label,
            "autoattack_acc": None if self.autoattack_acc is None
            else self.autoattack_acc.as_dict(),
            "n_autoattack": self.n_autoattack, "autoattack_label": self.autoattack_label,
            "pgd_interval": self.pgd_interval.as_dict(),
            "robust_calibrated": _iv(self.robust_calibrated), "seed_sd": _iv(self.seed_sd),
            "delta_clean": _iv(self.delta_clean), "delta_pgd": _iv(self.delta_pgd),
            "delta_verdict": _iv(self.delta_verdict),
            "delta_calibrated": _iv(self.delta_calibrated),
            "passes": self.passes, "seconds": self.seconds,
            "relative_cost": self.relative_cost, "speedup_passes": self.speedup_passes,
            "speedup_seconds": self.speedup_seconds, "checks_failed": self.checks_failed,
            "classes_given_up": {str(c): {"clean_acc": a, "clean_trained_acc": b}
                                 for c, (a, b) in self.classes_given_up.items()},
            "voided_by": self.voided_by, "blocked_by": self.blocked_by,
            "checks_passed": self.checks_passed,
            "corruption": None if self.corruption is None else self.corruption.as_dict(),
            **self.matched.as_dict(),
            "stack": None if self.stack is None else self.stack.as_dict()}


Summary = dict[str, MethodSummary]
"""Per method, in the order of ``methods``."""


def _attack_label(settings: dict[str, Any]) -> str:
    """The attack a run trained with, as the table names it (``none`` for objectives that
    train on no attack, whatever ``attack`` says)."""
    atk = settings["attack"]
    if not OBJECTIVES[settings["objective"]["name"]].uses_attack:
        return "none"
    return atk["name"] if atk["name"] != "pgd" else f"pgd-{atk['steps']}"


def summarise(runs: Runs, clean: Clean, baseline: str, cfg: ReportConfig) -> Summary:
    """Per method: settings, accuracies (mean ± std over seeds), paired Δs with intervals,
    costs and speed-ups, the budget-matched figures and the failed checks."""
    if baseline not in runs:
        raise InputError(f"report baseline {baseline!r} is not one of {', '.join(runs)}")
    seeds = sorted(runs[baseline])
    ex = {m: [runs[m][s]["examples"] for s in seeds] for m in runs}
    check_pairing(runs, clean, baseline, seeds)

    def mean_cost(name: str, key: str) -> float:
        return float(np.mean([runs[name][s]["train"]["cost"][key] for s in seeds]))

    passes = {n: mean_cost(n, "passes") for n in runs}
    secs = {n: mean_cost(n, "seconds") for n in runs}
    checks = {name: method_checks(by_seed, clean, cfg) for name, by_seed in runs.items()}
    voided = {name: sorted(set(c) & VOIDING) for name, c in checks.items()}
    blocked = {name: blocked_by(name, baseline, voided) for name in runs}
    matched = budget_matched(runs, ex, baseline, seeds, cfg,
                             passes={n: float(round(p)) for n, p in passes.items()},
                             seconds={n: round(s, 2) for n, s in secs.items()},
                             voided=voided, blocked={n: bool(b) for n, b in blocked.items()})
    found = stacks({n: runs[n][seeds[0]]["train"]["settings"] for n in runs}, baseline,
                   matched)
    out: Summary = {}
    for name, by_seed in runs.items():
        settings, ev = by_seed[seeds[0]]["train"]["settings"], by_seed[seeds[0]]["eval"]
        evals = [by_seed[s]["eval"] for s in seeds]
        aa, n_aa = tier(evals, "autoattack")
        vt, n_vt = tier(evals, "verdict")
        compare = not blocked[name]
        mine, base = ex[name], ex[baseline]
        out[name] = MethodSummary(
            selector=settings["selector"], fraction=settings["fraction"],
            miner=settings["miner"], attack=_attack_label(settings),
            objective=settings["objective"]["name"], seeds=seeds,
            clean_acc=stat([e["clean_acc"] for e in evals]),
            pgd_acc=stat([e["pgd_acc"] for e in evals]),
            pgd_by_seed=[round(float(e["pgd_acc"]), 6) for e in evals], n_pgd=ev["n_pgd"],
            pgd_label=ev["pgd_label"], verdict_acc=vt, n_verdict=n_vt,
            verdict_label=ev.get("verdict_label"), autoattack_acc=aa, n_autoattack=n_aa,
            autoattack_label=ev.get("autoattack_label"),
            pgd_interval=seeds_proportion([prefix(e["pgd"]) for e in mine]),
            robust_calibrated=robust_interval(mine), seed_sd=robust_seed_sd(mine),
            delta_clean=difference(mine, base, "clean") if compare else None,
            delta_pgd=difference(mine, base, "pgd") if compare else None,
            delta_verdict=difference(mine, base, VERDICT) if compare else None,
            delta_calibrated=calibrated_difference(mine, base) if compare else None,
            passes=round(passes[name]), seconds=round(secs[name], 2),
            relative_cost=round(passes[name] / max(passes[baseline], 1), 4),
            speedup_passes=(round(passes[baseline] / max(passes[name], 1), 3) if compare
                            else None),
            speedup_seconds=(round(secs[baseline] / max(secs[name], 1e-9), 3) if compare
                             else None),
            checks_failed=checks[name], voided_by=voided[name], blocked_by=blocked[name],
            classes_given_up=classes_given_up(by_seed, clean, cfg),
            corruption=corruption(name, runs, clean, ex, baseline, seeds, compare),
            matched=matched[name], stack=found.get(name))
    return out
