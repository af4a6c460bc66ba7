"""Paired figures of one method against another: accuracies with their intervals, paired Δs on
each attack tier, the calibrated accuracy and Δ on the verdict tier (the reference
APGD-CE + APGD-T), and the common-corruption figures.

Every model is evaluated on the same test examples (and, with several seeds, each seed's runs
share its warm-up model and data order), so differences are paired example by example and
seed by seed: the uncertainty of a Δ comes from the examples on which two models disagree, not
from the two accuracies separately. The formulas are :mod:`robustprune.stats`'s; this module
only cuts each tier's evaluated prefix out of the per-example tables and pairs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robustprune.corruption_ops import mean_corruption_error
from robustprune.report.load import Clean, Examples, Runs
from robustprune.stats import (
    Interval,
    mean_std,
    paired_difference,
    paired_share_difference,
    seed_sd,
    seeds_difference,
    seeds_two_phase,
    seeds_two_phase_sd,
    share_mean,
)


@dataclass(frozen=True)
class Stat:
    """Mean ± std over seeds of one recorded figure, rounded to 6 decimals as the JSON holds
    them (a millionth is below any resolution the report claims)."""

    mean: float
    std: float

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std}


def stat(values: list[float]) -> Stat:
    """Mean ± std (ddof 1; 0 for one seed) of a figure over seeds."""
    mean, std = mean_std(values)
    return Stat(round(mean, 6), round(std, 6))


def prefix(col: np.ndarray) -> np.ndarray:
    """The evaluated prefix of a per-example column (tiers evaluate the first n examples)."""
    n = int((col >= 0).sum())
    return col[:n].astype(bool)


def common(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two columns cut to the examples both have (a tier's prefix may differ between models)."""
    n = min(len(a), len(b))
    return a[:n], b[:n]


def common_prefix(cols: list[np.ndarray]) -> list[np.ndarray]:
    """Every column cut to the examples all of them have."""
    n = min(len(c) for c in cols)
    return [c[:n] for c in cols]


def has_tier(ex: list[Examples], column: str) -> bool:
    """Whether every seed's table has ``column``: a tier measured on some seeds only (the
    reference attacks run later on part of them) is left out rather than averaged over a subset."""
    return all(column in e for e in ex)


def shares(e: Examples, copies: int) -> np.ndarray:
    """Per example, the share of its corrupted copies classified right (evaluated prefix)."""
    col = e["corruption"]
    return col[: int((col >= 0).sum())].astype(float) / copies


VERDICT = "verdict"
"""The per-example column of the verdict tier (the reference APGD-CE + APGD-T)."""


def tier(evals: list[dict[str, Any]], name: str) -> tuple[Stat | None, int]:
    """Mean ± std over the seeds of one reference tier's accuracy (``verdict`` or
    ``autoattack``, the check) and the smallest n, or None when a seed lacks it (a subset's
    mean would pass for the seeds' mean)."""
    n = min(e.get(f"n_{name}", 0) for e in evals)
    return (stat([e[f"{name}_acc"] for e in evals]) if n else None), n


def calibration(e: Examples) -> tuple[np.ndarray, np.ndarray]:
    """One seed's two phases: PGD-k correctness on every example it evaluated, and the
    verdict tier − PGD-k gap (−1, 0, +1) on the verdict subset; the calibrated accuracy and
    the frontier's resample are both built from these."""
    pgd, aa = prefix(e["pgd"]), prefix(e[VERDICT])
    n = min(len(pgd), len(aa))
    return pgd.astype(float), aa[:n].astype(float) - pgd[:n].astype(float)


def robust_interval(ex: list[Examples]) -> Interval | None:
    """Calibrated accuracy of one method over its seeds (None without the verdict tier)."""
    if not has_tier(ex, VERDICT):
        return None
    return seeds_two_phase([calibration(e) for e in ex])


def robust_seed_sd(ex: list[Examples]) -> Interval | None:
    """The training (seed-to-seed) SD of one method's robust accuracy, with its interval: on
    the calibrated scale with the verdict tier, else PGD-k on every example; None for one seed,
    which cannot tell training noise from the model it drew."""
    if len(ex) < 2:
        return None
    if has_tier(ex, VERDICT):
        return seeds_two_phase_sd([calibration(e) for e in ex])
    cols = common_prefix([prefix(e["pgd"]) for e in ex])
    return seed_sd([np.stack(cols).astype(float) / len(cols[0])])


def difference(ex_a: list[Examples], ex_b: list[Examples], column: str) -> Interval | None:
    """Paired Δ (a − b) on one tier's examples, over the seeds both have."""
    if not (has_tier(ex_a, column) and has_tier(ex_b, column)):
        return None
    pairs = [common(prefix(a[column]), prefix(b[column]))
             for a, b in zip(ex_a, ex_b, strict=True)]
    return seeds_difference(pairs) if len(pairs) > 1 else paired_difference(*pairs[0])


def calibrated_difference(ex_a: list[Examples], ex_b: list[Examples]) -> Interval | None:
    """Calibrated Δ: paired PGD-k Δ on all examples + paired (verdict tier − PGD-k) gap
    difference on the verdict subset."""
    if not (has_tier(ex_a, VERDICT) and has_tier(ex_b, VERDICT)):
        return None
    parts = []
    for a, b in zip(ex_a, ex_b, strict=True):
        pa, pb = common(prefix(a["pgd"]), prefix(b["pgd"]))
        aa, ab = common(prefix(a[VERDICT]), prefix(b[VERDICT]))
        n = len(aa)
        gap = (aa.astype(float) - pa[:n]) - (ab.astype(float) - pb[:n])
        parts.append((pa.astype(float) - pb.astype(float), gap))
    return seeds_two_phase(parts)


def verdict_difference(ex_a: list[Examples], ex_b: list[Examples]) -> Interval:
    """The Δ verdicts are read from: calibrated on the verdict tier, or PGD-k without it."""
    iv = calibrated_difference(ex_a, ex_b)
    if iv is None:
        iv = difference(ex_a, ex_b, "pgd")
    assert iv is not None  # every table has the pgd column (read_examples checks it)
    return iv


@dataclass(frozen=True)
class CorruptionSummary:
    """Common-corruption figures of one method: accuracy (mean ± std over seeds, interval over
    examples), paired Δ vs the baseline (None when blocked or the baseline lacks them), mCE
    relative to the clean-trained model of each seed (None without it), accuracy per severity
    and per corruption."""

    acc: Stat
    n: int
    source: str | None
    interval: Interval
    by_severity: dict[str, float]
    by_name: dict[str, float]
    delta: Interval | None
    mce: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"acc": self.acc.as_dict(), "n": self.n, "source": self.source,
                "interval": self.interval.as_dict(), "by_severity": self.by_severity,
                "by_name": self.by_name,
                "delta": None if self.delta is None else self.delta.as_dict(),
                "mce": self.mce}


def corruption(name: str, runs: Runs, clean: Clean, ex: dict[str, list[Examples]],
               baseline: str, seeds: list[int], compare: bool) -> CorruptionSummary | None:
    """Common-corruption figures of one method (None when it was not evaluated on them on
    every seed); ``compare`` False (a voiding check blocks the comparison) leaves out the Δ."""
    evals = [runs[name][s]["eval"] for s in seeds]
    if not (all("corruption_acc" in e for e in evals) and has_tier(ex[name], "corruption")):
        return None
    copies = int(evals[0]["n_corrupted_copies"])
    mine = [shares(e, copies) for e in ex[name]]

    def mean_of(key: str) -> dict[str, float]:
        return {k: round(float(np.mean([e[key][k] for e in evals])), 6) for k in evals[0][key]}

    delta = None
    if compare and has_tier(ex[baseline], "corruption"):
        base = [shares(e, copies) for e in ex[baseline]]
        delta = paired_share_difference([common(a, b) for a, b in zip(mine, base, strict=True)])
    mce = None
    if all(s in clean and "corruption_grid" in clean[s]["eval"] for s in seeds):
        mce = round(float(np.mean([
            mean_corruption_error(e["corruption_grid"],
                                  clean[s]["eval"]["corruption_grid"])["mce"]
            for s, e in zip(seeds, evals, strict=True)])), 6)
    return CorruptionSummary(
        acc=stat([e["corruption_acc"] for e in evals]), n=evals[0]["n_corruption"],
        source=evals[0].get("corruption_source"), interval=share_mean(mine),
        by_severity=mean_of("corruption_acc_by_severity"),
        by_name=mean_of("corruption_acc_by_name"), delta=delta, mce=mce)
