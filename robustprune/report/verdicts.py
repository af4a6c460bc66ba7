"""The product's targets, as data, and their verdicts.

Each target is a row of :data:`TARGETS`: which runs compete for it (read from what they
trained: a batch miner or not, all data or a scored subset, the baseline's attack or not) and
its thresholds (pass and wall-clock speed-up at equal epochs, effective speed-up against the
full-data frontier, the lowest Δ vs the baseline). Its label is written from the thresholds, so
the two cannot drift apart.

Verdicts are read from intervals, never from point estimates alone: pass speed-ups are
deterministic counts (and wall-clock), the Δ part is read from the interval of the
APGD-CE+T-calibrated Δ (PGD-k without the verdict tier; the corruption Δ for AugMix), the
effective speed-up from its interval (the inverted paired test, :mod:`robustprune.frontier`):
met when the whole interval clears the bound, not met when it lies wholly below, else
inconclusive. Every candidate is judged: the target is met when
any candidate meets it, not met only when every candidate misses it, else inconclusive; the
result names the deciding candidate (the best-scored one with that verdict) and lists each
candidate's verdict. A candidate that a voiding check blocks is left out and named; with none
left the verdict is "blocked".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from robustprune.frontier import Speedup
from robustprune.objectives import OBJECTIVES
from robustprune.report.summary import MethodSummary, Summary
from robustprune.report.text import fmt_delta
from robustprune.selection.registry import SELECTORS
from robustprune.stats import Interval, Verdict, verdict_at_least

Outcome = Literal["met", "not met", "inconclusive", "blocked", "not assessed"]


@dataclass(frozen=True)
class Target:
    """One target. Candidates: runs with (``mined``) or without a batch miner, that train on
    ``all`` data (a selector that takes no fraction) or on a scored ``subset`` (a fraction
    below 1 chosen by a non-random selector), with the baseline's attack or not
    (``same_attack``; None: either). Thresholds (None: not part of the target): speed-ups at
    equal epochs in passes and seconds, effective speed-up in passes, and the lowest Δ vs the
    baseline (a proportion) on the ``delta_on`` figure."""

    key: str
    name: str
    adversarial: bool
    mined: bool
    selects: Literal["all", "subset"]
    same_attack: bool | None = None
    min_passes_x: float | None = None
    min_seconds_x: float | None = None
    min_effective_x: float | None = None
    min_delta: float | None = None
    delta_on: Literal["robust", "corruption"] = "robust"

    @property
    def label(self) -> str:
        """The target as the table states it, written from its thresholds."""
        parts = []
        if self.min_passes_x is not None:
            parts.append(f"≥{self.min_passes_x:g}× passes")
        if self.min_seconds_x is not None:
            parts.append(f"≥{self.min_seconds_x:g}× wall-clock")
        if self.min_effective_x is not None:
            parts.append(f"≥{self.min_effective_x:g}× effective speed-up")
        if self.min_delta is not None:
            bound = f"{100 * self.min_delta:g}".replace("-", "−")
            parts.append(f"{self.delta_on} Δ ≥ {bound} pt")
        return f"{self.name}: {', '.join(parts)}"

    def admits(self, r: MethodSummary) -> bool:
        """Whether the run competes for this target (judged from what it trained)."""
        sel = SELECTORS[r.selector]
        selects = ("all" if not sel.uses_fraction else
                   "subset" if not sel.random and r.fraction < 1 else None)
        return ((r.miner != "none") == self.mined and selects == self.selects
                and (self.same_attack is None or self.same_attack == r.matched.same_attack))

    def delta(self, r: MethodSummary) -> Interval | None:
        """The Δ this target reads (None when it was not measured or the run is blocked)."""
        if self.delta_on == "corruption":
            return None if r.corruption is None else r.corruption.delta
        return r.verdict_delta

    def score(self, r: MethodSummary) -> float:
        """How candidates are ranked: by effective speed-up when the target has one, else by
        the Δ's estimate; unmeasured last."""
        if self.min_effective_x is not None:
            sp = r.matched.effective_speedup
            return float("-inf") if sp is None else sp.estimate.value
        d = self.delta(r)
        return float("-inf") if d is None else d.estimate

    def parts(self, r: MethodSummary) -> list[Verdict]:
        """One verdict per threshold; an unmeasured interval is inconclusive, not a miss."""
        out: list[Verdict] = []
        if self.min_passes_x is not None:
            out.append("met" if _at_least(r.speedup_passes, self.min_passes_x) else "not met")
        if self.min_seconds_x is not None:
            out.append("met" if _at_least(r.speedup_seconds, self.min_seconds_x) else "not met")
        if self.min_effective_x is not None:
            sp: Speedup | None = r.matched.effective_speedup
            out.append("inconclusive" if sp is None else sp.verdict_at_least(self.min_effective_x))
        if self.min_delta is not None:
            d = self.delta(r)
            out.append("inconclusive" if d is None else verdict_at_least(d, self.min_delta))
        return out

    def measured(self, r: MethodSummary) -> str:
        """What the deciding candidate measured, in the target's terms."""
        if self.min_effective_x is not None:
            sp = r.matched.effective_speedup
            return (f"effective {sp}, {r.speedup_passes:.2f}× passes at equal epochs"
                    if sp is not None else
                    "no full-data frontier (train the baseline at ≥ 2 budgets)")
        which = "corruption Δ" if self.delta_on == "corruption" else "Δ"
        return (f"{r.speedup_passes:.2f}× passes, {r.speedup_seconds:.2f}× s, "
                f"{which} {fmt_delta(self.delta(r))}")


def _at_least(value: float | None, bound: float) -> bool:
    return value is not None and value >= bound


TARGETS: tuple[Target, ...] = (
    Target("bullettrain", "BulletTrain", adversarial=True, mined=True, selects="all",
           same_attack=True, min_passes_x=2, min_delta=-0.01),
    Target("subset", "best subset selector", adversarial=True, mined=False, selects="subset",
           same_attack=True, min_effective_x=2.5),
    Target("stack", "best stack", adversarial=True, mined=True, selects="subset",
           same_attack=False, min_passes_x=5, min_seconds_x=4, min_delta=-0.01),
    Target("augmix", "BulletTrain for AugMix", adversarial=False, mined=True, selects="all",
           min_passes_x=1.7, min_delta=-0.01, delta_on="corruption"),
)
"""The targets: BulletTrain's pass savings at no robustness cost, a subset selector that beats
full-data training at equal cost, the two stacked with a cheaper attack, and BulletTrain on
AugMix (corruption robustness). ``adversarial``: judged when the runs train on an attack, else
the AugMix one is."""


@dataclass(frozen=True)
class TargetResult:
    """A target's verdict, the deciding candidate (None when none was judged), what it
    measured, and every candidate's verdict."""

    target: Target
    method: str | None
    verdict: Outcome
    measured: str
    candidates: dict[str, Outcome]

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target.label, "method": self.method, "verdict": self.verdict,
                "measured": self.measured, "candidates": self.candidates}


def combine(verdicts: list[Verdict]) -> Verdict:
    """All parts met → met; any part not met → not met; otherwise inconclusive."""
    if any(v == "not met" for v in verdicts):
        return "not met"
    return "met" if all(v == "met" for v in verdicts) else "inconclusive"


def judge(target: Target, summary: Summary) -> TargetResult:
    """One target's verdict over its candidates (see the module docstring)."""
    candidates = [n for n, r in summary.items() if target.admits(r)]
    if not candidates:
        return TargetResult(target, None, "not assessed", "no such method in this run", {})
    blocked = {n: summary[n].blocked_by for n in candidates if summary[n].blocked_by}
    open_ = sorted((n for n in candidates if n not in blocked),
                   key=lambda n: target.score(summary[n]), reverse=True)
    if not open_:
        why = sorted({b for bs in blocked.values() for b in bs})
        return TargetResult(target, None, "blocked",
                            f"blocked by failed checks ({'; '.join(why)})",
                            dict.fromkeys(candidates, "blocked"))
    verdicts: dict[str, Outcome] = {n: combine(target.parts(summary[n])) for n in open_}
    decided: Outcome = next((v for v in ("met", "inconclusive") if v in verdicts.values()),
                            "not met")
    best = next(n for n in open_ if verdicts[n] == decided)
    note = target.measured(summary[best])
    if blocked:
        note += f" ({', '.join(blocked)}: blocked by failed checks)"
    return TargetResult(target, best, decided, note,
                        {**verdicts, **dict.fromkeys(blocked, "blocked")})


def targets(summary: Summary) -> list[TargetResult]:
    """Every target that applies to these runs, each judged against the baseline in the
    same run: the adversarial ones when the runs train on an attack, else the AugMix one."""
    adversarial = OBJECTIVES[next(iter(summary.values())).objective].uses_attack
    return [judge(t, summary) for t in TARGETS if t.adversarial == adversarial]
