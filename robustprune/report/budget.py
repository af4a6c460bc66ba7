"""Budget-matched figures: which runs form the full-data frontier, each run's effective
speed-up against it (in passes and in seconds), its verdict against random selection at equal
cost, and the passes and seconds it took to reach a validation target.

Why: a method that trains on less data also takes fewer optimisation steps, so a speed-up at
equal epochs mixes two effects. The runs that differ from the baseline only in their pass
budget (:mod:`robustprune.frontier`) show what full-data training buys at each cost; random
selection at the same cost shows what choosing examples adds over choosing none in particular.
Which runs are which is read from what they trained, not from entry names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robustprune.frontier import PairedOutcomes, Speedup, effective_speedup, first_reaching
from robustprune.objectives import OBJECTIVES
from robustprune.report.config import EQUAL_COST, ReportConfig
from robustprune.report.load import Examples, Runs
from robustprune.report.paired import (
    VERDICT,
    calibration,
    common_prefix,
    has_tier,
    prefix,
    verdict_difference,
)
from robustprune.selection.registry import SELECTORS
from robustprune.stats import Interval, Verdict, verdict_at_least

NO_RANDOM = f"no random-selection run within ±{100 * EQUAL_COST:g} % of its passes"


@dataclass(frozen=True)
class VsRandom:
    """A method against the random-selection run closest to its cost: that run, its cost
    ratio, the verdict Δ (APGD-CE+T-calibrated, else PGD-k) and its verdict at ≥ 0; or, with
    no random run within ±EQUAL_COST, ``random`` None and a note saying so."""

    random: str | None
    verdict: Verdict | None
    cost_ratio: float | None = None
    delta: Interval | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.random is None or self.delta is None:
            return {"random": None, "verdict": None, "note": NO_RANDOM}
        return {"random": self.random, "cost_ratio": self.cost_ratio,
                "delta": self.delta.as_dict(), "verdict": self.verdict}


@dataclass(frozen=True)
class ToTarget:
    """Time to accuracy: the validation ``metric`` target, how many of the seeds reached it,
    and the mean cumulative passes and seconds at the first epoch that did (None when none)."""

    metric: str
    target: float
    reached: int
    of: int
    passes: int | None
    seconds: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "target": self.target, "reached": self.reached,
                "of": self.of, "passes": self.passes, "seconds": self.seconds}


@dataclass(frozen=True)
class BudgetMatched:
    """One run's budget-matched figures. ``budget``: its share of the baseline's passes (0:
    a number of epochs); ``same_attack``: trained with the baseline's attack and objective;
    ``frontier``: one of the full-data frontier's runs. Speed-ups and the random verdict are
    None when a voiding check blocks the comparison (or, for the speed-ups, without a frontier
    of two distinct costs)."""

    budget: float
    same_attack: bool
    frontier: bool
    effective_speedup: Speedup | None
    effective_speedup_seconds: Speedup | None
    vs_random: VsRandom | None
    to_target: ToTarget
    scale: str = "PGD-k"

    def as_dict(self) -> dict[str, Any]:
        sp, ss = self.effective_speedup, self.effective_speedup_seconds
        return {
            "budget": self.budget, "same_attack": self.same_attack, "frontier": self.frontier,
            "effective_speedup": None if sp is None else {
                **sp.as_dict(), "text": str(sp), "position": sp.position(),
                "scale": self.scale},
            "effective_speedup_seconds": None if ss is None else {**ss.as_dict(),
                                                                  "text": str(ss)},
            "vs_random": None if self.vs_random is None else self.vs_random.as_dict(),
            "to_target": self.to_target.as_dict()}


def attack_key(settings: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two runs' training inputs alike: the attack and its settings, the objective."""
    atk = settings["attack"]
    return atk["name"], atk.get("steps"), atk.get("alpha"), settings["objective"]["name"]


def same_but_budget(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two runs that differ at most in their pass budget (so the frontier and the baseline
    are defined by what was trained, not by entry names; weight averaging is part of what
    was trained)."""
    return (a["selector"] == b["selector"] and a["miner"] == b["miner"]
            and a["fraction"] == b["fraction"] and attack_key(a) == attack_key(b)
            and a.get("selector_options") == b.get("selector_options")
            and a.get("miner_options") == b.get("miner_options")
            and a.get("ema", 0.0) == b.get("ema", 0.0))


def effective(frontier: list[str], cost: dict[str, float], name: str,
              acc: PairedOutcomes) -> Speedup | None:
    """Effective speed-up on one cost axis; None without two distinct positive frontier costs
    (wall-clock can tie or invert between close budgets) or a positive cost of its own."""
    points: list[tuple[str, float]] = []
    for n in sorted(frontier, key=lambda n: cost[n]):
        if cost[n] > 0 and (not points or cost[n] > points[-1][1]):
            points.append((n, cost[n]))
    if len(points) < 2 or cost[name] <= 0:
        return None
    return effective_speedup(points, name, cost[name], acc)


def final_val(train: dict[str, Any], metric: str = "val_pgd_acc") -> float:
    """A validation accuracy of the model training kept (after a rollback: the kept
    epoch's)."""
    final = train.get("final") or {}
    if metric in final:
        return float(final[metric])
    return float(train["history"][-1][metric])


def vs_random(name: str, passes: dict[str, float], random_runs: list[str],
              ex: dict[str, list[Examples]], frontier: list[str]) -> VsRandom | None:
    """The verdict of ``name`` against the random-selection run closest to its cost, if one
    is within ±EQUAL_COST (None for random runs and frontier runs themselves)."""
    if name in random_runs or name in frontier:
        return None
    near = [(abs(passes[r] / max(passes[name], 1) - 1), r) for r in random_runs]
    near = [(d, r) for d, r in near if d <= EQUAL_COST]
    if not near:
        return VsRandom(random=None, verdict=None)
    _, peer = min(near)
    iv = verdict_difference(ex[name], ex[peer])
    return VsRandom(random=peer, verdict=verdict_at_least(iv, 0.0),
                    cost_ratio=round(passes[peer] / max(passes[name], 1), 4), delta=iv)


def frontier_accuracy(runs: Runs, ex: dict[str, list[Examples]]) -> PairedOutcomes:
    """The accuracy the frontier is read on: calibrated on the verdict tier (the verdict
    scale) when every run of every seed has it, else the cheap PGD-k tier. A run on the
    frontier that PGD-k over-states less than the method would otherwise flatter the method
    (BulletTrain's trust gap is larger than full-data training's)."""
    pgd = {n: np.stack(common_prefix([prefix(e["pgd"]) for e in ex[n]])) for n in runs}
    if not all(has_tier(ex[n], VERDICT) for n in runs):
        return PairedOutcomes(pgd)
    gap = {}
    for n in runs:
        gaps = common_prefix([calibration(e)[1] for e in ex[n]])
        if len(gaps[0]) == 0:
            return PairedOutcomes(pgd)
        gap[n] = np.stack(gaps)
    return PairedOutcomes(pgd, gap=gap)


def budget_matched(runs: Runs, ex: dict[str, list[Examples]], baseline: str,
                   seeds: list[int], cfg: ReportConfig, passes: dict[str, float],
                   seconds: dict[str, float], voided: dict[str, list[str]],
                   blocked: dict[str, bool]) -> dict[str, BudgetMatched]:
    """Per run, its budget-matched figures. ``passes`` and ``seconds``: each run's mean cost
    over the seeds (as the summary records them); ``voided``: the voiding checks each run
    failed (such a run is on no frontier and is no random peer); ``blocked``: whether a
    voiding check of the run or of the baseline forbids comparing them."""
    settings = {n: runs[n][seeds[0]]["train"]["settings"] for n in runs}
    usable = [n for n in runs if not voided[n]]
    frontier = [n for n in usable if same_but_budget(settings[n], settings[baseline])]
    acc = frontier_accuracy(runs, ex)
    random_runs = [n for n in usable if SELECTORS[settings[n]["selector"]].random
                   and settings[n]["miner"] == settings[baseline]["miner"]
                   and attack_key(settings[n]) == attack_key(settings[baseline])]
    # time to accuracy on what the objective trains for: validation PGD accuracy, or clean
    # accuracy for objectives without an attack (AugMix, clean)
    metric = ("val_pgd_acc" if OBJECTIVES[settings[baseline]["objective"]["name"]].uses_attack
              else "val_clean_acc")
    base_final = float(np.mean([final_val(runs[baseline][s]["train"], metric) for s in seeds]))
    target = base_final - cfg.target_drop
    out: dict[str, BudgetMatched] = {}
    for name in runs:
        reached = [first_reaching(runs[name][s]["train"].get("history", []), target, metric)
                   for s in seeds]
        hit = [r for r in reached if r is not None]
        out[name] = BudgetMatched(
            scale="APGD-CE+T-calibrated" if acc.calibrated else "PGD-k",
            budget=settings[name].get("budget", 0.0),
            same_attack=attack_key(settings[name]) == attack_key(settings[baseline]),
            frontier=name in frontier,
            effective_speedup=(None if blocked[name]
                               else effective(frontier, passes, name, acc)),
            effective_speedup_seconds=(None if blocked[name]
                                       else effective(frontier, seconds, name, acc)),
            vs_random=(None if blocked[name]
                       else vs_random(name, passes, random_runs, ex, frontier)),
            to_target=ToTarget(
                metric=metric, target=round(target, 6), reached=len(hit), of=len(reached),
                passes=round(float(np.mean([r["passes"] for r in hit]))) if hit else None,
                seconds=round(float(np.mean([r["seconds"] for r in hit])), 2) if hit else None))
    return out
